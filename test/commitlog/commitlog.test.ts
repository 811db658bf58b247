/**
 * Append, read, segment rolls, reopen, the in-memory tail and the read statuses.
 */
import test from 'ava';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CommitLogError, LogStore, nodeFileOps, type FileOps } from '../../commitlog/index.js';
import { appendRange, listNames, openStore, readAll, recordFor, tempDir } from './helpers.js';

test('round-trips records across many segment boundaries', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('a', { segmentBytes: 1024, tailBytes: 0 });
  const recs = await appendRange(log, 0, 500);
  t.is(log.end, 500);
  t.is(log.committed, 500);
  const files = (await readdir(join(dir, 'a'))).filter((f) => f.endsWith('.segment'));
  t.true(files.length > 20, `expected many segments, got ${files.length}`);
  const back = await readAll(log, 0, 7, 900);
  t.is(back.length, 500);
  for (let i = 0; i < 500; i++) t.deepEqual(back[i], recs[i]);
});

test('names segment and index files by zero-padded base offset', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('names', { segmentBytes: 200 });
  await appendRange(log, 0, 20);
  const files = await readdir(join(dir, 'names'));
  t.true(files.includes('00000000000000000000.segment'));
  t.true(files.includes('00000000000000000000.index'));
  for (const f of files) t.regex(f, /^\d{20}\.(segment|index)$/);
});

test('creates no file before the first record is appended', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('lazy');
  t.deepEqual(await readdir(dir), []);
  t.deepEqual(store.names(), []);
  log.append(Buffer.from('x'));
  await log.flush();
  const files = (await readdir(join(dir, 'lazy'))).sort();
  t.deepEqual(files, ['00000000000000000000.index', '00000000000000000000.segment'], 'no other file per log');
  const root = (await readdir(dir)).sort();
  t.is(root.length, 2);
  t.regex(root[0] ?? '', /^\.boot-/, "and the store's list of the logs written in this boot");
  t.deepEqual(await listNames(join(dir, root[0] ?? '')), ['lazy']);
  t.deepEqual(store.names(), ['lazy']);
});

test('reopens a log with every record, offsets and timestamps intact', async (t) => {
  const dir = await tempDir(t);
  let store = await LogStore.open(dir, { retentionCheckMs: 0 });
  let log = await store.open('r', { segmentBytes: 4096 });
  const recs = await appendRange(log, 0, 300);
  await store.close();
  store = await openStore(t, dir);
  t.deepEqual(store.names(), ['r']);
  log = await store.open('r', { segmentBytes: 4096 });
  t.true(log.recovery.clean);
  t.is(log.start, 0);
  t.is(log.end, 300);
  t.is(log.committed, 300);
  const batch = await log.read(10, 3, 1 << 20);
  t.deepEqual(batch.timestamps, [1_700_000_000_010, 1_700_000_000_011, 1_700_000_000_012]);
  t.deepEqual(await readAll(log), recs);
  t.is(log.append(Buffer.from('next')), 300);
  await log.flush();
  t.deepEqual((await log.read(300, 10, 100)).records, [Buffer.from('next')]);
});

test('an unclean stop is recovered by the full check and keeps every record', async (t) => {
  const dir = await tempDir(t);
  const store1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  const log1 = await store1.open('u', { segmentBytes: 2048 });
  const recs = await appendRange(log1, 0, 100);
  // No close: no clean-shutdown marker, as after kill -9.
  const store2 = await openStore(t, dir);
  const log2 = await store2.open('u', { segmentBytes: 2048 });
  t.false(log2.recovery.clean);
  t.is(log2.recovery.truncatedRecords, 0);
  t.deepEqual(await readAll(log2), recs);
  await store1.close();
});

test('a record is readable only once committed', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('vis');
  const off = log.append(Buffer.from('hello'));
  t.is(off, 0);
  t.is(log.end, 1);
  t.is(log.committed, 0);
  t.deepEqual(log.readTail(0, 10, 1000), { status: 'caughtUp', records: [], timestamps: [], next: 0 });
  const committed = await new Promise<number>((resolve) => log.once('commit', resolve));
  t.is(committed, 1);
  const batch = log.readTail(0, 10, 1000);
  t.is(batch?.status, 'records');
  t.deepEqual(batch?.records, [Buffer.from('hello')]);
});

test('appends within one tick leave in one batch and one commit event', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('batch');
  const commits: number[] = [];
  log.on('commit', (c) => commits.push(c));
  for (let i = 0; i < 1000; i++) log.append(recordFor(i));
  await log.flush();
  t.deepEqual(commits, [1000]);
});

test('appends during a flush in flight gather into the next batch (group commit)', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('group');
  const commits: number[] = [];
  log.on('commit', (c) => commits.push(c));
  log.append(recordFor(0));
  await new Promise((r) => setImmediate(r)); // the first batch is now in flight
  for (let i = 1; i < 50; i++) {
    log.append(recordFor(i));
    await new Promise((r) => process.nextTick(r));
  }
  await log.flush();
  t.is(commits.at(-1), 50);
  t.true(commits.length < 10, `50 appends over many ticks took ${commits.length} commits`);
});

test('a caught-up reader is served from the tail: views of one slab, no copy and no file read', async (t) => {
  const dir = await tempDir(t);
  const calls = { read: 0 };
  const ops: FileOps = {
    ...nodeFileOps,
    read: (...args) => {
      calls.read++;
      return nodeFileOps.read(...args);
    },
  };
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('tail');
  const recs = [Buffer.from('a'), Buffer.from('bb'), Buffer.from('ccc')];
  for (const r of recs) log.append(r);
  await log.flush();
  const reads = calls.read;
  const batch = log.readTail(0, 10, 1000);
  t.deepEqual(batch?.records, recs);
  t.is(batch?.next, 3);
  const [a, b, c] = batch?.records ?? [];
  // one backing store, records back to back: what a batch's single iovec is written from
  t.is(a?.buffer, c?.buffer);
  t.is((a?.byteOffset ?? 0) + 1, b?.byteOffset ?? -1);
  t.is((b?.byteOffset ?? 0) + 2, c?.byteOffset ?? -1);
  // a second read hands out views of the same bytes, not copies
  t.is(log.readTail(1, 1, 1000)?.records[0]?.byteOffset, b?.byteOffset);
  t.is(calls.read, reads);
});

test('readers share a record view until the log\'s next append or a read elsewhere drops it from the tail', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('views');
  for (const r of ['a', 'bb', 'ccc']) log.append(Buffer.from(r));
  await log.flush();
  const first = log.readTail(0, 3, 1000)?.records ?? [];
  const second = log.readTail(0, 3, 1000)?.records ?? [];
  t.is(first.length, 3);
  // fanout: the subscribers one event wakes get the same Buffer object, not one each
  for (let i = 0; i < 3; i++) t.is(second[i], first[i]);
  log.append(Buffer.from('dddd'));
  await log.flush();
  // the next batch's events dropped the cached views: new views of the same bytes (views kept
  // for a record's whole life in the tail were promoted to V8's old generation)
  const later = log.readTail(0, 3, 1000)?.records ?? [];
  t.deepEqual(later.map(String), ['a', 'bb', 'ccc']);
  for (let i = 0; i < 3; i++) {
    t.not(later[i], first[i]);
    t.is(later[i]?.buffer, first[i]?.buffer);
    t.is(later[i]?.byteOffset, first[i]?.byteOffset);
  }
  // on an idle log, a reader that moves on past the cached views drops them: one reader
  // catching up through a 4 MiB tail holds one batch of views at a time, not the tail's worth
  const [a] = log.readTail(0, 1, 1000)?.records ?? [];
  t.is(log.readTail(0, 1, 1000)?.records[0], a);
  log.readTail(3, 1, 1000);
  const b = log.readTail(0, 1, 1000)?.records[0];
  t.not(b, a);
  // and an append drops them at once, before its flush's events
  log.append(Buffer.from('eeeee'));
  t.not(log.readTail(0, 1, 1000)?.records[0], b);
});

test('reserve() hands out tail memory the caller encodes the record into', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('reserve', { tailBytes: 0 });
  log.append(Buffer.from('first'));
  const view = log.reserve(6);
  view.write('second');
  t.is(log.end, 2);
  await log.flush();
  t.deepEqual((await log.read(0, 10, 1000)).records.map(String), ['first', 'second']);
  t.throws(() => log.reserve(-1), { code: 'ERR_COMMITLOG_INVALID_ARGUMENT' });
});

test('readTail answers null once the records left memory, and read() fetches them from disk', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('evict', { tailBytes: 1000 });
  const recs = await appendRange(log, 0, 100);
  t.is(log.readTail(0, 10, 1000), null);
  t.truthy(log.readTail(99, 10, 1000));
  t.true(log.memoryBytes <= 1000);
  const batch = await log.read(0, 10, 1 << 20);
  t.is(batch.status, 'records');
  t.deepEqual(batch.records, recs.slice(0, 10));
  // One disk read returns views into one buffer.
  t.is(batch.records[0]?.buffer, batch.records[9]?.buffer);
});

test('by default the tail keeps the newest ~256 KiB: a reader that far behind is served from memory, one further back from disk', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('default-tail');
  const rec = Buffer.alloc(1024, 7);
  for (let i = 0; i < 1024; i++) log.append(rec); // 1 MiB
  await log.flush();
  // within 256 KiB (of records) of the end: in memory, no syscall
  const near = log.readTail(1024 - 250, 10, 1 << 20);
  t.is(near?.status, 'records');
  t.is(near?.records.length, 10);
  t.deepEqual(near?.records[0], rec);
  // 300 KiB back: left memory (with the old 4 MiB default it was still there)
  t.is(log.readTail(1024 - 300, 10, 1 << 20), null);
  t.true(log.memoryBytes <= 256 * 1024, `tail holds ${log.memoryBytes}`);
  t.true(log.memoryBytes >= 250 * 1024, `tail holds only ${log.memoryBytes}`);
  const back = await log.read(1024 - 300, 1, 1 << 20);
  t.deepEqual(back.records[0], rec);
});

test('read honours maxRecords and maxBytes but always returns at least one record', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('limits', { tailBytes: 0 });
  for (let i = 0; i < 10; i++) log.append(Buffer.alloc(100, i));
  await log.flush();
  t.is((await log.read(0, 3, 1 << 20)).records.length, 3);
  t.is((await log.read(0, 100, 250)).records.length, 2);
  const one = await log.read(0, 100, 10);
  t.is(one.records.length, 1);
  t.is(one.next, 1);
  t.is(log.readTail(0, 100, 10), null);
});

test('read statuses: caughtUp at the end, beyondEnd past it, belowStart under start', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('st');
  await appendRange(log, 0, 5);
  t.deepEqual(await log.read(5, 10, 100), { status: 'caughtUp', records: [], timestamps: [], next: 5 });
  t.deepEqual(await log.read(9, 10, 100), { status: 'beyondEnd', records: [], timestamps: [], next: 5 });
  t.deepEqual(await log.read(-1, 10, 100), { status: 'belowStart', records: [], timestamps: [], next: 0 });
});

test('zero-length records round-trip', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('zero', { tailBytes: 0 });
  log.append(Buffer.alloc(0));
  log.append(Buffer.from('x'));
  log.append(Buffer.alloc(0));
  await log.close();
  const again = await store.open('zero');
  t.deepEqual(await readAll(again), [Buffer.alloc(0), Buffer.from('x'), Buffer.alloc(0)]);
});

test('a zero-length record read alone from disk passes its checksum', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('zero-alone', { tailBytes: 0 });
  log.append(Buffer.alloc(0));
  log.append(Buffer.alloc(49, 1));
  await log.flush();
  t.deepEqual((await log.read(0, 1, 1)).records, [Buffer.alloc(0)]);
  t.deepEqual((await log.read(1, 1, 1)).records, [Buffer.alloc(49, 1)]);
});

test('bad arguments are ERR_COMMITLOG_INVALID_ARGUMENT and a maxRecords below 1 still reads one record', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('args');
  for (const ts of [-1, 1.5, Number.NaN, 2 ** 60]) {
    t.is(t.throws<CommitLogError>(() => log.append(Buffer.from('x'), ts))?.code, 'ERR_COMMITLOG_INVALID_ARGUMENT', String(ts));
  }
  t.is(log.end, 0);
  await appendRange(log, 0, 3);
  t.is(t.throws<CommitLogError>(() => log.readTail(0.5, 1, 1))?.code, 'ERR_COMMITLOG_INVALID_ARGUMENT');
  t.is(log.readTail(0, 0, 100)?.records.length, 1);
  t.is((await log.read(0, 0, 100)).records.length, 1);
});

test('append refuses a record over maxRecordBytes with ERR_COMMITLOG_RECORD_TOO_LARGE', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('big', { maxRecordBytes: 10 });
  const err = t.throws(() => log.append(Buffer.alloc(11)), { instanceOf: CommitLogError });
  t.is(err?.code, 'ERR_COMMITLOG_RECORD_TOO_LARGE');
  t.is(log.end, 0);
});

test('a record larger than segmentBytes gets a segment of its own', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('huge', { segmentBytes: 64, tailBytes: 0 });
  const big = Buffer.alloc(500, 7);
  log.append(Buffer.from('a'));
  log.append(big);
  log.append(Buffer.from('b'));
  await log.flush();
  t.deepEqual(await readAll(log), [Buffer.from('a'), big, Buffer.from('b')]);
  const sizes = await Promise.all(
    (await readdir(join(dir, 'huge'))).filter((f) => f.endsWith('.segment')).map(async (f) => (await stat(join(dir, 'huge', f))).size),
  );
  t.deepEqual(sizes.sort((a, b) => a - b), [17, 17, 516]);
});

test('a closed log refuses appends, reads and flushes with ERR_COMMITLOG_CLOSED', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('closed');
  await appendRange(log, 0, 3);
  await log.close();
  t.is(t.throws<CommitLogError>(() => log.append(Buffer.from('x')))?.code, 'ERR_COMMITLOG_CLOSED');
  t.is((await t.throwsAsync<CommitLogError>(log.read(0, 1, 1)))?.code, 'ERR_COMMITLOG_CLOSED');
  t.is((await t.throwsAsync<CommitLogError>(log.flush()))?.code, 'ERR_COMMITLOG_CLOSED');
  t.true((await store.open('closed')).recovery.clean, 'reopened from the same store, it was closed cleanly');
});

test('close flushes what was appended and every durability mode reopens with it', async (t) => {
  const dir = await tempDir(t);
  for (const durability of [{ mode: 'batch' }, { mode: 'interval', intervalMs: 5 }, { mode: 'never' }] as const) {
    const store = await LogStore.open(dir, { retentionCheckMs: 0 });
    const log = await store.open(durability.mode, { durability, segmentBytes: 1000 });
    for (let i = 0; i < 50; i++) log.append(recordFor(i));
    await store.close();
    const store2 = await openStore(t, dir);
    const again = await store2.open(durability.mode);
    t.is(again.end, 50, durability.mode);
    t.deepEqual(await readAll(again), Array.from({ length: 50 }, (_, i) => recordFor(i)));
  }
});

test('opening the same name twice returns the same log', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const [a, b] = await Promise.all([store.open('same'), store.open('same')]);
  t.is(a, b);
});

test('tail slabs whose records were never read are reused; a slab a reader saw never is', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  // tailBytes 8 KiB: slabs grow 4 → 64 KiB (the floor of the largest slab), the tail keeps ~8 KiB
  const log = await store.open('slabs', { tailBytes: 8 * 1024, durability: { mode: 'never' } });
  const rec = (i: number): Buffer => Buffer.alloc(1000, i & 0xff);
  let next = 0;
  const batch = async (n: number): Promise<void> => {
    for (let k = 0; k < n; k++) log.append(rec(next++));
    await log.flush();
  };
  for (let b = 0; b < 10; b++) await batch(20); // 200 KB: past the growth, into 64 KiB slabs
  const grown = log.slabsAllocated;
  for (let b = 0; b < 50; b++) await batch(20); // 1 MB more, nobody reading
  t.true(log.slabsAllocated - grown <= 3, `unread slabs are reused (${log.slabsAllocated - grown} new for 1 MB)`);

  // A reader keeps a view: its slab must never be written again.
  const seen = log.readTail(next - 1, 1, 1 << 20)?.records[0];
  t.truthy(seen);
  const copy = Buffer.from(seen as Buffer);
  const before = log.slabsAllocated;
  for (let b = 0; b < 50; b++) await batch(20);
  t.deepEqual(seen, copy);
  t.true(log.slabsAllocated > before, 'the slab the reader saw was not reused');
  // and everything written reads back from disk
  const all = await readAll(log);
  t.is(all.length, next);
  t.true(all.every((r, i) => r.equals(rec(i))));
});

test('appends without a timestamp share the one read at the first append of their tick', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('ts', { tailBytes: 1 << 20 });
  const before = Date.now();
  log.append(Buffer.from('a'));
  const busy = Date.now() + 5;
  while (Date.now() < busy) {
    // the same tick, 5 ms later
  }
  log.append(Buffer.from('b'));
  log.append(Buffer.from('c'), 42);
  await log.flush();
  await new Promise((r) => setTimeout(r, 5));
  log.append(Buffer.from('d'));
  await log.flush();
  const { timestamps } = log.readTail(0, 10, 1 << 20) ?? { timestamps: [] };
  t.true((timestamps[0] ?? 0) >= before);
  t.is(timestamps[1], timestamps[0]);
  t.is(timestamps[2], 42);
  t.true((timestamps[3] ?? 0) >= (timestamps[0] ?? 0) + 5);
});

test('an append refused as too large does not leave a stale clock for the next tick', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('stale', { maxRecordBytes: 100 });
  t.throws(() => log.append(Buffer.alloc(200)), { code: 'ERR_COMMITLOG_RECORD_TOO_LARGE' });
  await new Promise((r) => setTimeout(r, 60));
  const before = Date.now();
  log.append(Buffer.from('x'));
  await log.flush();
  t.true((log.readTail(0, 1, 100)?.timestamps[0] ?? 0) >= before);
});
