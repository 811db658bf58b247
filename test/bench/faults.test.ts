/**
 * Faults of the load itself become figures, never a crash: refused connections, brokers that
 * never answer CONNECT, connections reset mid-run, and running out of file descriptors
 * (EMFILE) under a lowered limit in a child process.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { ensureFdLimit, parseFdLimits, readFdLimits } from '../../benches/load/fd-limit.js';
import { runLoad } from '../../benches/load/runner.js';
import { closedPort, startAedes, startRelay } from './helpers/brokers.js';
import { mqlogBench } from './helpers/run-cli.js';

test('reports ECONNREFUSED as a figure: nobody connected, the error counted per client', async (t) => {
  const port = await closedPort();
  const f = await runLoad({ port, scenario: 'pairs', clients: 3, messages: 10, drainMs: 100 });
  t.is(f.connect.attempted, 6);
  t.is(f.connect.connected, 0);
  t.deepEqual(f.connect.errors, { ECONNREFUSED: 6 });
  t.is(f.messages.unique, 0);
  t.false(f.complete);
  t.true(f.notes.some((n) => n.includes('0 of 6 clients connected; failures: ECONNREFUSED ×6')));
});

test('reports a broker that never sends CONNACK as connect timeouts', async (t) => {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const port = (server.address() as net.AddressInfo).port;
  const f = await runLoad({ port, scenario: 'idle', clients: 4, connectTimeoutMs: 300, holdMs: 10 });
  t.is(f.connect.connected, 0);
  t.deepEqual(f.connect.errors, { ERR_LOAD_CONNECT_TIMEOUT: 4 });
});

test('a broker that goes away mid-run turns into resets and losses, and the run still ends', async (t) => {
  const b = await startRelay(t);
  let closing = false;
  const f = await runLoad(
    { port: b.port, scenario: 'pairs', clients: 2, messages: 1000, ratePerClient: 1000, drainMs: 200, timeLimitMs: 20_000 },
    {
      onProgress: (p) => {
        // Pull the broker away once traffic flows.
        if (!closing && p.phase === 'traffic' && p.delivered > 50) {
          closing = true;
          void b.close();
        }
      },
    },
  );
  t.true(closing);
  t.is(f.connect.connected, 4);
  t.true(f.faults.total >= 1);
  t.true(f.messages.lost > 0);
  t.true(f.messages.unique < 2000);
  t.false(f.complete);
});

test('counts EMFILE under "ulimit -n 64" in a child process and reports how many connected', async (t) => {
  const b = await startAedes(t);
  const r = await mqlogBench(['--port', String(b.port), '--scenario', 'idle', '--clients', '150', '--hold-ms', '200', '--json'], 'ulimit -n 64');
  t.is(r.status, 3, r.stderr);
  t.false(/\n\s+at /.test(r.stderr), 'no stack trace');
  const f = JSON.parse(r.stdout) as { connect: { attempted: number; connected: number; errors: Record<string, number> }; fd: { hard: number; advice: string | null }; notes: string[] };
  t.is(f.connect.attempted, 150);
  t.true(f.connect.connected > 0 && f.connect.connected < 150, `connected ${f.connect.connected}`);
  t.true((f.connect.errors.EMFILE ?? 0) > 0);
  t.is(f.connect.connected + (f.connect.errors.EMFILE ?? 0), 150);
  t.is(f.fd.hard, 64);
  t.regex(f.fd.advice ?? '', /hard limit is 64; raise it as root/);
});

test('raises its own soft fd limit up to the hard limit when a run needs more', (t) => {
  const before = readFdLimits();
  if (before === null || before.hard < 1024) {
    t.fail('needs Linux /proc and a hard fd limit of at least 1024');
    return;
  }
  execFileSync('prlimit', ['--pid', String(process.pid), '--nofile=256:']);
  t.is(readFdLimits()?.soft, 256);
  const report = ensureFdLimit(900, true);
  t.is(report.raisedFrom, 256);
  t.is(report.soft, before.hard);
  t.is(readFdLimits()?.soft, before.hard);
  t.is(report.advice, null);
  const tooMany = ensureFdLimit(before.hard + 1, true);
  t.regex(tooMany.advice ?? '', /hard limit is/);
});

test('parses the "Max open files" line, unlimited included', (t) => {
  t.deepEqual(parseFdLimits('Max cpu time   unlimited  unlimited  seconds\nMax open files            1024                 524288               files\n'), { soft: 1024, hard: 524288 });
  t.deepEqual(parseFdLimits('Max open files unlimited unlimited files'), { soft: Infinity, hard: Infinity });
});
