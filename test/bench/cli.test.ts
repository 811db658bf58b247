/**
 * `mqlog bench` as a user runs it: a child process against aedes running in this test;
 * `--json` prints one parseable object of figures, the default prints a table, bad flags
 * exit 2 naming the flag.
 */
import test from 'ava';
import { parseBenchArgs } from '../../benches/load/cli.js';
import { startAedes } from './helpers/brokers.js';
import { mqlogBench } from './helpers/run-cli.js';

test('--json prints one JSON object with the figures and exits 0 for a complete run', async (t) => {
  const b = await startAedes(t);
  const r = await mqlogBench(['--port', String(b.port), '--scenario', 'pairs', '--clients', '3', '--messages', '200', '--qos', '1', '--json', '--drain-ms', '3000']);
  t.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.is(lines.length, 1);
  const f = JSON.parse(lines[0] ?? '') as Record<string, any>;
  t.is(f.tool, 'mqlog-bench');
  t.is(f.scenario, 'pairs');
  t.is(f.connect.connected, 6);
  t.is(f.messages.unique, 600);
  t.is(f.messages.lost, 0);
  for (const k of ['median', 'p90', 'p99', 'max']) t.true(typeof f.latencyUs[k] === 'number' && f.latencyUs[k] > 0, k);
  t.true(f.connect.setupMs.median > 0);
  t.true(f.throughput.deliveredPerSec > 0);
  t.true(f.throughput.deliveredMBPerSec > 0);
  t.true(typeof f.clientCpu.percentOfOneCore === 'number');
  t.is(typeof f.clientCpu.saturated, 'boolean');
  t.is(r.stderr.includes('['), false, 'no progress bar when stderr is not a TTY');
});

test('prints a readable table by default and a progress bar on stderr when asked', async (t) => {
  const b = await startAedes(t);
  const r = await mqlogBench(['--port', String(b.port), '--scenario', 'latency', '--clients', '1', '--messages', '300', '--progress', '--drain-ms', '3000']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^scenario\s+latency/m);
  t.regex(r.stdout, /^latency\s+median [\d.]+ µs\s+p90 [\d.]+\s+p99 [\d.]+\s+max [\d.]+\s+\(n=300\)/m);
  t.regex(r.stdout, /^delivered\s+300 of 300/m);
  t.regex(r.stderr, /\[[#.]{24}\]\s+\d+%/);
});

test('rejects a bad flag value with exit 2 naming the field', async (t) => {
  const r = await mqlogBench(['--qos', '3']);
  t.is(r.status, 2);
  t.regex(r.stderr, /option 'qos' must be one of 0, 1, 2/);
  const h = await mqlogBench(['--host', '10.0.0.1']);
  t.is(h.status, 2);
  t.regex(h.stderr, /option 'host' must be a loopback address/);
});

test('parses every flag into the options it names', (t) => {
  const p = parseBenchArgs([
    '--host', '127.0.0.2', '--port', '1999', '--scenario', 'fanin', '--clients', '7', '--messages', '9', '--qos', '2',
    '--payload', '1024', '--topic', 'a/{i}', '--rate', '50', '--inflight', '8', '--persistent', '--mqtt', '5',
    '--workers', '2', '--parser', 'mqtt-packet', '--connect-timeout-ms', '500', '--connect-concurrency', '3',
    '--keepalive', '10', '--hold-ms', '100', '--drain-ms', '200', '--time-limit-ms', '9000', '--client-prefix', 'x',
    '--broker-pid', '42', '--no-raise-fd-limit', '--steps', '3', '--step-clients', '2', '--step-messages', '10',
    '--out-dir', '/tmp/o', '--json', '--no-progress',
  ]);
  t.deepEqual(p.load, {
    host: '127.0.0.2', port: 1999, scenario: 'fanin', clients: 7, messages: 9, qos: 2, payloadBytes: 1024, topic: 'a/{i}',
    ratePerClient: 50, inflight: 8, clean: false, protocolVersion: 5, workers: 2, parser: 'mqtt-packet', connectTimeoutMs: 500,
    connectConcurrency: 3, keepaliveS: 10, holdMs: 100, drainMs: 200, timeLimitMs: 9000, clientPrefix: 'x', brokerPid: 42,
    raiseFdLimit: false,
  });
  t.deepEqual(p.scale, { outDir: '/tmp/o', steps: 3, stepClients: 2, stepMessages: 10 });
  t.true(p.json);
  t.is(p.progress, false);
});
