/**
 * 'batch' durability with lazyMs: records nobody asked to sync are flushed (readable as
 * unsynced) without being written, and are written and fdatasynced only once something asks
 * (requestSync, flush), once LAZY_SYNC_MAX_BYTES wait, or lazyMs later; until then they are not
 * committed. Writes and fdatasyncs are counted through the FileOps seam.
 */
import test from 'ava';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { LAZY_SYNC_MAX_BYTES, type CommitLogError } from '../../commitlog/index.js';
import { faultyOps, openStore, readAll, recordFor, tempDir } from './helpers.js';

const HOUR = 3_600_000;

/** Resolves once `cond` holds, polling; rejects after `ms`. */
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('records nobody waits on are readable at once but neither written nor synced; requestSync() writes and syncs them with the next', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('lazy', { durability: { mode: 'batch', lazyMs: HOUR } });
  for (let i = 0; i < 5; i++) log.append(recordFor(i));
  await until(() => log.flushed === 5);
  await new Promise((r) => setTimeout(r, 30));
  t.is(ops.calls.writev ?? 0, 0, 'not written: a write per batch is what lazyMs saves');
  t.is(ops.calls.fdatasync ?? 0, 0, 'no fdatasync for records nobody waits on');
  t.is(log.committed, 0);
  t.is(log.readTail(0, 10, 1 << 20, true)?.records.length, 5, 'readable as unsynced');

  const commits: number[] = [];
  log.on('commit', (c) => commits.push(c));
  for (let i = 5; i < 8; i++) log.append(recordFor(i));
  log.requestSync();
  await until(() => log.committed === 8);
  t.deepEqual(commits, [8], 'one round commits the lazy batch and the requested one');
  t.is(ops.calls.writev, 2, 'one batch: segment and index');
  t.is(ops.calls.fdatasync, 2, 'one round: segment and index');
  t.deepEqual(await readAll(log), Array.from({ length: 8 }, (_, i) => recordFor(i)));
});

test("'flushed' announces deferred records once: their later write does not announce them again", async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('lazy', { durability: { mode: 'batch', lazyMs: HOUR } });
  const announced: number[] = [];
  log.on('flushed', (f) => announced.push(f));
  for (let i = 0; i < 3; i++) log.append(recordFor(i));
  await until(() => log.flushed === 3);
  await log.flush(); // writes and syncs the deferred records
  log.append(recordFor(3));
  await log.flush();
  t.deepEqual(announced, [3, 4]);
});

test('flush() syncs lazily written batches even when nothing is left to write', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('lazy', { durability: { mode: 'batch', lazyMs: HOUR } });
  for (let i = 0; i < 3; i++) log.append(recordFor(i));
  await until(() => log.flushed === 3);
  await log.flush();
  t.is(log.committed, 3);
  t.is(ops.calls.fdatasync, 2);
  // requestSync() with everything written, from an idle writer, starts the round by itself
  log.append(recordFor(3));
  await until(() => log.flushed === 4);
  log.requestSync();
  await until(() => log.committed === 4);
  t.is(ops.calls.fdatasync, 4);
});

test('records nobody asked for commit lazyMs after they were written', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('lazy', { durability: { mode: 'batch', lazyMs: 40 } });
  const t0 = Date.now();
  log.append(recordFor(0));
  log.append(recordFor(1));
  await until(() => log.committed === 2);
  t.true(Date.now() - t0 >= 35, `committed after ${Date.now() - t0} ms`);
  t.is(ops.calls.fdatasync, 2);
});

test('LAZY_SYNC_MAX_BYTES of unsynced records start a round without anyone asking', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('lazy', { durability: { mode: 'batch', lazyMs: HOUR }, segmentBytes: 8 * LAZY_SYNC_MAX_BYTES });
  const rec = Buffer.alloc(16 * 1024, 7);
  const n = LAZY_SYNC_MAX_BYTES / rec.length;
  for (let i = 0; i < n - 1; i++) {
    log.append(rec);
    await new Promise((r) => setImmediate(r)); // one batch per record
  }
  await until(() => log.flushed === n - 1);
  t.is(log.committed, 0, 'below the limit nothing syncs');
  t.is(ops.calls.fdatasync ?? 0, 0);
  log.append(rec);
  await until(() => log.committed === n);
  t.is(ops.calls.fdatasync, 2);
});

test('a failed sync takes back the lazy batches with the requested one, and the log carries on', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('lazy', { durability: { mode: 'batch', lazyMs: HOUR } });
  for (let i = 0; i < 3; i++) log.append(recordFor(i));
  await log.flush();
  for (let i = 3; i < 6; i++) log.append(recordFor(i, 1));
  await until(() => log.flushed === 6);
  const failed: [string, number, number][] = [];
  log.on('failed', (err, from, to) => failed.push([err.code, from, to]));
  ops.fail.fdatasync = 'EIO';
  log.append(recordFor(6, 1));
  const err = await t.throwsAsync<CommitLogError>(log.flush());
  t.is(err?.code, 'ERR_COMMITLOG_IO');
  t.deepEqual(failed, [['ERR_COMMITLOG_IO', 3, 7]]);
  t.is(log.end, 3);
  delete ops.fail.fdatasync;
  for (let i = 3; i < 5; i++) log.append(recordFor(i, 2));
  await log.flush();
  t.deepEqual(await readAll(log), [0, 1, 2].map((i) => recordFor(i)).concat([recordFor(3, 2), recordFor(4, 2)]));
});

test('while a failed sync is unrepaired the next record is not deferred: it is written at once, after the repair, so a kill -9 cannot bring the failed records back', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops });
  const log = await store.open('lazy', { durability: { mode: 'batch', lazyMs: HOUR } });
  log.append(Buffer.from('ok-0'));
  await log.flush(); // the segment exists, so the repair truncates it
  ops.fail.fdatasync = 'EIO';
  ops.fail.ftruncate = 'EIO'; // the repair that follows the failure fails too
  log.append(Buffer.from('failed-A'));
  log.append(Buffer.from('failed-B'));
  await t.throwsAsync(log.flush());
  await until(() => (ops.calls.ftruncate ?? 0) >= 1);
  await new Promise((r) => setTimeout(r, 20));
  delete ops.fail.fdatasync;
  delete ops.fail.ftruncate;
  // records nobody waits on, at the offsets the failed ones had: readers see them at once
  for (let i = 0; i < 5; i++) log.append(Buffer.from(`later-${i}`));
  await until(() => log.flushed === 6);
  await new Promise((r) => setTimeout(r, 20));
  // a kill -9 now: what the files hold is what a restart finds
  const copy = await tempDir(t);
  await cp(join(dir, 'lazy'), join(copy, 'lazy'), { recursive: true });
  const reopened = await (await openStore(t, copy)).open('lazy');
  const found = (await readAll(reopened)).map(String);
  t.false(found.includes('failed-A') || found.includes('failed-B'), `restart found ${found.join(', ')}`);
  t.deepEqual(found, ['ok-0', 'later-0', 'later-1', 'later-2', 'later-3', 'later-4'].slice(0, found.length));
});

test('close() syncs lazily written records and a reopen has them all', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const log = await store.open('lazy', { durability: { mode: 'batch', lazyMs: HOUR } });
  const recs = Array.from({ length: 20 }, (_, i) => recordFor(i));
  for (const r of recs) log.append(r);
  await until(() => log.flushed === 20);
  t.is(log.committed, 0);
  await log.close();
  const again = await store.open('lazy');
  t.true(again.recovery.clean, 'closed cleanly');
  t.deepEqual(await readAll(again), recs);
});

test('lazyMs is validated: an integer in 0 .. 3600000 ms, 0 meaning every batch syncs', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops });
  for (const bad of [-1, 1.5, HOUR + 1, '5']) {
    const err = await t.throwsAsync<CommitLogError>(store.open(`bad${String(bad).replace(/\W/g, '')}`, { durability: { mode: 'batch', lazyMs: bad as number } }));
    t.is(err?.code, 'ERR_COMMITLOG_INVALID_OPTION');
    t.regex(err?.message ?? '', /durability\.lazyMs/);
  }
  const eager = await store.open('eager', { durability: { mode: 'batch', lazyMs: 0 } });
  eager.append(recordFor(0));
  await until(() => eager.committed === 1);
  t.is(ops.calls.fdatasync, 2, 'lazyMs 0 syncs every batch');
});
