/**
 * The store's boot list (`<root>/.boot-<boot id>`): which logs were written in this boot of the
 * machine, one self-checking line per log, appended. Torn and failed writes, two stores on one
 * root, the batching of many first writes into one write, and the per-log marker files an older
 * version left behind.
 */
import test from 'ava';
import { appendFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BootList, encodeLine, parseLines } from '../../commitlog/boot-list.js';
import { LogStore, nodeFileOps, type CommitLogError, type FileOps } from '../../commitlog/index.js';
import { appendRange, faultyOps, listNames, markUnclean, openStore, recordFor, tempDir } from './helpers.js';

const BOOT = 'test-boot';
const LIST = `.boot-${BOOT}`;

test('a line names a log only when its checksum matches: torn and run-together lines name nobody', (t) => {
  const a = encodeLine(['a']);
  const b = encodeLine(['b']);
  t.regex(a, /^a [0-9a-f]{8}\n$/);
  t.deepEqual(parseLines(Buffer.from(a + b)), [['a'], ['b']]);
  t.deepEqual(parseLines(Buffer.from(a + b.slice(0, 4))), [['a']], 'a last line without its newline');
  t.deepEqual(parseLines(Buffer.from(a.slice(0, 1) + b)), [], "a torn line and the next one run together: neither counts, not even as 'ab'");
  t.deepEqual(parseLines(Buffer.from('a 00000000\nb\n\n')), []);
});

test('two stores on one root append their lines, never over each other, and a log neither wrote is never listed', async (t) => {
  const dir = await tempDir(t);
  const a = await openStore(t, dir, { bootId: BOOT });
  const b = await openStore(t, dir, { bootId: BOOT });
  await appendRange(await a.open('pre-ab'), 0, 1);
  await appendRange(await b.open('xyz'), 0, 1);
  await appendRange(await a.open('second'), 0, 1);
  t.deepEqual((await listNames(join(dir, LIST))).sort(), ['pre-ab', 'second', 'xyz']);
});

test('a torn last line (a crash mid-write) names nobody, and the first line appended after it is not run into it', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, LIST), encodeLine(['a']) + 'half-wr');
  const s1 = await openStore(t, dir, { bootId: BOOT });
  t.false((await s1.open('half-wr')).recovery.sameBoot, 'the torn line does not name the log');
  await appendRange(await s1.open('c'), 0, 1);
  await s1.close();
  const s2 = await openStore(t, dir, { bootId: BOOT });
  t.true((await s2.open('c')).recovery.sameBoot, 'the line appended after the torn one counts');
  t.true((await s2.open('a')).recovery.sameBoot);
});

test('a failed list write fails no data write: the log is stored, unlisted (lenient), and listed by a later batch', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  let failAppend = 'EIO' as string | null;
  const fileOps: FileOps = {
    ...ops,
    append: async (fd, data) => {
      if (failAppend !== null) throw Object.assign(new Error(`injected ${failAppend}`), { code: failAppend });
      return nodeFileOps.append(fd, data);
    },
  };
  const store = await openStore(t, dir, { fileOps, bootId: BOOT });
  const logs = await Promise.all(Array.from({ length: 20 }, (_, i) => store.open(`t${i}`)));
  for (const l of logs) l.append(recordFor(0));
  const settled = await Promise.allSettled(logs.map((l) => l.flush()));
  t.true(settled.every((r) => r.status === 'fulfilled'), 'every first batch committed');
  t.deepEqual(await listNames(join(dir, LIST)), []);
  failAppend = null;
  await appendRange(logs[3] as (typeof logs)[number], 1, 2);
  t.deepEqual(await listNames(join(dir, LIST)), ['t3']);
});

test('an unreadable list counts as empty: the store opens and every log is lenient', async (t) => {
  const dir = await tempDir(t);
  const s1 = await LogStore.open(dir, { retentionCheckMs: 0, bootId: BOOT });
  await appendRange(await s1.open('l'), 0, 2);
  await s1.close();
  await markUnclean(dir, 'l');
  const fileOps: FileOps = {
    ...nodeFileOps,
    open: async (path, create) => {
      if (path.endsWith(LIST) && !create) throw Object.assign(new Error('injected EIO'), { code: 'EIO' });
      return nodeFileOps.open(path, create);
    },
  };
  const s2 = await openStore(t, dir, { fileOps, bootId: BOOT });
  const log = await s2.open('l');
  t.false(log.recovery.sameBoot);
  t.is(log.end, 2);
});

test('the first writes of many logs in one turn leave in one write of the list', async (t) => {
  const dir = await tempDir(t);
  let listWrites = 0;
  const fileOps: FileOps = { ...nodeFileOps, append: (fd, data) => (listWrites++, nodeFileOps.append(fd, data)) };
  const store = await openStore(t, dir, { fileOps, bootId: BOOT });
  const logs = await Promise.all(Array.from({ length: 50 }, (_, i) => store.open(`t${i}`)));
  for (const log of logs) log.append(Buffer.from('x'));
  await Promise.all(logs.map((l) => l.flush()));
  t.is(listWrites, 1, `${listWrites} writes for 50 names`);
  const names = await listNames(join(dir, LIST));
  t.is(names.length, 50);
  t.is(new Set(names).size, 50);
});

test("an older version's marker file in a log's directory is not trusted, and the log's first write removes it", async (t) => {
  const dir = await tempDir(t);
  const s1 = await openStore(t, dir, { bootId: BOOT });
  await appendRange(await s1.open('old'), 0, 3);
  await s1.close();
  // as an older version left it: a marker naming this very boot, no line in the store's list
  await writeFile(join(dir, LIST), '');
  await writeFile(join(dir, 'old', `boot-${BOOT}`), '');
  const s2 = await openStore(t, dir, { bootId: BOOT });
  const log = await s2.open('old');
  t.false(log.recovery.sameBoot, 'lenient: only the list counts');
  await appendRange(log, 3, 4);
  t.false((await readdir(join(dir, 'old'))).some((f) => f.startsWith('boot-')));
  t.deepEqual(await listNames(join(dir, LIST)), ['old']);
});

test('add() after close() is ERR_COMMITLOG_CLOSED; close() waits for the write in flight', async (t) => {
  const dir = await tempDir(t);
  const list = await BootList.open(nodeFileOps, dir, BOOT, []);
  const adding = list.add('a');
  await list.close();
  await adding;
  t.true(list.has('a'));
  t.is((await t.throwsAsync<CommitLogError>(list.add('b')))?.code, 'ERR_COMMITLOG_CLOSED');
  t.deepEqual(await listNames(join(dir, LIST)), ['a']);
});

test('bytes appended by another writer that died mid-line name nobody and do not cost the next line its name', async (t) => {
  const dir = await tempDir(t);
  const s1 = await openStore(t, dir, { bootId: BOOT });
  await appendRange(await s1.open('first'), 0, 1);
  await appendFile(join(dir, LIST), 'torn-na'); // another process killed mid-write
  await appendRange(await s1.open('next'), 0, 1);
  await s1.close();
  t.deepEqual(await listNames(join(dir, LIST)), ['first', 'next']);
  const s2 = await openStore(t, dir, { bootId: BOOT });
  t.true((await s2.open('next')).recovery.sameBoot);
  t.false((await s2.open('torn-na')).recovery.sameBoot);
});

test("this store's own short write (a few bytes landed, then ENOSPC) does not cost its next line its name", async (t) => {
  const dir = await tempDir(t);
  let short = false;
  const fileOps: FileOps = {
    ...nodeFileOps,
    append: async (fd, data) => {
      if (!short) return nodeFileOps.append(fd, data);
      short = false;
      await nodeFileOps.append(fd, data.subarray(0, 4));
      throw Object.assign(new Error('injected ENOSPC'), { code: 'ENOSPC' });
    },
  };
  const s1 = await openStore(t, dir, { fileOps, bootId: BOOT });
  short = true;
  await appendRange(await s1.open('aaaa'), 0, 1); // its list write fails; the batch goes on
  await appendRange(await s1.open('bbbb'), 0, 1);
  await appendRange(await s1.open('aaaa'), 1, 2); // the retry
  await s1.close();
  t.deepEqual((await listNames(join(dir, LIST))).sort(), ['aaaa', 'bbbb']);
});
