/**
 * Experiment: what a write into the page cache costs when its pages are new to the guest
 * against when they reuse pages freed a moment ago. Writes 256 MiB with 1 MiB writes on the
 * calling thread into files that roll at 64 MiB, either keeping every file (the page cache
 * grows, as a log with long retention grows within a benchmark run) or deleting all but the
 * last two (the page cache recycles its own pages), alternating the two modes; each run's
 * directory is removed before the next. Prints the process CPU per run and the GB/s that
 * gives. Start it after the machine has been idle for a while to see the first run's cost.
 * Run: npx tsx benches/experiments/page-first-touch.ts [rounds]   (figures: notes/2026-11-24-durable-floor.md)
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { benchDataDir } from '../lib/data-dir.js';

const MIB = 1024 * 1024;
const TOTAL = 256 * MIB;
const ROLL = 64 * MIB;
const BATCH = MIB;

function run(dir: string, keep: boolean): number {
  const buf = Buffer.alloc(BATCH, 7);
  let n = 0;
  let fd = -1;
  let pos = 0;
  const roll = (): void => {
    if (fd >= 0) fs.closeSync(fd);
    if (!keep && n >= 2) fs.unlinkSync(join(dir, `f${n - 2}`));
    fd = fs.openSync(join(dir, `f${n++}`), 'w');
    pos = 0;
  };
  roll();
  const t0 = process.cpuUsage();
  for (let done = 0; done < TOTAL; done += BATCH) {
    if (pos >= ROLL) roll();
    fs.writeSync(fd, buf, 0, BATCH, pos);
    pos += BATCH;
  }
  const c = process.cpuUsage(t0);
  fs.closeSync(fd);
  return (c.user + c.system) / 1000;
}

const rounds = Number(process.argv[2] ?? 3);
const root = await benchDataDir('mqlog-first-touch-');
try {
  const rows: { mode: string; cpuMs: number; gbPerSec: number }[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const keep of [true, false]) {
      const dir = join(root, `r${r}-${keep ? 'keep' : 'recycle'}`);
      fs.mkdirSync(dir);
      const cpuMs = run(dir, keep);
      rows.push({ mode: keep ? 'keep every file' : 'delete all but two', cpuMs: Math.round(cpuMs), gbPerSec: Number((TOTAL / (cpuMs * 1e6)).toFixed(2)) });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  console.table(rows);
  console.log(JSON.stringify(rows));
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
