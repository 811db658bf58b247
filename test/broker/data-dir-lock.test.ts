/**
 * One broker per data directory (src/server/data-dir-lock.ts): a second broker on the same
 * directory is refused with a message naming the holder, the first one carries on, and a
 * broker killed with SIGKILL leaves nothing that stops the next one.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFile, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../src/server/broker.js';
import { DataDirLock, LOCK_FILE, readHolder } from '../../src/server/data-dir-lock.js';
import { collect, connect, startBroker, tempDir } from '../helpers/broker.js';
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
  const gone = spawn(process.execPath, ['-e', '0']);
  const deadPid = gone.pid as number;
  await new Promise((r) => gone.on('exit', r));
  await writeFile(join(dir, LOCK_FILE), `${JSON.stringify({ pid: deadPid, host: hostname(), since: '2026-01-01T00:00:00.000Z', mechanism: 'pidfile' })}\n`);
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
