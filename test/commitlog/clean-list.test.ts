/**
 * The store's clean-shutdown list (`<root>/.clean-shutdown`): written by LogStore.close() with
 * the logs that closed cleanly, read and deleted by the next open. What it lists is what lets
 * an open skip the full check of the newest segment, so each test pins who is and is not in it.
 */
import test from 'ava';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LogStore, nodeFileOps, type FileOps } from '../../commitlog/index.js';
import { appendRange, faultyOps, listNames, openStore, tempDir } from './helpers.js';

const LIST = '.clean-shutdown';
const listed = async (dir: string): Promise<string[]> => (await listNames(join(dir, LIST))).sort();

test('close lists the logs it closed cleanly; the next open reads the list and deletes it, so a crash after that finds none', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  await appendRange(await s1.open('a'), 0, 3);
  await appendRange(await s1.open('b'), 0, 3);
  await s1.open('never-written');
  await s1.close();
  t.deepEqual(await listed(dir), ['a', 'b'], 'a log with no files is not listed');
  t.false((await readdir(join(dir, 'a'))).includes('clean-shutdown'), 'nothing per log');

  const s2 = await LogStore.open(dir, { retentionCheckMs: 0 });
  t.false((await readdir(dir)).includes(LIST), 'gone once read: a crash from here on is an unclean stop');
  const a = await s2.open('a');
  t.true(a.recovery.clean);
  await appendRange(a, 3, 4);
  // s2 "crashes": never closed. The next store finds no list.
  const s3 = await openStore(t, dir);
  t.false((await s3.open('a')).recovery.clean);
  t.false((await s3.open('b')).recovery.clean, 'untouched by the crashed process, but the list went with it');
  await s2.close().catch(() => undefined);
});

test('logs a process never opened stay listed through its clean shutdown', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  for (const n of ['x', 'y', 'z']) await appendRange(await s1.open(n), 0, 2);
  await s1.close();
  const s2 = await LogStore.open(dir, { retentionCheckMs: 0 });
  await appendRange(await s2.open('x'), 2, 3);
  await s2.close();
  t.deepEqual(await listed(dir), ['x', 'y', 'z']);
  const s3 = await openStore(t, dir);
  t.true((await s3.open('z')).recovery.clean);
});

test('a log whose close could not sync is not listed, and its next open runs the full check', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0, fileOps: ops });
  const durability = { mode: 'interval' as const, intervalMs: 3_600_000 };
  await appendRange(await s1.open('ok', { durability }), 0, 2);
  const bad = await s1.open('bad', { durability });
  await appendRange(bad, 0, 2);
  await (await s1.open('ok')).close(); // synced and listed before the disk goes bad
  ops.fail.fdatasync = 'EIO';
  await s1.close();
  t.deepEqual(await listed(dir), ['ok']);
  const s2 = await openStore(t, dir);
  t.false((await s2.open('bad', { durability })).recovery.clean);
  t.true((await s2.open('ok', { durability })).recovery.clean);
});

test("an older version's clean-shutdown file in a log's directory is not trusted, and the log's next write removes it", async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  await appendRange(await s1.open('old'), 0, 2);
  await s1.close();
  await writeFile(join(dir, LIST), '');
  await writeFile(join(dir, 'old', 'clean-shutdown'), '');
  const s2 = await openStore(t, dir);
  const log = await s2.open('old');
  t.false(log.recovery.clean);
  await appendRange(log, 2, 3);
  t.false((await readdir(join(dir, 'old'))).includes('clean-shutdown'));
});

test('an entry vouches only for the files as its close left them: a list another store carried over a later write is not trusted', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  await appendRange(await s1.open('b'), 0, 3);
  await s1.close();
  const s2 = await LogStore.open(dir, { retentionCheckMs: 0 }); // takes the list, with b in it
  const s3 = await LogStore.open(dir, { retentionCheckMs: 0 });
  await appendRange(await s3.open('b'), 3, 6); // s3 then "crashes"
  await s2.close(); // carries b's entry back into a new list
  t.deepEqual(await listed(dir), ['b']);
  const log = await (await openStore(t, dir)).open('b');
  t.false(log.recovery.clean, "b's newest segment grew since the stamp: checked in full");
  t.is(log.end, 6);
});

test('a list that could not be deleted at open does not vouch for the writes after it', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  await appendRange(await s1.open('b'), 0, 3);
  await s1.close();
  const fileOps: FileOps = {
    ...nodeFileOps,
    unlink: async (path) => {
      if (path.endsWith(LIST)) throw Object.assign(new Error('injected EACCES'), { code: 'EACCES' });
      return nodeFileOps.unlink(path);
    },
  };
  const s2 = await LogStore.open(dir, { retentionCheckMs: 0, fileOps });
  t.true((await readdir(dir)).includes(LIST), 'still there');
  await appendRange(await s2.open('b'), 3, 4); // s2 then "crashes"
  const log = await (await openStore(t, dir)).open('b');
  t.false(log.recovery.clean);
  t.is(log.end, 4);
});

test('a second close() waits for the first, which writes the list at its end', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0 });
  await appendRange(await s1.open('a'), 0, 2);
  const first = s1.close();
  await s1.close();
  t.deepEqual(await listed(dir), ['a'], 'written before the second close() resolved');
  await first;
});
