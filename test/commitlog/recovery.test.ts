/**
 * Crash recovery over crafted files: torn, zero-filled, bit-flipped, index longer or shorter
 * than its segment, blank new segments, half-deleted old ones, unknown versions; and chunks
 * (the records one write checksums together) validated as a whole on open and on read.
 *
 * Most files here are written one record per flush, so every chunk holds one record and the
 * damage can be placed record by record; the chunk tests at the end write many per flush.
 */
import test from 'ava';
import { appendFile, open, readdir, readFile, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CommitLogError, LogStore, nodeFileOps, type FileOps } from '../../commitlog/index.js';
import type { CommitLog } from '../../commitlog/index.js';
import { encodeLine } from '../../commitlog/boot-list.js';
import { appendRange, listNames, markUnclean, openStore, readAll, recordFor, tempDir } from './helpers.js';

const SEG = '00000000000000000000.segment';
const IDX = '00000000000000000000.index';
const HEADER = 16;
const ENTRY = 20;

/** Appends records from..to-1 one flush each: one record per chunk. */
async function appendEach(log: CommitLog, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) await appendRange(log, i, i + 1);
}

/** Writes records 0..n-1 into log `name` (one per chunk) and stops uncleanly (not in the clean-shutdown list). */
async function writeLog(dir: string, name: string, n: number, segmentBytes = 1 << 20): Promise<void> {
  const store = await LogStore.open(dir, { retentionCheckMs: 0 });
  const log = await store.open(name, { segmentBytes });
  await appendEach(log, 0, n);
  await store.close();
  await markUnclean(dir, name);
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

/** The store's boot lists (`.boot-<id>` under the root): file name → the log names in it. */
async function bootLists(dir: string): Promise<Record<string, string[]>> {
  const lists: Record<string, string[]> = {};
  for (const f of (await readdir(dir)).filter((n) => n.startsWith('.boot-')).sort()) {
    lists[f] = await listNames(join(dir, f));
  }
  return lists;
}

/** Takes `name` out of every boot list under `dir`, as if its log had last been written in an earlier boot. */
async function unlist(dir: string, name: string): Promise<void> {
  for (const [f, names] of Object.entries(await bootLists(dir))) {
    await writeFile(join(dir, f), names.filter((n) => n !== name).map((n) => encodeLine([n])).join(''));
  }
}

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

// A power loss can keep a later unsynced write and lose an earlier one (the disk persists
// pages in any order until a flush); a process crash cannot (the page cache keeps every write).
// Each log records the boot it was written in; only a log written in this boot is held to
// "damage before an intact chunk is corruption".
test('after a reboot, damage before an intact chunk ends the log at the damage instead of refusing to open', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 'reboot', 40);
  const lists = Object.values(await bootLists(dir));
  t.deepEqual(lists, [['reboot']], "the store's boot list names the log");
  await flipBit(join(dir, 'reboot', SEG), posOf(17) + 4);
  // the same boot: strict
  const strict = await openStore(t, dir);
  t.is((await t.throwsAsync(strict.open('reboot'), { instanceOf: CommitLogError }))?.code, 'ERR_COMMITLOG_CORRUPT');
  await strict.close();
  // another boot: records before the damage are kept, the damaged one and everything after it dropped
  const after = await openStore(t, dir, { bootId: 'a-later-boot' });
  const log = await after.open('reboot');
  t.is(log.end, 17);
  t.false(log.recovery.sameBoot);
  t.true(log.recovery.cutBeforeIntact);
  t.is(log.recovery.truncatedRecords, 23);
  t.deepEqual(await readAll(log), expected(17));
  // the log goes on from there, and its first write in this boot records the boot
  await appendRange(log, 17, 20, 5);
  await after.close();
  t.deepEqual(await bootLists(dir), { '.boot-a-later-boot': ['reboot'] }, "the new boot's list replaced the old one");
  await markUnclean(dir, 'reboot');
  const again = await (await openStore(t, dir, { bootId: 'a-later-boot' })).open('reboot');
  t.true(again.recovery.sameBoot);
  t.false(again.recovery.cutBeforeIntact);
  t.is(again.end, 20);
});

test('after a reboot a damaged index entry before intact ones also ends the log; so does a log with no boot record (older data)', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 'rebootidx', 40);
  await flipBit(join(dir, 'rebootidx', IDX), HEADER + 5 * ENTRY + 14);
  const log = await (await openStore(t, dir, { bootId: 'a-later-boot' })).open('rebootidx');
  t.is(log.end, 5);
  t.true(log.recovery.cutBeforeIntact);
  t.deepEqual(await readAll(log), expected(5));

  await writeLog(dir, 'nomarker', 40);
  await unlist(dir, 'nomarker');
  await flipBit(join(dir, 'nomarker', SEG), posOf(30) + 4);
  const old = await (await openStore(t, dir)).open('nomarker');
  t.is(old.end, 30);
  t.false(old.recovery.sameBoot);
  t.true(old.recovery.cutBeforeIntact);
});

test('the boot record is written once per boot, before the first write: not per batch, not again after a restart in the same boot', async (t) => {
  const dir = await tempDir(t);
  const writes: string[] = [];
  const fileOps: FileOps = { ...nodeFileOps, append: (fd, data) => (writes.push(data.toString('latin1').trim().split(' ')[0] ?? ''), nodeFileOps.append(fd, data)) };
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0, fileOps, bootId: 'this-boot' });
  const l1 = await s1.open('once');
  await appendEach(l1, 0, 10);
  await appendEach(await s1.open('other'), 0, 3);
  t.deepEqual(writes, ['once', 'other'], 'one line per log');
  await s1.close();
  const s2 = await LogStore.open(dir, { retentionCheckMs: 0, fileOps, bootId: 'this-boot' });
  await appendEach(await s2.open('once'), 10, 15);
  await s2.close();
  t.is(writes.length, 2, 'a restart in the same boot finds its record and writes none');
  const s3 = await LogStore.open(dir, { retentionCheckMs: 0, fileOps, bootId: 'next-boot' });
  await appendEach(await s3.open('once'), 15, 16);
  await s3.close();
  t.deepEqual(writes, ['once', 'other', 'once']);
  t.deepEqual(await bootLists(dir), { '.boot-next-boot': ['once'] }, "the earlier boot's list is gone");
  await t.throwsAsync(LogStore.open(dir, { bootId: '' }), { code: 'ERR_COMMITLOG_INVALID_OPTION' });
  await t.throwsAsync(LogStore.open(dir, { bootId: '../x' }), { code: 'ERR_COMMITLOG_INVALID_OPTION' });
});

test("after a reboot a clean-shutdown marker is not trusted: the full check runs (under 'never' close does not sync; a stale marker can come back)", async (t) => {
  const dir = await tempDir(t);
  for (const durability of [{ mode: 'never' as const }, { mode: 'batch' as const }]) {
    const name = `clean-${durability.mode}`;
    const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
    await appendEach(await s1.open(name, { durability }), 0, 40);
    await s1.close(); // clean: the marker stays
    await flipBit(join(dir, name, SEG), posOf(17) + 4);
    // same boot: the marker is trusted, only the newest chunk is checked at open
    const same = await openStore(t, dir);
    t.is((await same.open(name, { durability })).end, 40);
    await same.close();
    const later = await (await openStore(t, dir, { bootId: 'a-later-boot' })).open(name, { durability });
    t.true(later.recovery.clean);
    t.false(later.recovery.sameBoot);
    t.true(later.recovery.cutBeforeIntact, durability.mode);
    t.is(later.end, 17);
  }
});

test('after a reboot the segment before the newest is validated leniently too: damage before an intact chunk ends the log there', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  await appendEach(await s1.open('pl2', { segmentBytes: 4096 }), 0, 60);
  await s1.close();
  await markUnclean(dir, 'pl2');
  const segs = (await readdir(join(dir, 'pl2'))).filter((f) => f.endsWith('.segment')).sort();
  const idxs = (await readdir(join(dir, 'pl2'))).filter((f) => f.endsWith('.index')).sort();
  t.true(segs.length >= 3);
  const base = Number(segs[1]?.slice(0, 20));
  // the second segment: a byte of its first record flipped, its last index entry torn
  await flipBit(join(dir, 'pl2', segs[1] ?? ''), HEADER + 2);
  const idxPath = join(dir, 'pl2', idxs[1] ?? '');
  await truncate(idxPath, (await stat(idxPath)).size - ENTRY);
  const log = await (await openStore(t, dir, { bootId: 'a-later-boot' })).open('pl2', { segmentBytes: 4096 });
  t.true(log.recovery.tornSealed);
  t.true(log.recovery.cutBeforeIntact);
  t.is(log.end, base, 'the log ends where the damage starts: the first record of the second segment');
  t.deepEqual(await readAll(log), expected(base));
});

test("a log is added to the boot list with the boot's first write; a failed list write fails no batch (the log is only lenient until listed), and the next batch tries again", async (t) => {
  const dir = await tempDir(t);
  let markers = 0;
  let failMarker = true;
  const fileOps: FileOps = {
    ...nodeFileOps,
    openAppend: async (path) => {
      if (failMarker) {
        failMarker = false;
        throw Object.assign(new Error('injected EIO'), { code: 'EIO' });
      }
      markers++;
      return nodeFileOps.openAppend(path);
    },
  };
  const store = await openStore(t, dir, { fileOps, bootId: 'boot-one' });
  const log = await store.open('order');
  await appendRange(log, 0, 3);
  t.is(log.end, 3, 'the batch was stored though its list write failed');
  t.deepEqual(await bootLists(dir), {}, 'not listed yet');
  await appendRange(log, 3, 6);
  t.is(markers, 1, 'listed by the next batch');
  await store.close();
  t.deepEqual(await bootLists(dir), { '.boot-boot-one': ['order'] });
  const again = await (await openStore(t, dir, { bootId: 'boot-one' })).open('order');
  t.true(again.recovery.sameBoot);
  t.deepEqual(await readAll(again), expected(6));
});

test('a bit flip in an index entry in the middle is ERR_COMMITLOG_CORRUPT', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 'flipidx', 40);
  await flipBit(join(dir, 'flipidx', IDX), HEADER + 5 * ENTRY + 14); // timestamp (high word) of entry 5
  const err = await t.throwsAsync((await openStore(t, dir)).open('flipidx'), { instanceOf: CommitLogError });
  t.is(err?.code, 'ERR_COMMITLOG_CORRUPT');
  t.is(err?.position, posOf(5));
});

test('after a clean close, middle damage surfaces on read as ERR_COMMITLOG_CORRUPT', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  await appendEach(await s1.open('cleanflip'), 0, 40);
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

test('a clean entry over a torn last record falls back to the full check', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  await appendEach(await s1.open('cleantorn'), 0, 15);
  await s1.close();
  await truncate(join(dir, 'cleantorn', SEG), posOf(14) + 1);
  const log = await (await openStore(t, dir)).open('cleantorn');
  t.false(log.recovery.clean, 'the sizes no longer match the stamp');
  t.is(log.end, 14);
  t.deepEqual(await readAll(log), expected(14));
});

test('a clean entry whose sizes still match, over a damaged newest chunk, falls back to the full check of the newest segment and the one before it', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  await appendEach(await s1.open('cleanflip2', { segmentBytes: 4096 }), 0, 60);
  await s1.close();
  const segs = (await readdir(join(dir, 'cleanflip2'))).filter((f) => f.endsWith('.segment')).sort();
  t.true(segs.length >= 3);
  // the segment before the newest: a byte of its last record flipped, sizes unchanged, so only
  // a full validation of that segment finds it (the size check between segments cannot)
  const prevSeg = join(dir, 'cleanflip2', segs[segs.length - 2] ?? '');
  await flipBit(prevSeg, (await stat(prevSeg)).size - 1);
  const newestBase = Number(segs[segs.length - 1]?.slice(0, 20));
  // the newest segment: a byte of its last record flipped, its size unchanged
  const newestSeg = join(dir, 'cleanflip2', segs[segs.length - 1] ?? '');
  await flipBit(newestSeg, (await stat(newestSeg)).size - 1);
  const log = await (await openStore(t, dir)).open('cleanflip2', { segmentBytes: 4096 });
  t.true(log.recovery.clean, 'the stamp matched');
  t.true(log.recovery.tornSealed, 'the quick check failed, so the segment before the newest was validated too');
  t.true(log.end < newestBase, 'and the log ends at its tear');
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

for (const durability of [{ mode: 'never' as const }, { mode: 'batch' as const }, { mode: 'batch' as const, lazyMs: 3_600_000 }]) {
  const label = durability.mode === 'never' ? "'never'" : 'lazyMs' in durability ? "'batch' with lazyMs" : "'batch'";
  test(`durability ${label}: a torn sealed segment (power loss) becomes the end of the log`, async (t) => {
    // 'never' forces nothing to disk; 'batch' syncs a round spanning two segments only after both
    // were written (more segments under lazyMs): a power loss can tear a sealed segment while
    // nothing of its tail was committed.
    const dir = await tempDir(t);
    const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
    const l1 = await s1.open('pl', { segmentBytes: 1024, durability });
    await appendEach(l1, 0, 60);
    await s1.close();
    await markUnclean(dir, 'pl');
    const bases = (await readdir(join(dir, 'pl'))).filter((f) => f.endsWith('.index')).sort();
    t.true(bases.length >= 4);
    // The second segment lost its last index entry and the segment bytes behind it.
    const second = bases[1] ?? '';
    const secondBase = Number(second.slice(0, 20));
    const thirdBase = Number((bases[2] ?? '').slice(0, 20));
    await truncate(join(dir, 'pl', second), HEADER + (thirdBase - secondBase - 1) * ENTRY);
    const log = await (await openStore(t, dir)).open('pl', { segmentBytes: 1024, durability });
    t.is(log.end, thirdBase - 1);
    t.deepEqual(await readAll(log), expected(thirdBase - 1));
    t.is((await readdir(join(dir, 'pl'))).filter((f) => f.endsWith('.segment')).length, 2);
  });
}

test('a sealed segment with no valid record ends the log at its base; the segment before it is sized, so writes go on after it', async (t) => {
  // e.g. a power loss before the round that wrote its index synced: the segment before it
  // becomes the newest and must be validated and sized as such, or its records are unreadable
  // and the next write lands on its header
  const dir = await tempDir(t);
  await writeLog(dir, 'mid', 40, 1024);
  const idxs = (await readdir(join(dir, 'mid'))).filter((f) => f.endsWith('.index')).sort();
  t.true(idxs.length >= 3);
  // the segment before the newest: the one an unclean open validates in full
  const torn = idxs[idxs.length - 2] ?? '';
  const tornBase = Number(torn.slice(0, 20));
  await unlink(join(dir, 'mid', torn));
  const log = await (await openStore(t, dir)).open('mid', { segmentBytes: 1024 });
  t.is(log.end, tornBase);
  t.true(log.recovery.tornSealed);
  t.is(log.recovery.truncatedRecords, 40 - tornBase);
  t.deepEqual(await readAll(log), expected(tornBase));
  t.is(log.append(recordFor(tornBase, 5)), tornBase);
  await log.flush();
  await log.close();
  const again = await (await openStore(t, dir)).open('mid', { segmentBytes: 1024 });
  t.deepEqual(await readAll(again), expected(tornBase).concat([recordFor(tornBase, 5)]));
});

test('a clean reopen reports no torn sealed segment', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 'ok', 40, 1024);
  const log = await (await openStore(t, dir)).open('ok', { segmentBytes: 1024 });
  t.false(log.recovery.tornSealed);
  t.is(log.recovery.truncatedRecords, 0);
  t.is(log.end, 40);
});

test('damage inside a torn sealed segment, before an intact chunk, is still ERR_COMMITLOG_CORRUPT naming the file when the log was written in this boot', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  const l1 = await s1.open('pl', { segmentBytes: 4096 });
  await appendEach(l1, 0, 60);
  await s1.close();
  await markUnclean(dir, 'pl');
  const segs = (await readdir(join(dir, 'pl'))).filter((f) => f.endsWith('.segment')).sort();
  const idxs = (await readdir(join(dir, 'pl'))).filter((f) => f.endsWith('.index')).sort();
  t.true(segs.length >= 3);
  // the second segment loses its last index entry (torn) and has a byte flipped near its start
  const fh = await open(join(dir, 'pl', segs[1] ?? ''), 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, HEADER + 2);
  b[0] = (b[0] as number) ^ 0xff;
  await fh.write(b, 0, 1, HEADER + 2);
  await fh.close();
  const idxPath = join(dir, 'pl', idxs[1] ?? '');
  const { size } = await stat(idxPath);
  await truncate(idxPath, size - ENTRY);
  const err = await t.throwsAsync((await openStore(t, dir)).open('pl', { segmentBytes: 4096 }), { instanceOf: CommitLogError });
  t.is(err?.code, 'ERR_COMMITLOG_CORRUPT');
  t.true((err?.path ?? '').startsWith(join(dir, 'pl')));
});

// ---------------------------------------------------------------- chunks of many records

/** Entry numbers whose len field carries the chunk-end flag (bit 31 of bytes 4-7). */
async function chunkEnds(path: string): Promise<number[]> {
  const { readFile } = await import('node:fs/promises');
  const idx = await readFile(path);
  const ends: number[] = [];
  for (let k = 0; HEADER + (k + 1) * ENTRY <= idx.length; k++) {
    if ((idx.readUInt32LE(HEADER + k * ENTRY + 4) & 0x80000000) !== 0) ends.push(k);
  }
  return ends;
}

test('a torn write loses its whole chunk and nothing before it', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  const l1 = await s1.open('tornchunk');
  await appendEach(l1, 0, 10);
  await appendRange(l1, 10, 40); // one flush: one chunk of 30 records
  await s1.close();
  await markUnclean(dir, 'tornchunk');
  t.deepEqual(await chunkEnds(join(dir, 'tornchunk', IDX)), [...Array.from({ length: 10 }, (_, i) => i), 39]);
  await truncate(join(dir, 'tornchunk', SEG), posOf(25) + 5);
  const log = await (await openStore(t, dir)).open('tornchunk');
  t.is(log.end, 10);
  t.is(log.recovery.truncatedRecords, 30);
  t.deepEqual(await readAll(log), expected(10));
  t.is((await stat(join(dir, 'tornchunk', SEG))).size, posOf(10));
});

test('a record read from the middle of a chunk comes back alone, verified with its whole chunk', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  const l1 = await s1.open('midchunk');
  await appendRange(l1, 0, 40);
  await appendRange(l1, 40, 45);
  await s1.close();
  const s2 = await LogStore.open(dir, { retentionCheckMs: 0 });
  const l2 = await s2.open('midchunk', { tailBytes: 0 });
  const one = await l2.read(20, 1, 1 << 20);
  t.deepEqual(one.records, [recordFor(20)]);
  t.is(one.next, 21);
  t.is((await l2.read(38, 5, 1 << 20)).records.length, 5); // across the two chunks
  await s2.close();
  await flipBit(join(dir, 'midchunk', SEG), posOf(3) + 2);
  const log = await (await openStore(t, dir)).open('midchunk', { tailBytes: 0 });
  t.true(log.recovery.clean);
  const err = await t.throwsAsync(log.read(20, 1, 1 << 20), { instanceOf: CommitLogError });
  t.is(err?.code, 'ERR_COMMITLOG_CORRUPT');
  t.is(err?.position, posOf(0));
  t.regex(err?.message ?? '', /records 0\.\.39/);
  t.deepEqual((await log.read(40, 10, 1 << 20)).records, expected(45).slice(40));
});

test('chunks end at 512 records or 32 KiB, a larger record is a chunk of its own, and any record reads back from disk', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('limits', { tailBytes: 0 });
  const recs: Buffer[] = [];
  const add = (r: Buffer): void => {
    recs.push(r);
    log.append(r);
  };
  for (let i = 0; i < 1500; i++) add(Buffer.from(`r${String(i).padStart(6, '0')}`)); // 7 B each
  await log.flush();
  for (let i = 0; i < 100; i++) add(Buffer.alloc(1000, i));
  add(Buffer.alloc(40_000, 7)); // larger than a chunk
  add(Buffer.from('after'));
  await log.flush();
  // Chunks also end where the records stop being contiguous in memory (a slab boundary),
  // so only their limits are fixed, not every boundary.
  const ends = await chunkEnds(join(dir, 'limits', IDX));
  t.true(ends.includes(1499) && ends.includes(1599) && ends.includes(1600) && ends.at(-1) === 1601, 'each flush ends a chunk');
  let start = 0;
  for (const end of ends) {
    const lens = recs.slice(start, end + 1).map((r) => r.length);
    t.true(lens.length <= 512, `chunk ${start}..${end} holds at most 512 records`);
    t.true(lens.length === 1 || lens.reduce((a, b) => a + b, 0) <= 32 * 1024, `chunk ${start}..${end} holds at most 32 KiB`);
    start = end + 1;
  }
  t.true(ends.filter((e) => e < 1500).length >= 3, '1500 small records need at least three chunks');
  for (const [from, max, bytes] of [
    [0, 2000, 1 << 30],
    [700, 3, 1 << 30],
    [1023, 2, 1 << 30],
    [1498, 10, 1 << 30],
    [1530, 100, 5000],
    [1599, 5, 1000],
    [1600, 5, 1 << 30],
  ] as const) {
    const got = await log.read(from, max, bytes);
    t.true(got.records.length >= 1, `read at ${from}`);
    t.deepEqual(got.records, recs.slice(from, from + got.records.length), `read at ${from}`);
    t.is(got.next, from + got.records.length);
  }
  t.deepEqual(await readAll(log), recs);
});

test('a bit flip in a chunk entry other than its last is caught by the chunk checksum', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  const l1 = await s1.open('entryflip');
  await appendEach(l1, 0, 10);
  await appendRange(l1, 10, 30);
  await appendEach(l1, 30, 40);
  await s1.close();
  await markUnclean(dir, 'entryflip');
  await flipBit(join(dir, 'entryflip', IDX), HEADER + 15 * ENTRY + 9); // timestamp of record 15
  const err = await t.throwsAsync((await openStore(t, dir)).open('entryflip'), { instanceOf: CommitLogError });
  t.is(err?.code, 'ERR_COMMITLOG_CORRUPT');
  t.is(err?.position, posOf(10));
  t.regex(err?.message ?? '', /record 10 .*record 30 after it is intact/);
});

/** Writes three chunks of five 50-byte records (A: 0..4, B: 5..9, C: 10..14), C's first record empty if asked; stops uncleanly. */
async function threeChunks(dir: string, name: string, cStartsEmpty: boolean): Promise<void> {
  const store = await LogStore.open(dir, { retentionCheckMs: 0 });
  const log = await store.open(name);
  for (const fill of [1, 2, 3]) {
    for (let i = 0; i < 5; i++) log.append(fill === 3 && i === 0 && cStartsEmpty ? Buffer.alloc(0) : Buffer.alloc(50, fill));
    await log.flush();
  }
  await store.close();
  await markUnclean(dir, name);
}

test('damage before an intact chunk that starts with an empty record is ERR_COMMITLOG_CORRUPT, not a silent truncation', async (t) => {
  const dir = await tempDir(t);
  await threeChunks(dir, 'emptyfirst', true);
  await flipBit(join(dir, 'emptyfirst', SEG), HEADER + 5 * 50 + 7); // inside chunk B
  const err = await t.throwsAsync((await openStore(t, dir)).open('emptyfirst'), { instanceOf: CommitLogError });
  t.is(err?.code, 'ERR_COMMITLOG_CORRUPT');
  t.is(err?.position, HEADER + 5 * 50);
  t.regex(err?.message ?? '', /record 5 .*record 10 after it is intact/);
});

test("a cleared chunk-end flag cannot hide the next chunk: it is found by its start flag", async (t) => {
  const dir = await tempDir(t);
  await threeChunks(dir, 'endflag', false);
  const idx = join(dir, 'endflag', IDX);
  const fh = await open(idx, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, HEADER + 9 * ENTRY + 7); // top byte of record 9's len field
  t.is((b[0] ?? 0) & 0x80, 0x80, 'record 9 ends chunk B');
  b[0] = (b[0] ?? 0) & 0x7f;
  await fh.write(b, 0, 1, HEADER + 9 * ENTRY + 7);
  await fh.close();
  const err = await t.throwsAsync((await openStore(t, dir)).open('endflag'), { instanceOf: CommitLogError });
  t.is(err?.code, 'ERR_COMMITLOG_CORRUPT');
  t.regex(err?.message ?? '', /record 5 .*record 10 after it is intact/);
});

test('a log found damaged is not recovered again by every open for damagedRetryMs; other open failures are retried at once', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 'dmg', 40);
  await flipBit(join(dir, 'dmg', SEG), posOf(17) + 4);
  let recoveries = 0; // each open of a log lists its directory first
  let failList = false;
  const fileOps = {
    ...nodeFileOps,
    readdir: async (path: string) => {
      if (path.endsWith('/dmg') || path.endsWith('/io')) {
        recoveries++;
        if (failList) {
          failList = false;
          throw Object.assign(new Error('injected EIO'), { code: 'EIO' });
        }
      }
      return nodeFileOps.readdir(path);
    },
  };
  const store = await openStore(t, dir, { fileOps, damagedRetryMs: 200 });
  for (let i = 0; i < 5; i++) t.is((await t.throwsAsync<CommitLogError>(store.open('dmg')))?.code, 'ERR_COMMITLOG_CORRUPT');
  t.is(recoveries, 1, 'one recovery for five opens');
  await new Promise((r) => setTimeout(r, 250));
  t.is((await t.throwsAsync<CommitLogError>(store.open('dmg')))?.code, 'ERR_COMMITLOG_CORRUPT');
  t.is(recoveries, 2, 'after damagedRetryMs the next open tries again');
  // an I/O error is not damage: the next open tries again at once, and succeeds
  failList = true;
  t.is((await t.throwsAsync<CommitLogError>(store.open('io')))?.code, 'ERR_COMMITLOG_IO');
  await store.open('io');
  t.is(recoveries, 4);
  // a format version this build does not know is damage as far as retrying goes
  await writeLog(dir, 'ver', 3);
  const fh = await open(join(dir, 'ver', SEG), 'r+');
  await fh.write(Buffer.from([9, 0, 0, 0]), 0, 4, 4);
  await fh.close();
  const first = await t.throwsAsync<CommitLogError>(store.open('ver'));
  t.is(first?.code, 'ERR_COMMITLOG_VERSION');
  t.is(await t.throwsAsync<CommitLogError>(store.open('ver')), first, 'the same error, from the cache');
  await t.throwsAsync(LogStore.open(dir, { damagedRetryMs: -1 }), { code: 'ERR_COMMITLOG_INVALID_OPTION' });
});

test('a boot-list write still running when the batch\'s data write fails is settled before the failure is reported', async (t) => {
  const dir = await tempDir(t);
  const events: string[] = [];
  let failWrite = true;
  const fileOps = {
    ...nodeFileOps,
    openAppend: async (path: string) => {
      await new Promise((r) => setTimeout(r, 100)); // a slow file system
      events.push('marker created');
      return nodeFileOps.openAppend(path);
    },
    writevSync: (fd: number, bufs: readonly Buffer[], pos: number) => {
      if (failWrite) {
        failWrite = false;
        throw Object.assign(new Error('injected EIO'), { code: 'EIO' });
      }
      nodeFileOps.writevSync?.(fd, bufs, pos);
    },
  };
  const store = await openStore(t, dir, { fileOps, bootId: 'b1' });
  const log = await store.open('x');
  log.append(Buffer.from('a'));
  await log.flush().catch(() => events.push('flush failed'));
  await store.close();
  events.push('closed');
  t.deepEqual(events, ['marker created', 'flush failed', 'closed'], 'nothing of the log is still running after close()');
});
