/**
 * ENOSPC / EIO injected through the FileOps seam: the caller gets a typed error, the 'failed'
 * event names the lost range, and the log stays readable and consistent, also after reopen.
 */
import test from 'ava';
import { cp, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type CommitLog, LogStore, type CommitLogError, type FileOps, nodeFileOps } from '../../commitlog/index.js';
import { appendRange, faultyOps, openStore, pathAwareOps, readAll, recordFor, tempDir } from './helpers.js';

test('ENOSPC on append reaches the caller as ERR_COMMITLOG_NO_SPACE and the log stays consistent', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('nospace', { tailBytes: 0 });
  const good = await appendRange(log, 0, 10);
  const failed: [string, number, number][] = [];
  log.on('failed', (err, from, to) => failed.push([err.code, from, to]));
  ops.fail.writev = 'ENOSPC';
  for (let i = 10; i < 15; i++) log.append(recordFor(i, 1));
  const err = await t.throwsAsync<CommitLogError>(log.flush());
  t.is(err?.code, 'ERR_COMMITLOG_NO_SPACE');
  t.is((err?.cause as { code?: string }).code, 'ENOSPC');
  t.deepEqual(failed, [['ERR_COMMITLOG_NO_SPACE', 10, 15]]);
  t.is(log.end, 10);
  t.is(log.committed, 10);
  t.deepEqual(await readAll(log), good);
  // Space comes back: the next appends reuse the offsets and land intact.
  delete ops.fail.writev;
  const more = await appendRange(log, 10, 20, 2);
  t.deepEqual(await readAll(log), [...good, ...more]);
  await log.close();
  const again = await store.open('nospace');
  t.deepEqual(await readAll(again), [...good, ...more]);
});

test('a short write before ENOSPC is truncated away before the next batch', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('partial', { tailBytes: 0 });
  const good = await appendRange(log, 0, 5);
  ops.fail.writev = 'ENOSPC';
  ops.partialBytes = 37;
  for (let i = 5; i < 9; i++) log.append(recordFor(i, 3));
  await t.throwsAsync(log.flush());
  delete ops.fail.writev;
  const more = await appendRange(log, 5, 7, 4);
  t.deepEqual(await readAll(log), [...good, ...more]);
  // An unclean reopen (no marker) validates everything and finds exactly these records.
  const s2 = await LogStore.open(dir, { retentionCheckMs: 0 });
  t.teardown(() => s2.close());
  const again = await s2.open('partial');
  t.false(again.recovery.clean);
  t.is(again.recovery.truncatedRecords, 0);
  t.deepEqual(await readAll(again), [...good, ...more]);
});

test('EIO on fdatasync is ERR_COMMITLOG_IO and nothing of the batch becomes visible', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('eio');
  const good = await appendRange(log, 0, 3);
  ops.fail.fdatasync = 'EIO';
  log.append(Buffer.from('lost'));
  const err = await t.throwsAsync<CommitLogError>(log.flush());
  t.is(err?.code, 'ERR_COMMITLOG_IO');
  t.is(log.readTail(3, 1, 100)?.status, 'caughtUp');
  t.deepEqual(await readAll(log), good);
  delete ops.fail.fdatasync;
  log.append(Buffer.from('kept'));
  await log.flush();
  t.deepEqual(await readAll(log), [...good, Buffer.from('kept')]);
});

test('a failure while rolling to a new segment removes the half-created segment', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('roll', { segmentBytes: 400, tailBytes: 0 });
  const good = await appendRange(log, 0, 3);
  ops.fail.writev = 'EIO';
  for (let i = 3; i < 30; i++) log.append(recordFor(i, 5));
  await t.throwsAsync(log.flush());
  delete ops.fail.writev;
  const more = await appendRange(log, 3, 30, 6);
  t.deepEqual(await readAll(log), [...good, ...more]);
  await log.close();
  t.deepEqual(await readAll(await store.open('roll', { segmentBytes: 400 })), [...good, ...more]);
});

test('when the repair itself fails the next batch fails too, and succeeds once the disk recovers', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('repair');
  const good = await appendRange(log, 0, 4);
  ops.fail.writev = 'EIO';
  ops.fail.ftruncate = 'EIO';
  ops.partialBytes = 10;
  log.append(Buffer.from('a'));
  await t.throwsAsync(log.flush());
  delete ops.fail.writev;
  log.append(Buffer.from('b'));
  t.is((await t.throwsAsync<CommitLogError>(log.flush()))?.code, 'ERR_COMMITLOG_IO');
  delete ops.fail.ftruncate;
  log.append(Buffer.from('c'));
  await log.flush();
  t.deepEqual(await readAll(log), [...good, Buffer.from('c')]);
});

test('a log keeps serving reads while its appends fail', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('reads', { tailBytes: 1 << 20 });
  const good = await appendRange(log, 0, 50);
  ops.fail.writev = 'ENOSPC';
  for (let round = 0; round < 3; round++) {
    log.append(Buffer.from('x'));
    await t.throwsAsync(log.flush());
    t.deepEqual(log.readTail(0, 100, 1 << 20)?.records, good);
  }
});

test("each durability policy issues the fdatasyncs it promises: 'batch' two per batch, 'interval' on its timer, 'never' none", async (t) => {
  const dir = await tempDir(t);
  const counts: Record<string, number> = {};
  // The interval log under test for "no sync per batch" uses a timer far longer than the test, so a
  // slow machine (CI on 2 busy cores) cannot let the timer fire between the batches; a second
  // interval log with a short timer then shows the timer does sync.
  const policies = [
    { name: 'batch', durability: { mode: 'batch' } },
    { name: 'interval', durability: { mode: 'interval', intervalMs: 60_000 } },
    { name: 'interval-timer', durability: { mode: 'interval', intervalMs: 20 } },
    { name: 'never', durability: { mode: 'never' } },
  ] as const;
  for (const { name, durability } of policies) {
    const ops = faultyOps();
    const store = await LogStore.open(`${dir}/${name}`, { retentionCheckMs: 0, fileOps: ops });
    const log = await store.open('d', { durability });
    await appendRange(log, 0, 5); // first batch creates the segment
    ops.calls.fdatasync = 0;
    for (let b = 0; b < 3; b++) await appendRange(log, 5 + b, 6 + b);
    const afterBatches = ops.calls.fdatasync ?? 0;
    if (name !== 'interval-timer') t.is(afterBatches, name === 'batch' ? 6 : 0, name);
    const deadline = Date.now() + 5_000;
    do await new Promise((r) => setTimeout(r, 20));
    while (name === 'interval-timer' && (ops.calls.fdatasync ?? 0) < 2 && Date.now() < deadline);
    counts[name] = ops.calls.fdatasync ?? 0;
    await store.close();
    if (name === 'never') t.is(ops.calls.fdatasync ?? 0, 0, 'never syncs, not even on close');
  }
  t.is(counts.batch, 6);
  t.is(counts.interval, 0, 'a 60 s interval has not synced yet');
  t.true((counts['interval-timer'] ?? 0) >= 2, `the 20 ms timer synced ${counts['interval-timer']} times`);
});

test('by default a batch up to 512 KiB is written on the calling thread, and a larger one sends its segment write to the threadpool', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('default-threshold', { tailBytes: 0 });
  await appendRange(log, 0, 1, 16); // the first batch creates the files: not counted
  // faultyOps counts a synchronous write under writev too
  const calls = (): [number, number] => [ops.calls.writevSync ?? 0, (ops.calls.writev ?? 0) - (ops.calls.writevSync ?? 0)];
  const [sync0, pool0] = calls();
  // 500 records: 512,000 B + 10,000 B of index entries = 522,000 B, just under 512 KiB (524,288)
  for (let i = 0; i < 500; i++) log.append(Buffer.alloc(1024, i));
  await log.flush();
  t.deepEqual(calls(), [sync0 + 2, pool0], 'segment and index written on the calling thread');
  // 510 records: 522,240 B + 10,200 B = 532,440 B, just over it
  for (let i = 0; i < 510; i++) log.append(Buffer.alloc(1024, i));
  await log.flush();
  t.deepEqual(calls(), [sync0 + 3, pool0 + 1], 'the segment write went to the threadpool; the 10,200 B index write did not');
  t.is(log.committed, 1011);
});

test('small batches are written on the calling thread, large ones on the threadpool, and both fail alike', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops, syncWriteMaxBytes: 4096 });
  const log = await store.open('mixed', { tailBytes: 0 });
  const small = await appendRange(log, 0, 10, 16); // ~10 × 16 B: synchronous
  t.is(ops.calls.writevSync, 2, 'one segment write and one index write, both synchronous');
  const big = [Buffer.alloc(8192, 1), Buffer.alloc(8192, 2)];
  for (const b of big) log.append(b);
  await log.flush();
  t.is(ops.calls.writevSync, 3, "the big batch's segment write left the event-loop thread; its 40-byte index write did not");
  t.is(ops.calls.writev, 4);
  ops.fail.writev = 'EIO';
  log.append(Buffer.from('small'));
  t.is((await t.throwsAsync<CommitLogError>(log.flush()))?.code, 'ERR_COMMITLOG_IO');
  log.append(Buffer.alloc(8192, 3));
  t.is((await t.throwsAsync<CommitLogError>(log.flush()))?.code, 'ERR_COMMITLOG_IO');
  delete ops.fail.writev;
  t.deepEqual(await readAll(log), [...small, ...big]);
});

test("under 'batch', a batch's fdatasync starts only after the nextTicks its 'flushed' handlers queued (a broker's socket uncork) have run, in the same turn", async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('order');
  const seen: string[] = [];
  log.on('flushed', () => {
    seen.push(`flushed, ${ops.calls.fdatasync ?? 0} syncs`);
    process.nextTick(() => seen.push(`uncork, ${ops.calls.fdatasync ?? 0} syncs`));
    setImmediate(() => seen.push(`next turn, ${ops.calls.fdatasync ?? 0} syncs`));
  });
  log.append(Buffer.from('m'));
  await log.flush();
  // ...and not a whole event-loop turn later either
  t.deepEqual(seen, ['flushed, 0 syncs', 'uncork, 0 syncs', 'next turn, 2 syncs']);
  t.is(ops.calls.fdatasync, 2, 'then the round synced the segment and the index');
  t.is(log.committed, 1);
});

test("under 'batch', records are 'flushed' (readable as unsynced) before their fdatasync commits them, and a failed sync takes them back", async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const held: Array<() => void> = [];
  const realSync = ops.fdatasync;
  ops.fdatasync = (fd) => new Promise<void>((resolve, reject) => held.push(() => realSync(fd).then(resolve, reject)));
  const heldSyncs = async (n: number) => {
    for (let i = 0; i < 500 && held.length < n; i++) await new Promise((r) => setTimeout(r, 2));
    t.is(held.length, n);
  };
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('early');
  const flushedAt = new Promise<number>((resolve) => log.once('flushed', resolve));
  for (const s of ['a', 'b', 'c']) log.append(Buffer.from(s));
  const committed = log.flush();
  t.is(await flushedAt, 3);
  t.is(log.flushed, 3);
  t.is(log.committed, 0);
  t.is(log.readTail(0, 10, 1 << 20)?.status, 'caughtUp', 'a committed-only reader sees nothing yet');
  t.deepEqual(log.readTail(0, 10, 1 << 20, true)?.records.map(String), ['a', 'b', 'c']);
  t.deepEqual((await log.read(1, 10, 1 << 20, true)).records.map(String), ['b', 'c']);
  await heldSyncs(2); // the segment's and the index's
  while (held.length > 0) (held.shift() as () => void)();
  await committed;
  t.is(log.committed, 3);

  // The next batch's sync fails: the flushed records are taken back and their offsets reused.
  const failed = new Promise<[number, number]>((resolve) => log.once('failed', (_e, from, to) => resolve([from, to])));
  log.append(Buffer.from('lost'));
  const lost = log.flush();
  lost.catch(() => undefined);
  await new Promise<number>((resolve) => log.once('flushed', resolve));
  t.is(log.readTail(3, 10, 1 << 20, true)?.records.length, 1);
  ops.fail.fdatasync = 'EIO';
  await heldSyncs(2);
  while (held.length > 0) (held.shift() as () => void)();
  t.deepEqual(await failed, [3, 4]);
  await t.throwsAsync(lost);
  t.is(log.flushed, 3);
  t.is(log.end, 3);
  t.is(log.readTail(3, 10, 1 << 20, true)?.status, 'caughtUp');
  delete ops.fail.fdatasync;
  ops.fdatasync = realSync;
  t.is(log.append(Buffer.from('kept')), 3);
  await log.flush();
  t.deepEqual((await readAll(log)).map(String), ['a', 'b', 'c', 'kept']);
});

test("under 'batch', the next batch is written while the previous one's fdatasync runs; a failed round takes back every unsynced batch, new segments included", async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  let holding = true;
  const held: Array<(fail: boolean) => void> = [];
  const realSync = ops.fdatasync;
  ops.fdatasync = (fd) =>
    holding
      ? new Promise<void>((resolve, reject) => held.push((fail) => (fail ? reject(Object.assign(new Error('injected EIO'), { code: 'EIO' })) : realSync(fd).then(resolve, reject))))
      : realSync(fd);
  const heldSyncs = async (n: number) => {
    for (let i = 0; i < 500 && held.length < n; i++) await new Promise((r) => setTimeout(r, 2));
    t.is(held.length, n);
  };
  const nextFlushed = (log: CommitLog) => new Promise<number>((resolve) => log.once('flushed', resolve));
  const store = await openStore(t, dir, { fileOps: ops });
  // 64-byte segments: a header plus a few small records, so batches roll to new segments
  const log = await store.open('pipe', { segmentBytes: 64 });
  let flushed = nextFlushed(log);
  log.append(Buffer.from('one'));
  const first = log.flush();
  t.is(await flushed, 1);
  await heldSyncs(2);
  flushed = nextFlushed(log);
  log.append(Buffer.from('two'));
  const second = log.flush();
  t.is(await flushed, 2, 'written while the first sync is still running');
  t.is(held.length, 2, 'one sync round at a time');
  for (const release of held.splice(0)) release(false);
  await first;
  await heldSyncs(2);
  for (const release of held.splice(0)) release(false);
  await second;
  t.is(log.committed, 2);

  // two unsynced batches, the second on a new segment, then the round fails
  const segmentsBefore = log.diskBytes;
  const failed: Array<[number, number]> = [];
  log.on('failed', (_e, from, to) => failed.push([from, to]));
  flushed = nextFlushed(log);
  log.append(Buffer.alloc(40, 1));
  const third = log.flush();
  third.catch(() => undefined);
  await flushed;
  await heldSyncs(2);
  flushed = nextFlushed(log);
  log.append(Buffer.alloc(40, 2));
  const fourth = log.flush();
  fourth.catch(() => undefined);
  t.is(await flushed, 4);
  for (const release of held.splice(0)) release(true);
  await t.throwsAsync(third);
  await t.throwsAsync(fourth);
  t.deepEqual(failed, [[2, 4]]);
  t.is(log.end, 2);
  t.is(log.diskBytes, segmentsBefore, 'the segment metadata is back where the last commit left it');
  holding = false;
  log.append(Buffer.from('three'));
  await log.flush();
  t.deepEqual((await readAll(log)).map(String), ['one', 'two', 'three']);
  await store.close();
  const again = await LogStore.open(dir, { retentionCheckMs: 0 });
  t.teardown(() => again.close());
  t.deepEqual((await readAll(await again.open('pipe'))).map(String), ['one', 'two', 'three'], 'and so are the files');
});

// The index write of a big batch runs on the calling thread when it fits syncWriteMaxBytes
// (4096 here), else on the threadpool (0); either way it fails while the segment write waits.
for (const syncWriteMaxBytes of [0, 4096]) {
  test(`when the index write of a batch fails while its segment write is still on the threadpool, nothing is repaired or reused until it lands (index write ${syncWriteMaxBytes === 0 ? 'on the threadpool' : 'on the calling thread'})`, async (t) => {
    let armed = false;
    let late: Promise<void> | null = null;
    const failIndex = (): never => {
      armed = false;
      throw Object.assign(new Error('injected EIO on the index'), { code: 'EIO' });
    };
    const ops = pathAwareOps((pathOf) => ({
      async writev(fd, buffers, position) {
        if (!armed) return nodeFileOps.writev(fd, buffers, position);
        if (pathOf(fd).endsWith('.index')) failIndex();
        // the segment write is picked up late by the threadpool
        late = new Promise<void>((r) => setTimeout(r, 300)).then(() => nodeFileOps.writev(fd, buffers, position));
        return late;
      },
      writevSync(fd, buffers, position) {
        if (armed && pathOf(fd).endsWith('.index')) failIndex();
        (nodeFileOps.writevSync as NonNullable<FileOps['writevSync']>)(fd, buffers, position);
      },
    }));
    const dir = await tempDir(t);
    const store = await openStore(t, dir, { fileOps: ops, syncWriteMaxBytes });
    const log = await store.open('late', { tailBytes: 0, durability: { mode: 'never' } });
    const rec = (i: number, salt: number): Buffer => Buffer.alloc(1000, (i * 7 + salt) & 0xff);
    let n = 0;
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 60; i++) log.append(rec(n++, 0));
      await log.flush();
    }
    armed = true;
    for (let i = 0; i < 20; i++) log.append(rec(n + i, 1));
    await t.throwsAsync(log.flush(), { code: 'ERR_COMMITLOG_IO' });
    t.not(late, null, 'the segment write was still pending when the index write failed');
    // the offsets (and file positions, and perhaps the slab) of the failed batch are reused
    const good: Buffer[] = [];
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 60; i++) {
        const r = rec(n + good.length, 2);
        good.push(r);
        log.append(r);
      }
      await log.flush();
    }
    await late;
    const all = await readAll(log);
    t.is(all.length, n + good.length);
    t.true(all.slice(n).every((r, i) => r.equals(good[i] as Buffer)), 'records written after the failure are intact');
  });
}

test('a disk read racing a retention delete of its segment answers belowStart, not an I/O error', async (t) => {
  let slowIndex = '';
  const ops = pathAwareOps((pathOf) => ({
    async read(fd, buf, off, len, pos) {
      if (pathOf(fd) === slowIndex) await new Promise((r) => setTimeout(r, 200));
      return nodeFileOps.read(fd, buf, off, len, pos);
    },
  }));
  const dir = await tempDir(t);
  const store = await openStore(t, dir, { fileOps: ops, maxOpenFiles: 4 });
  const log = await store.open('race', { segmentBytes: 1024, tailBytes: 0 });
  for (let i = 0; i < 40; i++) await appendRange(log, i, i + 1);
  slowIndex = `${dir}/race/00000000000000000000.index`;
  const reading = log.read(0, 5, 1 << 20);
  await new Promise((r) => setTimeout(r, 50));
  slowIndex = '';
  t.true((await log.trimBefore(30)) > 0);
  const got = await reading;
  t.is(got.status, 'belowStart');
  t.is(got.next, log.start);
});

test('records a failed sync took back stay gone after close and reopen, though no write followed the failure', async (t) => {
  // The rollback leaves them in the files until the next write truncates them; close() must
  // repair first, or the next open finds them intact and brings them back.
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('back');
  const good = await appendRange(log, 0, 3);
  ops.fail.fdatasync = 'EIO';
  for (let i = 3; i < 5; i++) log.append(recordFor(i, 9));
  const err = await t.throwsAsync<CommitLogError>(log.flush());
  t.is(err?.code, 'ERR_COMMITLOG_IO');
  t.is(log.end, 3);
  delete ops.fail.fdatasync;
  await log.close();
  const again = await store.open('back');
  t.is(again.end, 3);
  t.deepEqual(await readAll(again), good);
});

test('records a failed sync took back leave the files at once, with no write after the failure: a kill -9 then finds none of them', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('gone');
  const good = await appendRange(log, 0, 3);
  let failedOnce = false;
  ops.fail.fdatasync = 'EIO';
  log.on('failed', () => {
    failedOnce = true;
    delete ops.fail.fdatasync; // the repair's own fdatasync succeeds
  });
  for (let i = 3; i < 5; i++) log.append(recordFor(i, 9));
  await t.throwsAsync(log.flush());
  t.true(failedOnce);
  // no append, no close: the repair runs by itself
  const deadline = Date.now() + 3000;
  const files = join(dir, 'gone');
  const segBytes = async () => (await stat(join(files, '00000000000000000000.segment'))).size;
  const want = 16 + good.reduce((n, r) => n + r.length, 0);
  while ((await segBytes()) !== want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const copy = await tempDir(t);
  await cp(files, join(copy, 'gone'), { recursive: true }); // a kill -9 now
  const reopened = await (await openStore(t, copy)).open('gone');
  t.is(reopened.end, 3);
  t.deepEqual(await readAll(reopened), good);
});

/** FileOps that log each fdatasync (by path) and each directory fsync, and can hold or fail the latter. */
function dirSyncOps(): { ops: FileOps; events: string[]; holdDirs(on: boolean): void; failDirs(code: string | null): void } {
  const events: string[] = [];
  let holding = false;
  let failing: string | null = null;
  const held: Array<() => void> = [];
  const ops = pathAwareOps((pathOf) => ({
    fdatasync: async (fd) => {
      events.push(`fdatasync ${pathOf(fd).split('/').slice(-1)[0]}`);
      return nodeFileOps.fdatasync(fd);
    },
    fsyncDir: async (path) => {
      events.push(`start fsyncDir ${path}`);
      if (holding) await new Promise<void>((r) => held.push(r));
      events.push(`fsyncDir ${path}`);
      if (failing !== null) throw Object.assign(new Error(`injected ${failing}`), { code: failing });
      return nodeFileOps.fsyncDir(path);
    },
  }));
  return {
    ops,
    events,
    holdDirs: (on) => {
      holding = on;
      if (!on) for (const go of held.splice(0)) go();
    },
    failDirs: (code) => (failing = code),
  };
}

test("a new log's first commit fsyncs its directory and the store's root, a new segment its directory, and nothing else does", async (t) => {
  const dir = await tempDir(t);
  const d = dirSyncOps();
  const store = await openStore(t, dir, { fileOps: d.ops });
  for (const mode of ['batch', 'interval'] as const) {
    const name = `dirs-${mode}`;
    const log = await store.open(name, { durability: mode === 'batch' ? { mode } : { mode, intervalMs: 10 }, segmentBytes: 4096 });
    d.events.length = 0;
    const dirSyncs = () => d.events.filter((e) => e.startsWith('fsyncDir')).sort();
    // 'interval' syncs on its timer: wait (bounded) until a sync has done what is asserted
    const settle = async (done: () => boolean) => {
      for (let k = 0; mode === 'interval' && k < 200 && !done(); k++) await new Promise((r) => setTimeout(r, 10));
    };
    await appendRange(log, 0, 3);
    await settle(() => dirSyncs().length >= 2);
    t.deepEqual(dirSyncs(), [`fsyncDir ${dir}`, `fsyncDir ${join(dir, name)}`].sort(), `${mode}: the new directory and its files are synced`);
    d.events.length = 0;
    await appendRange(log, 3, 6);
    await settle(() => d.events.some((e) => e.startsWith('fdatasync')));
    t.deepEqual(dirSyncs(), [], `${mode}: no new entry, no directory sync`);
    t.true(d.events.some((e) => e.startsWith('fdatasync')), `${mode}: the data itself was synced`);
    // 4 KiB segments: ~45 records of ~80 B roll to a new segment in the same directory
    d.events.length = 0;
    await appendRange(log, 6, 60);
    await settle(() => dirSyncs().length >= 1);
    t.true((await readdir(join(dir, name))).filter((f) => f.endsWith('.segment')).length > 1, 'the log rolled');
    t.deepEqual([...new Set(dirSyncs())], [`fsyncDir ${join(dir, name)}`], `${mode}: a new segment syncs the log's directory only`);
  }
});

test("under 'batch', the directory fsyncs run beside the fdatasyncs, the commit waits for both, and a failed one is retried by the next round", async (t) => {
  const dir = await tempDir(t);
  const d = dirSyncOps();
  const store = await openStore(t, dir, { fileOps: d.ops });
  const log = await store.open('beside');
  d.holdDirs(true);
  t.teardown(() => d.holdDirs(false)); // before the store's close (teardowns run last-in first-out)
  log.append(recordFor(0));
  const flushed = log.flush();
  let committed = false;
  void flushed.then(() => (committed = true));
  // both fdatasyncs have run while the directory syncs are still held
  for (let i = 0; i < 100 && d.events.filter((e) => e.startsWith('fdatasync')).length < 2; i++) await new Promise((r) => setTimeout(r, 5));
  t.is(d.events.filter((e) => e.startsWith('fdatasync')).length, 2);
  t.true(d.events[0]?.startsWith('start fsyncDir'), `the directory syncs started first: ${d.events.join(', ')}`);
  t.false(committed, 'not committed before its directory entries are durable');
  t.is(log.committed, 0);
  d.holdDirs(false);
  await flushed;
  t.is(log.committed, 1);

  // a failed directory sync fails the round; the next round syncs that directory again
  const again = await store.open('beside-fail');
  d.failDirs('EIO');
  again.append(recordFor(0));
  const err = await t.throwsAsync<CommitLogError>(again.flush());
  t.is(err?.code, 'ERR_COMMITLOG_IO');
  t.is(again.committed, 0);
  d.failDirs(null);
  d.events.length = 0;
  again.append(recordFor(1));
  await again.flush();
  t.is(again.committed, 1);
  t.true(d.events.includes(`fsyncDir ${join(dir, 'beside-fail')}`), 'the next round synced the directory again');
  t.true(d.events.includes(`fsyncDir ${dir}`), 'and the root');
});
