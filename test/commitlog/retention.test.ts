/**
 * Retention by total bytes and by age: whole oldest segments go, the active one never does,
 * and reading below the start answers belowStart with the earliest offset.
 */
import test from 'ava';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LogStore } from '../../commitlog/index.js';
import { faultyOps, openStore, readAll, recordFor, tempDir } from './helpers.js';

async function segmentBases(dir: string): Promise<number[]> {
  return (await readdir(dir))
    .filter((f) => f.endsWith('.segment'))
    .map((f) => Number(f.slice(0, 20)))
    .sort((a, b) => a - b);
}

test('retention by bytes deletes whole oldest segments until the log fits', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('bytes', { segmentBytes: 1024, retentionBytes: 4096 });
  for (let i = 0; i < 300; i++) log.append(recordFor(i));
  await log.flush();
  await log.enforceRetention();
  const bases = await segmentBases(join(dir, 'bytes'));
  t.true(log.diskBytes <= 4096, `disk ${log.diskBytes}`);
  t.is(log.start, bases[0] ?? -1);
  t.true(log.start > 0);
  t.is(log.end, 300);
  const all = await readAll(log);
  t.deepEqual(all, Array.from({ length: 300 - log.start }, (_, k) => recordFor(log.start + k)));
});

test('reading below the start answers belowStart with the earliest offset, not an error', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('below', { segmentBytes: 512, retentionBytes: 1024 });
  for (let i = 0; i < 100; i++) log.append(recordFor(i));
  await log.flush();
  await log.enforceRetention();
  t.true(log.start > 0);
  const expected = { status: 'belowStart', records: [], timestamps: [], next: log.start };
  t.deepEqual(await log.read(0, 10, 1000), expected);
  t.deepEqual(log.readTail(0, 10, 1000), expected);
  t.is((await log.read(log.start, 1, 1000)).status, 'records');
});

test('retention never deletes the active segment, even with a limit of 0 bytes', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('active', { segmentBytes: 256, retentionBytes: 0 });
  for (let i = 0; i < 50; i++) log.append(recordFor(i));
  await log.flush();
  await log.enforceRetention();
  const bases = await segmentBases(join(dir, 'active'));
  t.is(bases.length, 1);
  t.is(log.start, bases[0] ?? -1);
  t.true(log.end > log.start);
  t.deepEqual(await readAll(log), Array.from({ length: 50 - log.start }, (_, k) => recordFor(log.start + k)));
});

test('retention by age deletes segments whose newest record is older than retentionMs', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('age', { segmentBytes: 1024, retentionMs: 60_000 });
  const now = Date.now();
  for (let i = 0; i < 100; i++) log.append(recordFor(i), now - 3_600_000); // an hour old
  for (let i = 100; i < 200; i++) log.append(recordFor(i), now);
  await log.flush();
  await log.enforceRetention();
  t.true(log.start > 0 && log.start <= 100, `start ${log.start}`);
  const first = await log.read(log.start, 1, 1 << 20);
  t.is(first.status, 'records');
  // The first retained segment holds at least one recent record.
  const bases = await segmentBases(join(dir, 'age'));
  t.true((bases[1] ?? Infinity) > 100);
});

test('age retention keeps an old active segment', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('oldactive', { retentionMs: 1000 });
  for (let i = 0; i < 10; i++) log.append(recordFor(i), Date.now() - 86_400_000);
  await log.flush();
  t.is(await log.enforceRetention(), 0);
  t.is(log.start, 0);
  t.is((await readAll(log)).length, 10);
});

test('the start survives a reopen after retention', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  const log1 = await s1.open('persist', { segmentBytes: 1024, retentionBytes: 3000 });
  for (let i = 0; i < 200; i++) log1.append(recordFor(i));
  await log1.flush();
  await log1.enforceRetention();
  const start = log1.start;
  await s1.close();
  const log2 = await (await openStore(t, dir)).open('persist', { segmentBytes: 1024, retentionBytes: 3000 });
  t.is(log2.start, start);
  t.is(log2.end, 200);
  t.is((await log2.read(0, 1, 100)).status, 'belowStart');
});

test("the store's timer applies age retention to open logs", async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir, { retentionCheckMs: 20 });
  const log = await store.open('timer', { segmentBytes: 512, retentionMs: 50 });
  for (let i = 0; i < 60; i++) log.append(recordFor(i), Date.now());
  await log.flush();
  t.is(log.start, 0);
  const deadline = Date.now() + 5000;
  while (log.start === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.true(log.start > 0);
});

test('retention by bytes runs on its own after a commit crosses the limit', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('auto', { segmentBytes: 1024, retentionBytes: 2048 });
  for (let i = 0; i < 200; i++) log.append(recordFor(i));
  await log.flush();
  const deadline = Date.now() + 5000;
  while (log.diskBytes > 2048 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  t.true(log.diskBytes <= 2048);
});

test('trimBefore deletes the whole segments below an offset and keeps everything from it on', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('trim', { segmentBytes: 512 });
  for (let i = 0; i < 100; i++) log.append(recordFor(i));
  await log.flush();
  const deleted = await log.trimBefore(60);
  t.true(deleted > 0);
  t.true(log.start <= 60 && log.start > 0, `start ${log.start}`);
  const bases = await segmentBases(join(dir, 'trim'));
  t.is(bases[0], log.start);
  t.deepEqual(await readAll(log), Array.from({ length: 100 - log.start }, (_, k) => recordFor(log.start + k)));
  await log.trimBefore(1000); // past the end: everything but the active segment goes
  const left = await segmentBases(join(dir, 'trim'));
  t.is(left.length, 1);
  t.is(log.start, left[0] ?? -1);
  t.is(log.end, 100);
});

test('retention keeps the newest committed segment while a round that rolled past it is in flight: a failed round cannot leave the log empty', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const holds: (() => void)[] = [];
  const held = { ...ops, async fdatasync(fd: number): Promise<void> {
    if (ops.fail.fdatasync !== undefined) await new Promise<void>((r) => holds.push(r));
    return ops.fdatasync(fd);
  } };
  const store = await openStore(t, dir, { fileOps: held });
  const log = await store.open('roll', { durability: { mode: 'batch' }, segmentBytes: 200 });
  for (let i = 0; i < 4; i++) log.append(Buffer.alloc(40, i));
  await log.flush();
  ops.fail.fdatasync = 'EIO';
  log.append(Buffer.alloc(150, 9)); // rolls to a new segment at base 4
  const round = log.flush().then(() => 'ok', (e: { code: string }) => e.code);
  while (holds.length === 0) await new Promise((r) => setTimeout(r, 1));
  const trimmed = log.trimBefore(4);
  const release = setInterval(() => holds.splice(0).forEach((r) => r()), 1);
  t.teardown(() => clearInterval(release));
  t.is(await trimmed, 0, 'segment 0 holds the last committed records');
  t.is(await round, 'ERR_COMMITLOG_IO');
  delete ops.fail.fdatasync;
  await log.close();
  const again = await store.open('roll', { segmentBytes: 200 });
  t.is(again.end, 4, 'offsets 0..3 stay taken');
  t.deepEqual(await readAll(again), [0, 1, 2, 3].map((i) => Buffer.alloc(40, i)));
  t.is(again.append(Buffer.from('next')), 4);
});
