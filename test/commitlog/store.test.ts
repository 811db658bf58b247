/**
 * LogStore: bounded fds across thousands of logs, the shared tail budget, names, options.
 */
import test from 'ava';
import { readdir } from 'node:fs/promises';
import { basename } from 'node:path';
import {
  CommitLogError,
  LogStore,
  decodeLogName,
  encodeLogName,
  resolveLogOptions,
  resolveStoreOptions,
  type LogOptions,
  nodeFileOps,
} from '../../commitlog/index.js';
import { FileCache, type FileRef } from '../../commitlog/file-cache.js';
import { openStore, readAll, recordFor, tempDir } from './helpers.js';

async function fdCount(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}

// Serial: ava runs serial tests first and alone, so no other test's fds are counted.
test.serial('2,000 logs with maxOpenFiles 64 keep the process fd count bounded', async (t) => {
  const dir = await tempDir(t);
  const before = await fdCount();
  const store = await openStore(t, dir, { maxOpenFiles: 64 });
  const logs = [];
  let peak = 0;
  for (let i = 0; i < 2000; i++) {
    const log = await store.open(`log-${i}`, { durability: { mode: 'never' }, tailBytes: 0 });
    log.append(recordFor(i));
    logs.push(log);
    if (i % 100 === 99) {
      await Promise.all(logs.slice(i - 99, i + 1).map((l) => l.flush()));
      peak = Math.max(peak, await fdCount());
      t.true(store.openFiles <= 64, `store holds ${store.openFiles}`);
    }
  }
  // Read every log back from disk (its tail is empty): reopens files through the LRU.
  for (let i = 0; i < 2000; i += 1) {
    const batch = await (logs[i] as (typeof logs)[number]).read(0, 10, 1 << 20);
    t.deepEqual(batch.records, [recordFor(i)]);
    if (i % 250 === 0) peak = Math.max(peak, await fdCount());
  }
  t.true(peak - before <= 64 + 8, `fds grew from ${before} to ${peak}`);
  t.deepEqual(store.names().length, 2000);
});

test('the shared tail budget drops the tails of the least recently appended logs', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir, { tailBudgetBytes: 10_000 });
  const logs = [];
  for (let i = 0; i < 20; i++) {
    const log = await store.open(`t${i}`, { tailBytes: 1 << 20 });
    for (let k = 0; k < 20; k++) log.append(Buffer.alloc(100, k));
    await log.flush();
    logs.push(log);
  }
  t.true(store.tailBytes <= 10_000, `tails hold ${store.tailBytes}`);
  t.is(logs[0]?.readTail(0, 1, 1000), null); // coldest: dropped
  t.is(logs[19]?.readTail(0, 1, 1000)?.status, 'records'); // hottest: kept
  // Dropped tails are still readable from disk.
  t.deepEqual((await logs[0]?.read(0, 20, 1 << 20))?.records.length, 20);
});

test('names() lists the logs found on disk at open', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  for (const name of ['b', 'a', 'c']) {
    const log = await s1.open(name);
    log.append(Buffer.from(name));
  }
  await s1.open('empty'); // never written: no directory, not listed
  await s1.close();
  const s2 = await openStore(t, dir);
  t.deepEqual(s2.names(), ['a', 'b', 'c']);
});

test('invalid log names are ERR_COMMITLOG_INVALID_NAME', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  for (const bad of ['', '.', '..', '.hidden', 'a/b', 'a\\b', 'x'.repeat(256), 'sp ace']) {
    const err = await t.throwsAsync(store.open(bad), { instanceOf: CommitLogError });
    t.is(err?.code, 'ERR_COMMITLOG_INVALID_NAME', bad);
  }
});

test('encodeLogName maps any topic to a valid name reversibly', (t) => {
  for (const topic of ['sensors/+/temp', '#', '.hidden', '..', 'a%b', 'città/温度', '$SYS/broker', 'plain-name_1.2']) {
    const name = encodeLogName(topic);
    t.regex(name, /^[A-Za-z0-9_~%=+,@-][A-Za-z0-9._~%=+,@-]*$/);
    t.is(decodeLogName(name), topic);
  }
  t.is(encodeLogName('plain-name_1.2'), 'plain-name_1.2');
  t.is(t.throws<CommitLogError>(() => encodeLogName('/'.repeat(100)))?.code, 'ERR_COMMITLOG_INVALID_NAME');
});

test('invalid options are ERR_COMMITLOG_INVALID_OPTION naming the field and the range', (t) => {
  const cases: [LogOptions, RegExp][] = [
    [{ segmentBytes: 10 }, /segmentBytes must be an integer in 64 \.\. 2147483648 bytes, got 10/],
    [{ maxRecordBytes: -1 }, /maxRecordBytes/],
    [{ tailBytes: 1.5 }, /tailBytes/],
    [{ retentionBytes: -5 }, /retentionBytes must be an integer ≥ 0 bytes or Infinity/],
    [{ retentionMs: 0 }, /retentionMs/],
    [{ durability: { mode: 'interval', intervalMs: 0 } }, /durability\.intervalMs must be an integer in 1 \.\. 3600000 ms/],
    [{ durability: { mode: 'sometimes' } as never }, /durability\.mode/],
  ];
  for (const [opts, message] of cases) {
    const err = t.throws<CommitLogError>(() => resolveLogOptions(opts));
    t.is(err?.code, 'ERR_COMMITLOG_INVALID_OPTION');
    t.regex(err?.message ?? '', message);
  }
  t.regex(t.throws<CommitLogError>(() => resolveStoreOptions({ maxOpenFiles: 1 }))?.message ?? '', /maxOpenFiles/);
  t.regex(t.throws<CommitLogError>(() => resolveStoreOptions({ tailBudgetBytes: -1 }))?.message ?? '', /tailBudgetBytes/);
  t.deepEqual(resolveLogOptions({}).durability, { mode: 'batch' });
});

test('closing the store closes every file descriptor', async (t) => {
  const dir = await tempDir(t);
  const store = await LogStore.open(dir, { retentionCheckMs: 0 });
  for (let i = 0; i < 10; i++) (await store.open(`c${i}`)).append(Buffer.from('x'));
  await Promise.all(Array.from({ length: 10 }, async (_, i) => (await store.open(`c${i}`)).flush()));
  t.true(store.openFiles > 0);
  await store.close();
  t.is(store.openFiles, 0);
  t.is((await t.throwsAsync<CommitLogError>(store.open('c0')))?.code, 'ERR_COMMITLOG_CLOSED');
});

test('hundreds of logs opened, written and read concurrently through 8 fds neither deadlock nor mix data', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0, maxOpenFiles: 8 });
  const names = Array.from({ length: 300 }, (_, i) => `c-${i}`);
  await Promise.all(
    names.map(async (name, i) => {
      const log = await s1.open(name, { durability: { mode: 'never' }, tailBytes: 0 });
      log.append(recordFor(i));
      log.append(recordFor(i, 1));
      await log.flush();
    }),
  );
  t.true(s1.openFiles <= 8);
  await s1.close();
  // Unclean-style reopen of all at once: every recovery needs two fds at the same time.
  const s2 = await openStore(t, dir, { maxOpenFiles: 8 });
  const logs = await Promise.all(names.map((name) => s2.open(name)));
  const reads = await Promise.all(logs.map((log) => log.read(0, 10, 1 << 20)));
  reads.forEach((batch, i) => t.deepEqual(batch.records, [recordFor(i), recordFor(i, 1)]));
  t.true(s2.openFiles <= 8);
});

test('FileCache.tryAcquire pins already-open fds without waiting, and answers null for anything it would have to open', async (t) => {
  const dir = await tempDir(t);
  const cache = new FileCache(nodeFileOps, 1);
  const a = `${dir}/a`;
  const b = `${dir}/b`;
  t.is(cache.tryAcquire([a]), null, 'not open yet');
  const [opened] = (await cache.acquire([a], true)) as [FileRef];
  cache.release(opened);
  const [pinned] = cache.tryAcquire([a]) as [FileRef];
  t.is(pinned.fd, opened.fd, 'the open fd, no new open');
  t.is(cache.tryAcquire([a, b]), null, 'one of the two is not open');
  // The only slot is pinned: opening b waits until the pin goes.
  let gotB = false;
  const waitB = cache.acquire([b], true).then(([ref]) => {
    gotB = true;
    return ref as FileRef;
  });
  await new Promise((r) => setTimeout(r, 20));
  t.false(gotB, 'a pin from tryAcquire keeps its fd from being evicted');
  cache.release(pinned);
  cache.release(await waitB);
  t.is(cache.tryAcquire([a]), null, 'a was evicted for b');
  cache.forget(b);
  t.is(cache.tryAcquire([b]), null, 'a forgotten path is not handed out');
  await cache.closeAll();
});

test("'batch' sync rounds that span more segments than the fd cache holds, in two logs at once, finish", async (t) => {
  // Each round below touches 5 segments (10 files) through a cache of 4 fds.
  const dir = await tempDir(t);
  const store = await openStore(t, dir, { maxOpenFiles: 4 });
  const logs = await Promise.all(['a', 'b'].map((name) => store.open(name, { segmentBytes: 1000, durability: { mode: 'batch' } })));
  const record = (log: number, i: number): Buffer => Buffer.alloc(500, log * 16 + i);
  for (const [k, log] of logs.entries()) for (let i = 0; i < 10; i++) log.append(record(k, i));
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('hung'), 5_000)));
  t.is(await Promise.race([Promise.all(logs.map((l) => l.flush())).then(() => 'done'), hung]), 'done');
  clearTimeout(timer);
  for (const [k, log] of logs.entries()) {
    t.is(log.committed, 10);
    t.deepEqual(await readAll(log), Array.from({ length: 10 }, (_, i) => record(k, i)));
  }
});

test("logs appended to in one event-loop turn flush together: every 'flushed' fires before a nextTick queued by the first", async (t) => {
  // What the broker relies on to write one socket chunk per subscriber per turn: deliveries
  // made from all logs' 'flushed' events are corked until a nextTick, which must come after all.
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const logs = await Promise.all(['a', 'b', 'c'].map((n) => store.open(n, { durability: { mode: 'never' } })));
  for (const log of logs) log.append(recordFor(0));
  await Promise.all(logs.map((log) => log.flush())); // segments created, fds open: no await left
  const order: string[] = [];
  logs.forEach((log, i) =>
    log.once('flushed', () => {
      order.push(`flushed ${i}`);
      if (i === 0) process.nextTick(() => order.push('tick'));
    }),
  );
  await new Promise<void>((resolve) =>
    setImmediate(() => {
      // appends from three "socket reads" of one turn
      for (const log of logs) log.append(recordFor(1));
      resolve();
    }),
  );
  await Promise.all(logs.map((log) => log.flush()));
  await new Promise((r) => setImmediate(r));
  t.deepEqual(order, ['flushed 0', 'flushed 1', 'flushed 2', 'tick']);
});

/**
 * FileOps whose log creations (mkdir, open with create) each take `delayMs`, counting how many are
 * in flight at once and listing the directories named `prefix`* in the order their creation
 * started (the store's own root is created through the same seam).
 */
function slowCreationOps(delayMs: number, prefix: string): { ops: typeof nodeFileOps; peak: () => number; dirs: string[] } {
  let inFlight = 0;
  let peak = 0;
  const dirs: string[] = [];
  const slow = async <T>(run: () => Promise<T>): Promise<T> => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    try {
      await new Promise((r) => setTimeout(r, delayMs));
      return await run();
    } finally {
      inFlight--;
    }
  };
  const ops = {
    ...nodeFileOps,
    mkdir: (path: string) => {
      if (basename(path).startsWith(prefix)) dirs.push(basename(path));
      return slow(() => nodeFileOps.mkdir(path));
    },
    // a log's files only (the journal creates its own file through the same seam)
    open: (path: string, create: boolean) => (create && !path.includes('/.journal-') ? slow(() => nodeFileOps.open(path, true)) : nodeFileOps.open(path, create)),
  };
  return { ops, peak: () => peak, dirs };
}

for (const journal of [false, true]) {
  test(`a burst of new logs creates their files a few at a time, and the first commits before the last begins${journal ? ' (journal)' : ''}`, async (t) => {
    const dir = await tempDir(t);
    const slow = slowCreationOps(15, 'burst-');
    const store = await openStore(t, dir, { fileOps: slow.ops, createConcurrency: 2, journal });
    const logs = await Promise.all(Array.from({ length: 12 }, (_, i) => store.open(`burst-${i}`)));
    let startedAtFirstCommit = -1;
    const commits = logs.map((log, i) => {
      log.append(recordFor(i));
      return log.flush().then(() => {
        if (startedAtFirstCommit < 0) startedAtFirstCommit = slow.dirs.length;
      });
    });
    await Promise.all(commits);
    // a log's turn has at most two creations in flight (its directory, then its two files together)
    t.true(slow.peak() <= 2 * 2, `peak creations in flight: ${slow.peak()}`);
    t.true(startedAtFirstCommit > 0 && startedAtFirstCommit < 12, `new logs started when the first committed: ${startedAtFirstCommit}`);
    // first come first served: the logs waiting for a turn got it in the order they asked
    t.deepEqual(slow.dirs, logs.map((_, i) => `burst-${i}`));
    for (const [i, log] of logs.entries()) {
      t.is(log.committed, 1);
      t.deepEqual(await readAll(log), [recordFor(i)]);
    }
  });
}

test('createConcurrency is validated', (t) => {
  t.is(resolveStoreOptions({}).createConcurrency, 4);
  for (const bad of [0, 1.5, 2000, -1]) {
    const err = t.throws(() => resolveStoreOptions({ createConcurrency: bad }), { instanceOf: CommitLogError });
    t.is(err?.code, 'ERR_COMMITLOG_INVALID_OPTION');
  }
});
