/**
 * The store's boot list (`<root>/.boot-<boot id>`): which logs were written in this boot of the
 * machine, one line per log. Torn and failed writes, the batching of many first writes into one
 * write, and the per-log marker files an older version left behind.
 */
import test from 'ava';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BootList, parseNameList } from '../../commitlog/boot-list.js';
import { nodeFileOps, type CommitLogError, type FileOps } from '../../commitlog/index.js';
import { appendRange, faultyOps, openStore, tempDir } from './helpers.js';

const BOOT = 'test-boot';
const LIST = `.boot-${BOOT}`;

test('a last line without its newline is not a name, and it is cut before the next line is appended', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, LIST), 'a\nb\nhalf-writ');
  t.deepEqual(parseNameList(Buffer.from('a\nb\nhalf-writ')), { names: new Set(['a', 'b']), end: 4 });
  const store = await openStore(t, dir, { bootId: BOOT });
  const half = await store.open('half-writ');
  t.false(half.recovery.sameBoot, 'the torn line does not name the log');
  await appendRange(await store.open('c'), 0, 1);
  t.is(await readFile(join(dir, LIST), 'latin1'), 'a\nb\nc\n');
});

test('names that are not log names are ignored', (t) => {
  const { names } = parseNameList(Buffer.from('ok\n\n../x\n.hidden\nalso-ok\n'));
  t.deepEqual([...names], ['ok', 'also-ok']);
});

test('a failed write lists nobody, leaves no bytes behind, and the next first write tries again', async (t) => {
  const dir = await tempDir(t);
  const ops = faultyOps();
  const store = await openStore(t, dir, { fileOps: ops, bootId: BOOT });
  const log = await store.open('l');
  await appendRange(log, 0, 1); // the list's file exists now
  // the next log's line: 8 bytes of it land, then EIO
  const other = await store.open('other-log');
  ops.fail.writev = 'EIO';
  ops.partialBytes = 8;
  other.append(Buffer.from('x'));
  t.is((await t.throwsAsync<CommitLogError>(other.flush()))?.code, 'ERR_COMMITLOG_IO');
  t.is(await readFile(join(dir, LIST), 'latin1'), 'l\nother-lo', 'the torn line is in the file for now');
  delete ops.fail.writev;
  ops.partialBytes = 0;
  // a shorter line next: without the cut, the torn line's rest would follow it
  await appendRange(await store.open('z'), 0, 1);
  t.is(await readFile(join(dir, LIST), 'latin1'), 'l\nz\n', 'cut back to the last whole line');
  await appendRange(other, 0, 1);
  t.is(await readFile(join(dir, LIST), 'latin1'), 'l\nz\nother-log\n', 'and the failed name written whole by its retry');
});

test('the first writes of many logs in one turn leave in one write of the list', async (t) => {
  const dir = await tempDir(t);
  let listWrites = 0;
  let listFd = -1;
  const fileOps: FileOps = {
    ...nodeFileOps,
    open: async (path, create) => {
      const fd = await nodeFileOps.open(path, create);
      if (path.endsWith(LIST)) listFd = fd;
      return fd;
    },
    writev: (fd, bufs, pos) => {
      if (fd === listFd) listWrites++;
      return nodeFileOps.writev(fd, bufs, pos);
    },
  };
  const store = await openStore(t, dir, { fileOps, bootId: BOOT });
  const logs = await Promise.all(Array.from({ length: 50 }, (_, i) => store.open(`t${i}`)));
  for (const log of logs) log.append(Buffer.from('x'));
  await Promise.all(logs.map((l) => l.flush()));
  t.is(listWrites, 1, `${listWrites} writes for 50 names`);
  const names = (await readFile(join(dir, LIST), 'latin1')).split('\n').filter((l) => l !== '');
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
  t.is(await readFile(join(dir, LIST), 'latin1'), 'old\n');
});

test('add() after close() is ERR_COMMITLOG_CLOSED; close() waits for the write in flight', async (t) => {
  const dir = await tempDir(t);
  const list = await BootList.open(nodeFileOps, dir, BOOT, []);
  const adding = list.add('a');
  await list.close();
  await adding;
  t.true(list.has('a'));
  t.is((await t.throwsAsync<CommitLogError>(list.add('b')))?.code, 'ERR_COMMITLOG_CLOSED');
  t.is(await readFile(join(dir, LIST), 'latin1'), 'a\n');
});
