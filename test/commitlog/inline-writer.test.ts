/**
 * The inline writer: a small batch for a log's open active segment is written in the flush
 * turn itself, without the asynchronous writer loop, and a failure there is handled exactly as
 * the loop handles one (the batch fails; nothing retries it behind the caller's back).
 */
import test from 'ava';
import { createHook } from 'node:async_hooks';
import { LogStore, type CommitLogError, type FileOps, nodeFileOps } from '../../commitlog/index.js';
import { appendRange, openStore, readAll, recordFor, tempDir } from './helpers.js';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test.serial("under 'never', one-record batches into an open segment create no promise in the log", async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('inline', { durability: { mode: 'never' } });
  await appendRange(log, 0, 3); // the first batch creates the segment and joins the boot list
  let promises = 0;
  const hook = createHook({
    init(_id, type) {
      // only promises created by the log's own code (the writer loop's async functions)
      if (type === 'PROMISE' && /commitlog[/\\]commitlog\.[jt]s/.test(new Error().stack ?? '')) promises++;
    },
  });
  const commits: number[] = [];
  log.on('commit', (to) => commits.push(to));
  hook.enable();
  try {
    for (let i = 3; i < 103; i++) {
      log.append(recordFor(i));
      await turn();
      await turn();
    }
  } finally {
    hook.disable();
  }
  t.deepEqual(commits, Array.from({ length: 100 }, (_, k) => k + 4), 'each record committed in its own batch');
  // The writer loop costs at least three promises per batch (its async function, the batch
  // write's and the finally); the inline path none.
  t.is(promises, 0);
  t.is((await readAll(log)).length, 103);
});

test('a small batch that fails inline is failed like any failed write, not silently retried', async (t) => {
  const dir = await tempDir(t);
  let failNext = false;
  const writes: number[] = [];
  const ops: FileOps = {
    ...nodeFileOps,
    writevSync(fd, buffers, position) {
      writes.push(position);
      if (failNext) {
        failNext = false; // one-shot: a retry would succeed, and must not happen
        // a few bytes land before the error, as a short write would leave them
        nodeFileOps.writevSync?.(fd, [(buffers[0] as Buffer).subarray(0, 5)], position);
        throw Object.assign(new Error('injected EIO'), { code: 'EIO' });
      }
      nodeFileOps.writevSync?.(fd, buffers, position);
    },
  };
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('inline-fail', { tailBytes: 0 });
  const good = await appendRange(log, 0, 10);
  const failed: [string, number, number][] = [];
  log.on('failed', (err, from, to) => failed.push([err.code, from, to]));
  failNext = true;
  for (let i = 10; i < 13; i++) log.append(recordFor(i, 1));
  const err = await t.throwsAsync<CommitLogError>(log.flush());
  t.is(err?.code, 'ERR_COMMITLOG_IO');
  t.deepEqual(failed, [['ERR_COMMITLOG_IO', 10, 13]]);
  t.is(log.end, 10);
  t.deepEqual(await readAll(log), good);
  // the disk is fine again: the offsets are reused, and the bytes the failed write left are gone
  const more = await appendRange(log, 10, 14, 2);
  t.deepEqual(await readAll(log), [...good, ...more]);
  await log.close();
  const s2 = await LogStore.open(dir, { retentionCheckMs: 0 });
  t.teardown(() => s2.close());
  const again = await s2.open('inline-fail');
  t.deepEqual(await readAll(again), [...good, ...more]);
});
