/**
 * The store-wide journal (StoreOptions.journal): rounds of many logs share one fdatasync, the
 * logs' own files are synced only by checkpoints, and a power loss that took every unsynced
 * write of the logs' files loses nothing a round committed. A power loss is simulated on a copy
 * of the data directory taken while the store runs, with the logs' files cut back to what a
 * checkpoint synced (here: nothing, or nothing since the checkpoint).
 */
import test from 'ava';
import { cp, readdir, stat, truncate, unlink, appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LogStore, nodeFileOps, type CommitLogError, type FileOps } from '../../commitlog/index.js';
import { decodeFrames, JOURNAL_PREFIX } from '../../commitlog/journal.js';
import { appendRange, openStore, readAll, recordFor, tempDir } from './helpers.js';

/**
 * nodeFileOps that count fdatasyncs per kind of file and can fail the journal's, and then (once
 * those failures are used up) the segments'.
 */
function countingOps(): {
  ops: FileOps;
  syncs: { journal: number; logs: number };
  failJournal(code: string, times: number): void;
  failSegments(code: string, times: number): void;
  pending(): { journal: number; segments: number };
} {
  const paths = new Map<number, string>();
  const syncs = { journal: 0, logs: 0 };
  const fail = { journal: { code: '', left: 0 }, segments: { code: '', left: 0 } };
  const injected = (f: { code: string; left: number }): Error | null => {
    if (f.left === 0) return null;
    f.left--;
    return Object.assign(new Error(`injected ${f.code}`), { code: f.code });
  };
  const ops: FileOps = {
    ...nodeFileOps,
    async open(path, create) {
      const fd = await nodeFileOps.open(path, create);
      paths.set(fd, path);
      return fd;
    },
    async fdatasync(fd) {
      const path = paths.get(fd) ?? '';
      if (path.includes(`/${JOURNAL_PREFIX}`)) {
        syncs.journal++;
        const err = injected(fail.journal);
        if (err !== null) throw err;
      } else {
        syncs.logs++;
        const err = path.endsWith('.segment') && fail.journal.left === 0 ? injected(fail.segments) : null;
        if (err !== null) throw err;
      }
      return nodeFileOps.fdatasync(fd);
    },
  };
  return {
    ops,
    syncs,
    failJournal: (code, times) => void (fail.journal = { code, left: times }),
    failSegments: (code, times) => void (fail.segments = { code, left: times }),
    pending: () => ({ journal: fail.journal.left, segments: fail.segments.left }),
  };
}

/** The "disk after a power loss": a copy of `dir` whose logs hold none of their unsynced writes. */
async function powerLossCopy(t: import('ava').ExecutionContext, dir: string, cutLogs: (log: string, file: string) => Promise<void>): Promise<string> {
  const copy = await tempDir(t);
  await cp(dir, copy, { recursive: true });
  for (const entry of await readdir(copy, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    for (const file of await readdir(join(copy, entry.name))) await cutLogs(entry.name, join(copy, entry.name, file));
  }
  return copy;
}

const journalFiles = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((f) => f.startsWith(JOURNAL_PREFIX)).sort();

test("logs appended to in one turn commit with one fdatasync of the journal and none of their own files", async (t) => {
  const dir = await tempDir(t);
  const c = countingOps();
  const store = await openStore(t, dir, { fileOps: c.ops, journal: true });
  const logs = await Promise.all(['a', 'b', 'c', 'd'].map((n) => store.open(n)));
  await Promise.all(logs.map((log) => appendRange(log, 0, 5))); // creates the files (directory syncs only)
  const before = { ...c.syncs };
  for (let round = 0; round < 3; round++) {
    for (const log of logs) for (let i = 0; i < 4; i++) log.append(recordFor(5 + round * 4 + i));
    await Promise.all(logs.map((log) => log.flush()));
  }
  t.is(c.syncs.logs - before.logs, 0, "no log's file was fdatasynced");
  t.is(c.syncs.journal - before.journal, 3, 'one journal fdatasync per turn, for four logs');
  for (const log of logs) t.is(log.committed, 17);
});

test('a round of journalDirectBytes or more fdatasyncs its own log files instead of going through the journal', async (t) => {
  const dir = await tempDir(t);
  const c = countingOps();
  await t.throwsAsync(() => LogStore.open(dir, { journal: true, journalDirectBytes: -1 }), { code: 'ERR_COMMITLOG_INVALID_OPTION' });
  const store = await openStore(t, dir, { fileOps: c.ops, journal: true, journalDirectBytes: 4096 });
  const log = await store.open('a');
  log.append(Buffer.alloc(100, 1));
  await log.flush(); // creates the files: directory syncs only
  const sizeOf = async () => (await stat(join(dir, (await journalFiles(dir))[0] as string))).size;
  let before = { ...c.syncs };
  let journalBytes = await sizeOf();
  log.append(Buffer.alloc(100, 2));
  await log.flush();
  t.deepEqual([c.syncs.journal - before.journal, c.syncs.logs - before.logs], [1, 0], 'a small round: one journal fdatasync');
  t.true((await sizeOf()) > journalBytes, 'and a frame in the journal');

  before = { ...c.syncs };
  journalBytes = await sizeOf();
  const big = Array.from({ length: 8 }, (_, i) => Buffer.alloc(1000, 10 + i));
  for (const r of big) log.append(r);
  await log.flush();
  t.deepEqual([c.syncs.journal - before.journal, c.syncs.logs - before.logs], [0, 2], '8 KB in one round: its segment and index are fdatasynced');
  t.is(await sizeOf(), journalBytes, 'and the journal did not grow');
  t.is(log.committed, 10);
  await store.close();
  // (journal-fuzz.test.ts takes power-loss images of stores mixing both kinds of round)
  const reopened = await openStore(t, dir, {});
  const back = await reopened.open('a');
  t.deepEqual(await readAll(back), [Buffer.alloc(100, 1), Buffer.alloc(100, 2), ...big]);
});

test('a power loss that took every unsynced write of the logs loses nothing committed: the journal writes it back', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir, { journal: true });
  const a = await store.open('a', { segmentBytes: 4096 });
  const b = await store.open('b');
  const ra = await appendRange(a, 0, 120); // several segments
  const rb = await appendRange(b, 0, 30);
  t.is((await journalFiles(dir)).length, 1);
  // nothing was checkpointed: the disk may hold none of the logs' bytes (their directory
  // entries were synced by the rounds that created them)
  const copy = await powerLossCopy(t, dir, (_log, file) => truncate(file, 0));
  const after = await LogStore.open(copy, { retentionCheckMs: 0 });
  t.teardown(() => after.close());
  t.true(after.journalReplay.frames > 0);
  t.is(after.journalReplay.tornBytes, 0);
  t.deepEqual(await journalFiles(copy), [], 'the replayed journal is deleted');
  const a2 = await after.open('a', { segmentBytes: 4096 });
  const b2 = await after.open('b');
  t.is(a2.end, 120);
  t.deepEqual(await readAll(a2), ra);
  t.deepEqual(await readAll(b2), rb);
});

test('records appended after the last commit are not invented, and a torn journal tail is ignored', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir, { journal: true });
  const log = await store.open('torn');
  const committed = await appendRange(log, 0, 10);
  const [journal] = await journalFiles(dir);
  // a crash mid-append of the next frame: half a frame, then garbage
  await appendFile(join(dir, journal as string), Buffer.from('MQJF\xff\xff\x00\x00half a frame', 'latin1'));
  const copy = await powerLossCopy(t, dir, (_log, file) => truncate(file, 0));
  const after = await LogStore.open(copy, { retentionCheckMs: 0 });
  t.teardown(() => after.close());
  t.true(after.journalReplay.tornBytes > 0);
  const log2 = await after.open('torn');
  t.deepEqual(await readAll(log2), committed);
});

test('a segment retention deleted is not brought back by replaying frames written before', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir, { journal: true });
  const log = await store.open('ret', { segmentBytes: 2048, retentionBytes: 4096 });
  await appendRange(log, 0, 200);
  await log.enforceRetention();
  const kept = (await readdir(join(dir, 'ret'))).sort();
  t.true(log.start > 0, 'retention deleted the oldest segments');
  const copy = await powerLossCopy(t, dir, async () => undefined); // files intact: only the deletes matter
  const after = await LogStore.open(copy, { retentionCheckMs: 0 });
  t.teardown(() => after.close());
  t.true(after.journalReplay.skipped > 0, 'frames of deleted segments were skipped');
  t.deepEqual((await readdir(join(copy, 'ret'))).sort(), kept);
  const log2 = await after.open('ret', { segmentBytes: 2048, retentionBytes: 4096 });
  t.is(log2.start, log.start);
  t.is(log2.end, 200);
});

test('past journalRotateBytes the journal moves to a new file and a checkpoint syncs the logs and deletes the old one', async (t) => {
  const dir = await tempDir(t);
  const c = countingOps();
  const store = await openStore(t, dir, { fileOps: c.ops, journal: true, journalRotateBytes: 8192 });
  const log = await store.open('rot');
  const recs = await appendRange(log, 0, 20);
  for (let i = 20; i < 200; i += 10) recs.push(...(await appendRange(log, i, i + 10)));
  for (let k = 0; k < 50 && (await journalFiles(dir)).length > 1; k++) await new Promise((r) => setTimeout(r, 10));
  const files = await journalFiles(dir);
  t.true(files.length <= 1, `old journal files deleted: ${files.join(', ')}`);
  t.not(files[0], `${JOURNAL_PREFIX}1`, 'the journal has moved on from its first file');
  t.true(c.syncs.logs >= 2, 'the checkpoint fdatasynced the log files');
  // a power loss now: the logs hold what the checkpoint synced; the current journal the rest
  const copy = await powerLossCopy(t, dir, async () => undefined);
  const after = await LogStore.open(copy, { retentionCheckMs: 0 });
  t.teardown(() => after.close());
  t.deepEqual(await readAll(await after.open('rot')), recs);
});

test('a failed journal fdatasync fails the rounds it carried, cuts the journal back, and the failed records never come back', async (t) => {
  const dir = await tempDir(t);
  const c = countingOps();
  const store = await openStore(t, dir, { fileOps: c.ops, journal: true });
  const a = await store.open('fa');
  const b = await store.open('fb');
  const ra = await appendRange(a, 0, 10);
  await appendRange(b, 0, 10);
  const [journal] = await journalFiles(dir);
  const sizeBefore = (await stat(join(dir, journal as string))).size;
  c.failJournal('EIO', 1); // Linux reports a writeback error to one fdatasync; the cut-back's succeeds
  for (let i = 10; i < 15; i++) {
    a.append(recordFor(i, 9));
    b.append(recordFor(i, 9));
  }
  const [ea, eb] = await Promise.all([t.throwsAsync<CommitLogError>(a.flush()), t.throwsAsync<CommitLogError>(b.flush())]);
  t.is(ea?.code, 'ERR_COMMITLOG_IO');
  t.is(eb?.code, 'ERR_COMMITLOG_IO');
  t.is(a.end, 10);
  t.is((await stat(join(dir, journal as string))).size, sizeBefore, 'the failed frames were cut off the journal');
  ra.push(...(await appendRange(a, 10, 15)));
  const copy = await powerLossCopy(t, dir, (_log, file) => truncate(file, 0));
  const after = await LogStore.open(copy, { retentionCheckMs: 0 });
  t.teardown(() => after.close());
  t.deepEqual(await readAll(await after.open('fa')), ra, 'the records written after the failure, not the failed ones');
});

test('a clean close checkpoints and deletes the journal; the next open finds the logs clean', async (t) => {
  const dir = await tempDir(t);
  const store = await LogStore.open(dir, { retentionCheckMs: 0, journal: true });
  const log = await store.open('cl');
  const recs = await appendRange(log, 0, 50);
  await store.close();
  t.deepEqual(await journalFiles(dir), []);
  const again = await openStore(t, dir, { journal: true });
  t.is(again.journalReplay.files, 0);
  const log2 = await again.open('cl');
  t.true(log2.recovery.clean);
  t.deepEqual(await readAll(log2), recs);
});

test('a journal file with a damaged header replays nothing and is deleted', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, `${JOURNAL_PREFIX}3`), Buffer.from('not a journal'));
  const store = await openStore(t, dir, { journal: true });
  t.is(store.journalReplay.files, 1);
  t.is(store.journalReplay.frames, 0);
  t.deepEqual(await journalFiles(dir), []);
  const log = await store.open('after');
  await appendRange(log, 0, 3);
  t.deepEqual(await journalFiles(dir), [`${JOURNAL_PREFIX}4`], 'numbering goes on after the replayed file');
});

test('when the journal cannot even be cut back, it refuses every later round instead of risking the failed records', async (t) => {
  const dir = await tempDir(t);
  const c = countingOps();
  const store = await openStore(t, dir, { fileOps: c.ops, journal: true });
  const log = await store.open('broken');
  await appendRange(log, 0, 5);
  c.failJournal('EIO', 2); // the round's fdatasync and the cut-back's
  log.append(recordFor(5));
  t.is((await t.throwsAsync<CommitLogError>(log.flush()))?.code, 'ERR_COMMITLOG_IO');
  log.append(recordFor(5));
  const err = await t.throwsAsync<CommitLogError>(log.flush());
  t.regex(err?.message ?? '', /refusing every sync until the store reopens/);
  t.is(log.committed, 5);
});

test('a checkpoint that cannot reopen a file (other than it being gone) keeps the old journal file for the next open', async (t) => {
  const dir = await tempDir(t);
  let failOpen: string | null = null;
  const ops: FileOps = {
    ...nodeFileOps,
    open: (path, create) => (failOpen !== null && path.includes(failOpen) ? Promise.reject(Object.assign(new Error('injected EIO'), { code: 'EIO' })) : nodeFileOps.open(path, create)),
  };
  // 4 fds: writing kb and kc evicts ka's, so the checkpoint has to open ka's files again;
  // kd's records then take the journal past 16 KiB and it rotates
  const store = await openStore(t, dir, { fileOps: ops, journal: true, journalRotateBytes: 16384, maxOpenFiles: 4 });
  const a = await store.open('ka');
  const ra = await appendRange(a, 0, 10);
  failOpen = '/ka/';
  for (const name of ['kb', 'kc']) await appendRange(await store.open(name), 0, 20);
  t.deepEqual(await journalFiles(dir), [`${JOURNAL_PREFIX}1`], 'not rotated yet');
  await appendRange(await store.open('kd'), 0, 100);
  for (let k = 0; k < 20; k++) await new Promise((r) => setTimeout(r, 5));
  const files = await journalFiles(dir);
  t.true(files.includes(`${JOURNAL_PREFIX}1`), `the first file stays: ${files.join(', ')}`);
  failOpen = null;
  const copy = await powerLossCopy(t, dir, (log, file) => (log === 'ka' ? truncate(file, 0) : Promise.resolve()));
  const after = await LogStore.open(copy, { retentionCheckMs: 0 });
  t.teardown(() => after.close());
  t.deepEqual(await readAll(await after.open('ka')), ra);
});

// ── regressions from the review of the first version (each failed before its fix) ──────────

test('replay writes only into files that exist: a segment retention half deleted is not given a blank index', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir, { journal: true, journalRotateBytes: 4096 });
  const log = await store.open('half', { segmentBytes: 16384 });
  let n = 0;
  const segments = async () => (await readdir(join(dir, 'half')).catch(() => [] as string[])).filter((f) => f.endsWith('.segment')).length;
  while ((await segments()) < 2) n = (await appendRange(log, n, n + 5)).length + n;
  n = (await appendRange(log, n, n + 5)).length + n;
  // a kill -9 between retention's two unlinks of the oldest segment: its index is gone
  const copy = await powerLossCopy(t, dir, async (_log, file) => (file.endsWith(`${'0'.repeat(20)}.index`) ? unlink(file) : undefined));
  const after = await LogStore.open(copy, { retentionCheckMs: 0 });
  t.teardown(() => after.close());
  const log2 = await after.open('half', { segmentBytes: 16384 });
  t.is(log2.end, n, 'every committed record of the newer segment is there');
  t.true(log2.start > 0, 'the half-deleted segment is gone, not read as a tear');
});

/** nodeFileOps whose next `times` fsyncs of directory `path` fail with EIO. */
function dirSyncFailing(path: string): { ops: FileOps; fail(times: number): void } {
  let failures = 0;
  const ops: FileOps = {
    ...nodeFileOps,
    fsyncDir: (p) => {
      if (p === path && failures > 0) {
        failures--;
        return Promise.reject(Object.assign(new Error('injected EIO'), { code: 'EIO' }));
      }
      return nodeFileOps.fsyncDir(p);
    },
  };
  return { ops, fail: (times) => (failures = times) };
}

test('a round whose directory sync fails is never in the journal: after a kill -9 its records do not come back', async (t) => {
  const dir = await tempDir(t);
  const { ops, fail } = dirSyncFailing(join(dir, 'dsf'));
  const store = await openStore(t, dir, { fileOps: ops, journal: true });
  const log = await store.open('dsf', { segmentBytes: 4096 });
  const good = await appendRange(log, 0, 10);
  fail(1); // the round rolls into a new segment and syncing its entry fails once
  for (let i = 10; i < 40; i++) log.append(recordFor(i, 5));
  await t.throwsAsync(log.flush());
  t.is(log.committed, 10);
  const copy = await powerLossCopy(t, dir, async () => undefined); // a kill -9: files as they are
  const after = await LogStore.open(copy, { retentionCheckMs: 0 });
  t.teardown(() => after.close());
  t.deepEqual(await readAll(await after.open('dsf', { segmentBytes: 4096 })), good);
});

test("a journal file whose header could not be synced is started again, so later rounds' frames are replayable", async (t) => {
  const dir = await tempDir(t);
  const { ops, fail } = dirSyncFailing(dir);
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('hdr');
  await appendRange(log, 0, 1); // the log's own directory exists and is synced
  await store.close();
  const journaled = await openStore(t, dir, { fileOps: ops, journal: true });
  const log2 = await journaled.open('hdr');
  fail(1); // the journal's sync of the root after creating its file
  log2.append(recordFor(1));
  await t.throwsAsync(log2.flush());
  const recs = await appendRange(log2, 1, 6);
  t.is(log2.committed, 6);
  const copy = await powerLossCopy(t, dir, async (_log, file) => truncate(file, file.endsWith('.segment') ? 16 + recordFor(0).length : 16 + 20));
  const after = await LogStore.open(copy, { retentionCheckMs: 0 });
  t.teardown(() => after.close());
  t.true(after.journalReplay.frames > 0);
  t.deepEqual((await readAll(await after.open('hdr'))).slice(1), recs);
});

test("a checkpoint closes its journal file's fd once, even when deleting the file fails", async (t) => {
  const dir = await tempDir(t);
  const live = new Set<number>();
  let journalCloses = 0;
  let strayCloses = 0; // closes of an fd nobody holds: the number may belong to another file by then
  const journalFds = new Set<number>();
  const ops: FileOps = {
    ...nodeFileOps,
    open: async (p, c) => {
      const fd = await nodeFileOps.open(p, c);
      live.add(fd);
      if (p.includes(`/${JOURNAL_PREFIX}`)) journalFds.add(fd);
      else journalFds.delete(fd);
      return fd;
    },
    openAppend: async (p) => {
      const fd = await nodeFileOps.openAppend(p);
      live.add(fd);
      return fd;
    },
    close: (fd) => {
      if (!live.delete(fd)) strayCloses++;
      else if (journalFds.delete(fd)) journalCloses++;
      return nodeFileOps.close(fd);
    },
    unlink: (p) => (p.includes(`/${JOURNAL_PREFIX}`) ? Promise.reject(Object.assign(new Error('injected EROFS'), { code: 'EROFS' })) : nodeFileOps.unlink(p)),
  };
  const store = await openStore(t, dir, { fileOps: ops, journal: true, journalRotateBytes: 4096 });
  const log = await store.open('once');
  for (let i = 0; i < 100; i += 10) await appendRange(log, i, i + 10);
  await new Promise((r) => setTimeout(r, 50));
  t.true(journalCloses > 0, 'a checkpoint ran');
  t.is(strayCloses, 0, 'no fd was closed twice');
  const b = await store.open('other');
  await appendRange(b, 0, 5);
  t.is(b.committed, 5, "another log's files are untouched");
});

test('replay keeps few files open and syncs each file once, however many logs its frames touch and interleave', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir, { journal: true });
  const logs = await Promise.all(Array.from({ length: 120 }, (_, i) => store.open(`many-${i}`)));
  // two rounds per log: each log's second frame comes after every other log's first
  for (let round = 0; round < 2; round++) {
    for (const l of logs) l.append(recordFor(round));
    await Promise.all(logs.map((l) => l.flush()));
  }
  const copy = await powerLossCopy(t, dir, async () => undefined);
  let open = 0;
  let peak = 0;
  let syncs = 0;
  const ops: FileOps = {
    ...nodeFileOps,
    open: async (p, c) => {
      const fd = await nodeFileOps.open(p, c);
      peak = Math.max(peak, ++open);
      return fd;
    },
    close: (fd) => {
      open--;
      return nodeFileOps.close(fd);
    },
    fdatasync: (fd) => {
      syncs++;
      return nodeFileOps.fdatasync(fd);
    },
  };
  const after = await LogStore.open(copy, { retentionCheckMs: 0, fileOps: ops });
  t.teardown(() => after.close());
  t.is(after.journalReplay.frames, 240);
  t.true(peak <= 10, `at most ${peak} files open during replay (240 touched)`);
  t.is(syncs, 240, 'one fdatasync per file written, not one per frame');
  const back = await after.open('many-7');
  t.deepEqual(await readAll(back), [recordFor(0), recordFor(1)]);
});

test("a checkpoint makes a deleted segment's deletion durable before it deletes the journal that held the segment's bytes", async (t) => {
  // Otherwise a power loss can bring back the segment's directory entry with none of its bytes
  // (only the journal had them), and recovery reads the empty segment as a tear and cuts the log.
  const dir = await tempDir(t);
  const calls: string[] = [];
  const ops: FileOps = {
    ...nodeFileOps,
    fsyncDir: (p) => {
      calls.push(`fsyncDir ${p}`);
      return nodeFileOps.fsyncDir(p);
    },
    unlink: (p) => {
      calls.push(`unlink ${p}`);
      return nodeFileOps.unlink(p);
    },
  };
  // t's frames all in the first journal file, which rotates only after the trim
  const store = await openStore(t, dir, { fileOps: ops, journal: true, journalRotateBytes: 16384 });
  const log = await store.open('t', { segmentBytes: 256 });
  for (let k = 0; k < 12; k++) {
    log.append(recordFor(2 * k));
    log.append(recordFor(2 * k + 1));
    await log.flush();
  }
  const from = calls.length;
  t.true((await log.trimBefore(6)) > 0, 'the oldest segment was deleted');
  // only another log writes now (no new segment of t, whose round would sync t's directory)
  const u = await store.open('u');
  for (let k = 0; k < 400 && !calls.slice(from).some((o) => o.startsWith(`unlink ${join(dir, JOURNAL_PREFIX)}`)); k++) {
    u.append(recordFor(k));
    await u.flush();
    await new Promise((r) => setImmediate(r));
  }
  const after = calls.slice(from);
  const segUnlink = after.findIndex((o) => o.startsWith(`unlink ${join(dir, 't')}`) && o.endsWith('.segment'));
  const journalUnlink = after.findIndex((o) => o.startsWith(`unlink ${join(dir, JOURNAL_PREFIX)}`));
  t.true(segUnlink >= 0 && journalUnlink > segUnlink, `the segment and then a journal file were deleted: ${after.join(', ')}`);
  const dirSync = after.findIndex((o, i) => i > segUnlink && o === `fsyncDir ${join(dir, 't')}`);
  t.true(dirSync > segUnlink && dirSync < journalUnlink, `t's directory was fsynced between the two deletions: ${after.join(', ')}`);
});

test("a failed fdatasync of a log's file outside a checkpoint keeps the journal files until the store reopens, and the records come back", async (t) => {
  // The failed call may have dropped dirty pages; the checkpoint's later fdatasync of the same
  // file then succeeds without them, so the journal holds the only durable copy.
  const dir = await tempDir(t);
  const c = countingOps();
  const store = await openStore(t, dir, { fileOps: c.ops, journal: true, journalRotateBytes: 4096 });
  const a = await store.open('a');
  for (let i = 0; i < 10; i++) a.append(recordFor(i));
  await a.flush();
  const first = await journalFiles(dir);
  c.failJournal('EIO', 1);
  c.failSegments('EIO', 1); // the repair after the failed round fdatasyncs the segment: that fails too
  a.append(recordFor(999));
  await t.throwsAsync(a.flush());
  // the log repairs its files (fdatasync fails once, then again successfully) and goes on
  for (let i = 10; i < 20; i++) a.append(recordFor(i));
  await a.flush();
  t.deepEqual(c.pending(), { journal: 0, segments: 0 }, "the repair's fdatasync of the segment failed as injected");
  const b = await store.open('b');
  for (let k = 0; k < 60; k++) {
    b.append(recordFor(k));
    await b.flush();
  }
  const now = await journalFiles(dir);
  t.true(now.length > 1, `journal rotated: ${now.join(', ')}`);
  t.true(
    first.every((f) => now.includes(f)),
    `the journal file of the rounds before the failed fdatasync is kept (${first.join(', ')} → ${now.join(', ')})`,
  );
  // power loss: a's own files lost everything unsynced; the journal brings every record back
  const copy = await powerLossCopy(t, dir, async (log, file) => {
    if (log === 'a') await truncate(file, 0);
  });
  const reopened = await LogStore.open(copy, { retentionCheckMs: 0 });
  t.teardown(() => reopened.close());
  const back = await reopened.open('a');
  t.deepEqual(await readAll(back), Array.from({ length: 20 }, (_, i) => recordFor(i)));
});

test('a checkpoint that cannot open a file once keeps only that journal file, and the next checkpoint deletes it', async (t) => {
  // Only a failed fdatasync keeps journal files until the store reopens; a transient open
  // failure (EMFILE while sockets fill the fd table) must not make every later file permanent.
  const dir = await tempDir(t);
  let failOpens = 0;
  const ops: FileOps = {
    ...nodeFileOps,
    open: (p, c) => {
      // only the checkpoint's reopen (a log's own writes reopen evicted files too)
      if (failOpens > 0 && p.includes(`${join(dir, 'a')}/`) && (new Error().stack ?? '').includes('checkpoint')) {
        failOpens--;
        return Promise.reject(Object.assign(new Error('injected EMFILE'), { code: 'EMFILE' }));
      }
      return nodeFileOps.open(p, c);
    },
  };
  // 4 fds: writing b and c evicts a's, so a checkpoint has to open a's files again
  const store = await openStore(t, dir, { fileOps: ops, journal: true, journalRotateBytes: 8192, maxOpenFiles: 4 });
  const logs = await Promise.all(['a', 'b', 'c'].map((n) => store.open(n)));
  let most = 0;
  for (let round = 0; round < 300; round++) {
    if (round === 20) failOpens = 1;
    for (const l of logs) l.append(Buffer.alloc(200, round & 0xff));
    await Promise.all(logs.map((l) => l.flush()));
    most = Math.max(most, (await journalFiles(dir)).length);
  }
  t.is(failOpens, 0, 'the open failed once, as injected');
  t.true((await journalFiles(dir)).length <= 2, `journal files left: ${(await journalFiles(dir)).join(', ')}`);
  t.true(most <= 3, `at most ${most} journal files at once`);
  await store.close();
  t.deepEqual(await journalFiles(dir), [], 'close deletes them all');
});
