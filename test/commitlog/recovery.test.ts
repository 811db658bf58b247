/**
 * Crash recovery over crafted files: torn, zero-filled, bit-flipped, index longer or shorter
 * than its segment, blank new segments, half-deleted old ones, unknown versions.
 */
import test from 'ava';
import { appendFile, open, readdir, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CommitLogError, LogStore } from '../../commitlog/index.js';
import { appendRange, openStore, readAll, recordFor, tempDir } from './helpers.js';

const SEG = '00000000000000000000.segment';
const IDX = '00000000000000000000.index';
const HEADER = 16;
const ENTRY = 20;

/** Writes records 0..n-1 into log `name` and stops uncleanly (no clean-shutdown marker). */
async function writeLog(dir: string, name: string, n: number, segmentBytes = 1 << 20): Promise<void> {
  const store = await LogStore.open(dir, { retentionCheckMs: 0 });
  const log = await store.open(name, { segmentBytes });
  await appendRange(log, 0, n);
  await store.close();
  await unlink(join(dir, name, 'clean-shutdown'));
}

/** Byte position of record i in the first segment. */
function posOf(i: number): number {
  let p = HEADER;
  for (let k = 0; k < i; k++) p += recordFor(k).length;
  return p;
}

async function flipBit(path: string, position: number): Promise<void> {
  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, position);
  b[0] = (b[0] ?? 0) ^ 0x10;
  await fh.write(b, 0, 1, position);
  await fh.close();
}

const expected = (n: number): Buffer[] => Array.from({ length: n }, (_, i) => recordFor(i));

test('reopens over a torn last record and keeps every record before it', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 'torn', 20);
  await truncate(join(dir, 'torn', SEG), posOf(19) + 3);
  const log = await (await openStore(t, dir)).open('torn');
  t.is(log.end, 19);
  t.is(log.recovery.truncatedRecords, 1);
  t.deepEqual(await readAll(log), expected(19));
  t.is((await stat(join(dir, 'torn', SEG))).size, posOf(19));
  t.is((await stat(join(dir, 'torn', IDX))).size, HEADER + 19 * ENTRY);
  t.is(log.append(Buffer.from('after')), 19);
  await log.flush();
  t.deepEqual((await log.read(19, 1, 100)).records, [Buffer.from('after')]);
});

test('truncates a zero-filled tail of both files and never returns a zero-length record', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 'zeros', 10);
  await appendFile(join(dir, 'zeros', IDX), Buffer.alloc(ENTRY * 5));
  await appendFile(join(dir, 'zeros', SEG), Buffer.alloc(4096));
  const log = await (await openStore(t, dir)).open('zeros');
  t.is(log.end, 10);
  const recs = await readAll(log);
  t.deepEqual(recs, expected(10));
  t.true(recs.every((r) => r.length > 0));
  t.is((await stat(join(dir, 'zeros', SEG))).size, posOf(10));
});

test('an index longer than its segment is cut back to the records the segment holds', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 'longidx', 30);
  await truncate(join(dir, 'longidx', SEG), posOf(27));
  const log = await (await openStore(t, dir)).open('longidx');
  t.is(log.end, 27);
  t.deepEqual(await readAll(log), expected(27));
  t.is((await stat(join(dir, 'longidx', IDX))).size, HEADER + 27 * ENTRY);
});

test('an index shorter than its segment (torn entry) cuts the segment back to match', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 'shortidx', 30);
  await truncate(join(dir, 'shortidx', IDX), HEADER + 28 * ENTRY + 7);
  const log = await (await openStore(t, dir)).open('shortidx');
  t.is(log.end, 28);
  t.deepEqual(await readAll(log), expected(28));
  t.is((await stat(join(dir, 'shortidx', SEG))).size, posOf(28));
  t.is((await stat(join(dir, 'shortidx', IDX))).size, HEADER + 28 * ENTRY);
});

test('a bit flip in the last record is a torn tail: that record is dropped', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 'fliplast', 12);
  await flipBit(join(dir, 'fliplast', SEG), posOf(11) + 9);
  const log = await (await openStore(t, dir)).open('fliplast');
  t.is(log.end, 11);
  t.deepEqual(await readAll(log), expected(11));
});

test('a bit flip in the middle is ERR_COMMITLOG_CORRUPT naming the file and position', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 'flipmid', 40);
  await flipBit(join(dir, 'flipmid', SEG), posOf(17) + 4);
  const store = await openStore(t, dir);
  const err = await t.throwsAsync(store.open('flipmid'), { instanceOf: CommitLogError });
  t.is(err?.code, 'ERR_COMMITLOG_CORRUPT');
  t.is(err?.path, join(dir, 'flipmid', SEG));
  t.is(err?.position, posOf(17));
  t.regex(err?.message ?? '', /record 17/);
});

test('a bit flip in an index entry in the middle is ERR_COMMITLOG_CORRUPT', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 'flipidx', 40);
  await flipBit(join(dir, 'flipidx', IDX), HEADER + 5 * ENTRY + 14); // timestamp of entry 5
  const err = await t.throwsAsync((await openStore(t, dir)).open('flipidx'), { instanceOf: CommitLogError });
  t.is(err?.code, 'ERR_COMMITLOG_CORRUPT');
  t.is(err?.position, posOf(5));
});

test('after a clean close, middle damage surfaces on read as ERR_COMMITLOG_CORRUPT', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  await appendRange(await s1.open('cleanflip'), 0, 40);
  await s1.close();
  await flipBit(join(dir, 'cleanflip', SEG), posOf(20) + 8);
  const log = await (await openStore(t, dir)).open('cleanflip', { tailBytes: 0 });
  t.true(log.recovery.clean);
  t.is(log.end, 40);
  t.is((await log.read(0, 20, 1 << 20)).records.length, 20);
  const err = await t.throwsAsync(log.read(20, 1, 1 << 20), { instanceOf: CommitLogError });
  t.is(err?.code, 'ERR_COMMITLOG_CORRUPT');
  t.is(err?.position, posOf(20));
});

test('a clean marker over a damaged last record falls back to the full check', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  await appendRange(await s1.open('cleantorn'), 0, 15);
  await s1.close();
  await truncate(join(dir, 'cleantorn', SEG), posOf(14) + 1);
  const log = await (await openStore(t, dir)).open('cleantorn');
  t.is(log.end, 14);
  t.deepEqual(await readAll(log), expected(14));
});

test('an unknown format version is ERR_COMMITLOG_VERSION', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 'ver', 3);
  const fh = await open(join(dir, 'ver', SEG), 'r+');
  await fh.write(Buffer.from([9, 0, 0, 0]), 0, 4, 4);
  await fh.close();
  const err = await t.throwsAsync((await openStore(t, dir)).open('ver'), { instanceOf: CommitLogError });
  t.is(err?.code, 'ERR_COMMITLOG_VERSION');
});

test('a newest segment created but never written is removed and the log ends where it did', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 'blank', 50, 1024);
  const files = (await readdir(join(dir, 'blank'))).filter((f) => f.endsWith('.segment')).sort();
  const last = files.at(-1) ?? '';
  // A crash right after creating the next segment: empty and zero-filled files.
  await writeFile(join(dir, 'blank', '00000000000000000050.segment'), Buffer.alloc(0));
  await writeFile(join(dir, 'blank', '00000000000000000050.index'), Buffer.alloc(HEADER));
  const log = await (await openStore(t, dir)).open('blank', { segmentBytes: 1024 });
  t.is(log.end, 50);
  t.is(log.recovery.removedSegments, 1);
  t.true((await readdir(join(dir, 'blank'))).includes(last));
  t.false((await readdir(join(dir, 'blank'))).includes('00000000000000000050.segment'));
  t.deepEqual(await readAll(log), expected(50));
});

test('an oldest segment left without its index by an interrupted retention delete is removed', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 'half', 60, 1024);
  await unlink(join(dir, 'half', IDX));
  const log = await (await openStore(t, dir)).open('half', { segmentBytes: 1024 });
  t.true(log.start > 0);
  t.is(log.end, 60);
  t.deepEqual(await readAll(log), expected(60).slice(log.start));
  t.false((await readdir(join(dir, 'half'))).includes(SEG));
});

test('random garbage after the last index entry is truncated', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 'garbage', 25);
  const junk = Buffer.alloc(ENTRY * 8);
  for (let i = 0; i < junk.length; i++) junk[i] = (i * 131 + 7) & 0xff;
  await appendFile(join(dir, 'garbage', IDX), junk);
  const log = await (await openStore(t, dir)).open('garbage');
  t.is(log.end, 25);
  t.deepEqual(await readAll(log), expected(25));
});

test('a wholly torn single segment leaves an empty log that accepts appends', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 'gone', 5);
  await truncate(join(dir, 'gone', SEG), 10);
  const log = await (await openStore(t, dir)).open('gone');
  t.is(log.start, 0);
  t.is(log.end, 0);
  t.is(log.append(Buffer.from('fresh')), 0);
  await log.flush();
  t.deepEqual(await readAll(log), [Buffer.from('fresh')]);
});

test("durability 'never': a torn sealed segment (power loss) becomes the end of the log", async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  const l1 = await s1.open('pl', { segmentBytes: 1024, durability: { mode: 'never' } });
  await appendRange(l1, 0, 60);
  await s1.close();
  await unlink(join(dir, 'pl', 'clean-shutdown'));
  const bases = (await readdir(join(dir, 'pl'))).filter((f) => f.endsWith('.index')).sort();
  t.true(bases.length >= 4);
  // The second segment lost its last index entry and the segment bytes behind it.
  const second = bases[1] ?? '';
  const secondBase = Number(second.slice(0, 20));
  const thirdBase = Number((bases[2] ?? '').slice(0, 20));
  await truncate(join(dir, 'pl', second), HEADER + (thirdBase - secondBase - 1) * ENTRY);
  const log = await (await openStore(t, dir)).open('pl', { segmentBytes: 1024, durability: { mode: 'never' } });
  t.is(log.end, thirdBase - 1);
  t.deepEqual(await readAll(log), expected(thirdBase - 1));
  t.is((await readdir(join(dir, 'pl'))).filter((f) => f.endsWith('.segment')).length, 2);
});

test("durability 'batch': the same damage to a sealed segment is ERR_COMMITLOG_CORRUPT", async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  const l1 = await s1.open('pl', { segmentBytes: 1024 });
  await appendRange(l1, 0, 60);
  await s1.close();
  await unlink(join(dir, 'pl', 'clean-shutdown'));
  const bases = (await readdir(join(dir, 'pl'))).filter((f) => f.endsWith('.index')).sort();
  const second = bases[1] ?? '';
  await truncate(join(dir, 'pl', second), HEADER + ENTRY);
  const err = await t.throwsAsync((await openStore(t, dir)).open('pl', { segmentBytes: 1024 }), { instanceOf: CommitLogError });
  t.is(err?.code, 'ERR_COMMITLOG_CORRUPT');
  t.is(err?.path, join(dir, 'pl', second));
});
