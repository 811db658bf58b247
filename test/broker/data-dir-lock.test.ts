/**
 * One broker per data directory (src/server/data-dir-lock.ts): a second broker on the same
 * directory is refused with a message naming the holder, the first one carries on, and a
 * broker killed with SIGKILL leaves nothing that stops the next one.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../src/server/broker.js';
import { abstractName, DataDirLock, LOCK_FILE, readHolder } from '../../src/server/data-dir-lock.js';
import { collect, connect, fdsUnder, startBroker, tempDir } from '../helpers/broker.js';
import { runBrokerExpectingExit, spawnBroker } from '../helpers/child-broker.js';

test('a second broker on the same data directory is refused and the first keeps serving', async (t) => {
  const dataDir = await tempDir(t);
  const first = await startBroker(t, { dataDir });
  const err = await t.throwsAsync(Broker.start({ host: '127.0.0.1', port: 0, sysIntervalSec: 0, dataDir }));
  t.is((err as { code?: string }).code, 'ERR_DATA_DIR_LOCKED');
  t.regex(err?.message ?? '', new RegExp(`in use by another mqlog \\(pid ${process.pid} on `));
  // the refused start touched nothing: the first broker still stores and delivers
  const client = await connect(t, first.port);
  await client.subscribeAsync('lock/t', { qos: 1 });
  await client.publishAsync('lock/t', 'still here', { qos: 1 });
  const [m] = await collect(client).waitFor(1);
  t.is(m?.payload, 'still here');
  const holder = await readHolder(dataDir);
  t.is(holder?.pid, process.pid);
});

test('the same directory reached through a symlink is the same lock', async (t) => {
  const dataDir = await tempDir(t);
  await startBroker(t, { dataDir });
  const alias = join(await tempDir(t), 'alias');
  await symlink(dataDir, alias);
  const err = await t.throwsAsync(Broker.start({ host: '127.0.0.1', port: 0, sysIntervalSec: 0, dataDir: alias }));
  t.is((err as { code?: string }).code, 'ERR_DATA_DIR_LOCKED');
});

test('a closed broker gives the directory back, and .lock goes with it', async (t) => {
  const dataDir = await tempDir(t);
  const first = await Broker.start({ host: '127.0.0.1', port: 0, sysIntervalSec: 0, dataDir });
  await first.close();
  t.is(await readHolder(dataDir), null);
  const second = await startBroker(t, { dataDir });
  t.true(second.port > 0);
});

test('mqlog start on a directory a running broker holds exits 1 naming it, and kill -9 frees it', async (t) => {
  t.timeout(40_000);
  const dataDir = await tempDir(t);
  const holder = await spawnBroker(['--data-dir', dataDir]);
  t.teardown(() => holder.child.kill('SIGKILL'));
  const refused = await runBrokerExpectingExit(['--port', '0', '--data-dir', dataDir]);
  t.is(refused.code, 1);
  t.regex(refused.output, new RegExp(`data directory .* is in use by another mqlog \\(pid ${holder.child.pid} on `));

  // the holder dies without cleaning up: its .lock stays, but the kernel freed the lock
  holder.child.kill('SIGKILL');
  await holder.exited;
  t.is((await readHolder(dataDir))?.pid, holder.child.pid, 'the crashed broker left its .lock behind');
  const next = await startBroker(t, { dataDir });
  t.true(next.port > 0);
  t.is((await readHolder(dataDir))?.pid, process.pid);
});

// The 'pidfile' mechanism is the fallback where abstract sockets do not exist; it is forced here.
test("pidfile: a holder that is alive is refused, one whose process is gone is taken over", async (t) => {
  const dir = await tempDir(t);
  const a = await DataDirLock.acquire(dir, 'pidfile');
  const err = await t.throwsAsync(DataDirLock.acquire(dir, 'pidfile'));
  t.is((err as { code?: string }).code, 'ERR_DATA_DIR_LOCKED');
  await a.release();
  t.is(await readHolder(dir), null);

  // a .lock left by a process that has exited
  await writeFile(join(dir, LOCK_FILE), `${JSON.stringify({ pid: await deadPid(), host: hostname(), since: '2026-01-01T00:00:00.000Z', mechanism: 'pidfile' })}\n`);
  const b = await DataDirLock.acquire(dir, 'pidfile');
  t.is((await readHolder(dir))?.pid, process.pid);
  await b.release();

  // a .lock whose process still runs (this test's parent)
  await writeFile(join(dir, LOCK_FILE), `${JSON.stringify({ pid: process.ppid, host: hostname(), since: '2026-01-01T00:00:00.000Z', mechanism: 'pidfile' })}\n`);
  const live = await t.throwsAsync(DataDirLock.acquire(dir, 'pidfile'));
  t.regex(live?.message ?? '', new RegExp(`pid ${process.ppid} on `));

  // another host's cannot be checked: refused, with the file to delete
  await writeFile(join(dir, LOCK_FILE), `${JSON.stringify({ pid: 1, host: 'elsewhere.invalid', since: '2026-01-01T00:00:00.000Z', mechanism: 'pidfile' })}\n`);
  const remote = await t.throwsAsync(DataDirLock.acquire(dir, 'pidfile'));
  t.regex(remote?.message ?? '', /no broker runs on elsewhere\.invalid any more, delete .*\.lock/);
  t.is(JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8')).host, 'elsewhere.invalid', 'a refused take-over leaves the holder alone');
});

test('pidfile: of brokers racing for one directory exactly one wins', async (t) => {
  const dir = await tempDir(t);
  const tries = await Promise.allSettled(Array.from({ length: 8 }, () => DataDirLock.acquire(dir, 'pidfile')));
  const won = tries.filter((r) => r.status === 'fulfilled');
  t.is(won.length, 1);
  for (const r of tries) if (r.status === 'rejected') t.is((r.reason as { code?: string }).code, 'ERR_DATA_DIR_LOCKED');
  await (won[0] as PromiseFulfilledResult<DataDirLock>).value.release();
});

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.on('exit', r));
  return child.pid as number;
}

test('a failed close of the router still closes the store, and only then gives the lock back', async (t) => {
  const dataDir = await tempDir(t);
  const a = await Broker.start({ host: '127.0.0.1', port: 0, sysIntervalSec: 0, dataDir });
  const client = await connect(t, a.port);
  await client.publishAsync('lock/close', 'x', { qos: 1 });
  client.end(true);
  t.true((await fdsUnder(dataDir)).length > 0, 'the store holds files open');
  // what a log's failed last flush makes Router.close() do
  const router = a.router as { close(): Promise<void> };
  const realClose = router.close.bind(router);
  router.close = async () => {
    await realClose().catch(() => undefined);
    throw Object.assign(new Error('injected: flush failed'), { code: 'EIO' });
  };
  const err = await t.throwsAsync(a.close());
  t.is(err?.message, 'injected: flush failed');
  t.deepEqual(await fdsUnder(dataDir), [], 'no file of the store is open once close() settles');
  t.is(await readHolder(dataDir), null);
  const b = await startBroker(t, { dataDir });
  t.true(b.port > 0);
});

test('a start that cannot listen gives back the store and the lock', async (t) => {
  const dataDir = await tempDir(t);
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const err = await t.throwsAsync(Broker.start({ host: '127.0.0.1', port, sysIntervalSec: 0, dataDir }));
  t.is((err as { code?: string }).code, 'ERR_LISTEN_ADDRESS_IN_USE');
  t.deepEqual(await fdsUnder(dataDir), []);
  t.is(await readHolder(dataDir), null);
  const b = await startBroker(t, { dataDir });
  t.true(b.port > 0);
});

test('the abstract name fills the whole sun_path, so Node 20 and Node 22 brokers bind the same address', async (t) => {
  const dataDir = await tempDir(t);
  await startBroker(t, { dataDir });
  const st = await stat(dataDir, { bigint: true });
  const prefix = `@mqlog-data-dir/${st.dev}/${st.ino}`;
  // /proc/net/unix shows an abstract name with '@' for each NUL, the leading one included
  const line = (await readFile('/proc/net/unix', 'utf8')).split('\n').find((l) => l.includes(prefix));
  const name = line?.split(' ').pop() ?? '';
  t.true(name.startsWith(prefix));
  t.is(name.length, 108);
  t.regex(name.slice(prefix.length), /^@+$/);
  // libuv before 1.48 pads by itself; the name must already be padded for later ones
  const ours = await abstractName(dataDir);
  t.is(ours.length, 108);
  t.is(ours.replace(/\0/g, '@'), name);
});

test('pidfile: of starts racing over a stale .lock exactly one takes it over', async (t) => {
  const dir = await tempDir(t);
  const dead = await deadPid();
  for (let round = 0; round < 20; round++) {
    await writeFile(join(dir, LOCK_FILE), `${JSON.stringify({ pid: dead, host: hostname(), since: `round ${round}`, mechanism: 'pidfile' })}\n`);
    const tries = await Promise.allSettled(Array.from({ length: 8 }, () => DataDirLock.acquire(dir, 'pidfile')));
    const won = tries.filter((r): r is PromiseFulfilledResult<DataDirLock> => r.status === 'fulfilled');
    t.is(won.length, 1, `round ${round}`);
    for (const r of tries) if (r.status === 'rejected') t.is((r.reason as { code?: string }).code, 'ERR_DATA_DIR_LOCKED');
    await (won[0] as PromiseFulfilledResult<DataDirLock>).value.release();
  }
  // no guard and no temporary file left behind
  t.deepEqual((await readdir(dir)).filter((n) => n.startsWith('.lock')), []);
});

test('a temporary .lock file left by a process that died is removed by the next holder', async (t) => {
  const dataDir = await tempDir(t);
  const leftover = `.lock.${await deadPid()}.deadbeef`;
  const someoneElse = `.lock.${process.ppid}.0badcafe`;
  await writeFile(join(dataDir, leftover), '{}\n');
  await writeFile(join(dataDir, someoneElse), '{}\n');
  await mkdir(join(dataDir, 'unrelated'));
  await startBroker(t, { dataDir });
  const names = await readdir(dataDir);
  t.false(names.includes(leftover));
  t.true(names.includes(someoneElse), "a live process's file is left alone");
});
