/**
 * Experiment: how long the first QoS 1 PUBLISH of each of N topics the broker has never seen
 * waits for its PUBACK when N devices publish at once, against the file system's own cost of
 * creating what a new topic's log needs (a directory and two files) measured in the same run.
 * Starts the built broker (DIST, default ./dist; run `npm run build` first) on core 0 with a
 * fresh data directory, connects N mqtt.js clients from this process on core 1, then for each
 * round has every client publish once to a new topic of its own and times each PUBACK.
 * Run: taskset -c 1 npx tsx benches/experiments/new-topic-burst.ts [N=200] [ROUNDS=3]
 * (figures: notes/2026-11-24-new-topic-burst.md). 127.0.0.1 only; bounded by N and ROUNDS.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';

const n = Number(process.argv[2] ?? 200);
const rounds = Number(process.argv[3] ?? 3);
const dist = process.env.DIST ?? 'dist';

/** The floor: a directory and two files per topic, created one after another on this thread. */
function fsFloorMs(count: number): number {
  const root = mkdtempSync(join(tmpdir(), 'mqlog-floor-'));
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    mkdirSync(join(root, `t-${i}`));
    closeSync(openSync(join(root, `t-${i}`, 'a.segment'), 'w'));
    closeSync(openSync(join(root, `t-${i}`, 'a.index'), 'w'));
  }
  const ms = performance.now() - t0;
  rmSync(root, { recursive: true });
  return ms;
}

const dataDir = mkdtempSync(join(tmpdir(), 'mqlog-burst-'));
const broker = spawn('taskset', ['-c', '0', process.execPath, `${dist}/src/cli/main.js`, 'start', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn'], {
  stdio: ['ignore', 'ignore', 'pipe'],
});
// the broker picks a free port and names it in its ready line
const port = await new Promise<number>((resolve, reject) => {
  let err = '';
  const timer = setTimeout(() => reject(new Error(`broker did not start: ${err}`)), 10_000);
  broker.stderr.on('data', (c: Buffer) => {
    err += c.toString();
    const ready = /mqlog ready on .*:(\d+)/.exec(err);
    if (ready !== null) {
      clearTimeout(timer);
      resolve(Number(ready[1]));
    }
  });
});
const clients = await Promise.all(
  Array.from({ length: n }, (_, i) => mqtt.connectAsync({ host: '127.0.0.1', port, clientId: `burst-${i}`, reconnectPeriod: 0 })),
);
for (const c of clients) (c.stream as unknown as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);

const q = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
const results = [];
for (let r = 0; r < rounds; r++) {
  const t0 = performance.now();
  const acks = await Promise.all(clients.map(async (c, i) => {
    await c.publishAsync(`burst/${r}/${i}`, Buffer.alloc(64, 120), { qos: 1 });
    return performance.now() - t0;
  }));
  acks.sort((a, b) => a - b);
  const floor = fsFloorMs(n);
  const row = { round: r + 1, topics: n, firstMs: q(acks, 0), p50Ms: q(acks, 0.5), p90Ms: q(acks, 0.9), lastMs: q(acks, 1), fsFloorMs: floor };
  results.push(row);
  console.log(`round ${row.round}: ${n} new topics, PUBACK first ${row.firstMs.toFixed(1)} p50 ${row.p50Ms.toFixed(1)} p90 ${row.p90Ms.toFixed(1)} last ${row.lastMs.toFixed(1)} ms; fs floor (mkdir + 2 creates each, serial) ${floor.toFixed(1)} ms`);
}
console.log(JSON.stringify({ experiment: 'new-topic-burst', dist, results }));
await Promise.all(clients.map((c) => c.endAsync()));
broker.kill('SIGTERM');
await new Promise((r) => broker.once('exit', r));
rmSync(dataDir, { recursive: true, force: true });
