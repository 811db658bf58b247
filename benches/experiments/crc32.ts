/**
 * Experiment: the speed of zlib.crc32 here, per 1 KiB record and over 64 KiB at once, to size
 * the checksum's share of the commit log's 1 KiB append gap.
 * Run: npx tsx benches/experiments/crc32.ts   (figures: notes/commitlog.md, run 5)
 */
import { crc32 } from 'node:zlib';

const block = Buffer.alloc(64 * 1024, 7);
const records = Array.from({ length: 64 }, (_, i) => block.subarray(i * 1024, (i + 1) * 1024));
const cases: Array<[string, () => number]> = [
  ['64 x crc32(1 KiB)', () => records.reduce((c, r) => c ^ crc32(r), 0)],
  ['crc32(64 KiB)', () => crc32(block)],
];
for (const [name, fn] of cases) {
  for (let i = 0; i < 2000; i++) fn();
  const runs = 20_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) fn();
  const ns = Number(process.hrtime.bigint() - t0) / runs;
  console.log(`${name.padEnd(18)} ${(ns / 1000).toFixed(1)} µs per 64 KiB = ${(block.length / ns).toFixed(2)} GB/s`);
}
