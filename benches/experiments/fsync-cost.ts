/**
 * Experiment: what one durable commit costs on this machine. 400 batches of a positional 6,000 B
 * write followed by fdatasync, to one file and to two files in parallel (what a `batch` commit
 * of the commit log does: segment + index), appending vs writing into preallocated space.
 * Run: npx tsx benches/experiments/fsync-cost.ts   (figures: notes/2026-11-23-broker-core.md)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BATCHES = 400;
const WRITE_BYTES = 6000;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mqlog-fsync-'));
const buf = Buffer.alloc(WRITE_BYTES, 1);

function writeThenSync(fd: number, position: number): Promise<void> {
  return new Promise((resolve, reject) =>
    fs.write(fd, buf, 0, buf.length, position, (err) => (err ? reject(err) : fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())))),
  );
}

async function run(label: string, files: number, preallocate: boolean): Promise<void> {
  const fds = Array.from({ length: files }, (_, i) => fs.openSync(path.join(dir, `${label}-${i}`), 'w+'));
  if (preallocate) {
    for (const fd of fds) {
      fs.writeSync(fd, Buffer.alloc(BATCHES * WRITE_BYTES + 4096));
      fs.fdatasyncSync(fd);
    }
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < BATCHES; i++) await Promise.all(fds.map((fd) => writeThenSync(fd, i * WRITE_BYTES)));
  const cpu = process.cpuUsage(cpu0);
  const wallUs = ((performance.now() - t0) * 1000) / BATCHES;
  console.log(`${label.padEnd(22)} ${wallUs.toFixed(0).padStart(5)} µs wall, ${((cpu.user + cpu.system) / BATCHES).toFixed(0).padStart(4)} µs CPU per batch`);
  for (const fd of fds) fs.closeSync(fd);
}

for (let round = 1; round <= 2; round++) {
  await run(`1 file, appending`, 1, false);
  await run(`2 files, appending`, 2, false);
  await run(`2 files, preallocated`, 2, true);
}
fs.rmSync(dir, { recursive: true, force: true });
