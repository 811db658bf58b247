/**
 * Experiment: what one small batch costs the commit log when many logs each get one record per
 * event-loop turn (a rate-limited fleet: 200 topics, ten of them appended to per turn). Prints
 * wall time and the process's user/sys CPU per batch, for durability 'never' and for 'batch'
 * with lazyMs (no fdatasync within the run: records nobody waits on).
 * Run: npx tsx benches/experiments/small-batches.ts   (figures: notes/2026-11-23-lazy-sync.md)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogStore, type Durability } from '../../commitlog/index.js';

const LOGS = 200;
const PER_TURN = 10;
const TURNS = 2000;

async function run(label: string, durability: Durability): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'mqlog-small-batches-'));
  const store = await LogStore.open(root);
  const logs = await Promise.all(Array.from({ length: LOGS }, (_, i) => store.open(`l${i}`, { durability })));
  const rec = Buffer.alloc(100, 1);
  // first batch of each log creates its files: not measured
  for (const log of logs) log.append(rec);
  await Promise.all(logs.map((log) => log.flush()));
  let batches = 0;
  for (const log of logs) log.on('flushed', () => batches++);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let k = 0; k < TURNS; k++) {
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        for (let j = 0; j < PER_TURN; j++) (logs[(k * PER_TURN + j) % LOGS] as (typeof logs)[number]).append(rec);
        resolve();
      }),
    );
  }
  while (batches < TURNS * PER_TURN) await new Promise((r) => setImmediate(r));
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const n = TURNS * PER_TURN;
  console.log(`${label.padEnd(16)} ${batches} batches; per batch: wall ${((wall * 1000) / n).toFixed(1)} µs, user ${(cpu.user / n).toFixed(1)} µs, sys ${(cpu.system / n).toFixed(1)} µs`);
  await store.close();
  await rm(root, { recursive: true, force: true });
}

for (let round = 1; round <= 3; round++) {
  if (round === 1) console.log("(round 1 includes JIT warm-up)");
  await run('never', { mode: 'never' });
  await run('batch, lazyMs', { mode: 'batch', lazyMs: 60_000 });
}
