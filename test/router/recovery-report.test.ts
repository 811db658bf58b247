/**
 * What the router says about logs that opening recovered after an unclean stop: a torn tail is a
 * warning naming the topic; a torn sealed segment (every later segment dropped), or damage that
 * intact records follow found after a reboot, is an error line, because bit rot looks the same
 * and may have taken committed records. A topic whose log cannot open keeps its subscribers'
 * unacknowledged messages, frees QoS 2 packet ids, and says so once per few seconds.
 */
import test from 'ava';
import { appendFile, open, readdir, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { LogStore, nodeFileOps, type StoreOptions } from '../../commitlog/index.js';
import { Router, type RouterLogger, type RouterOptions } from '../../router/index.js';
import { tempDir } from '../helpers/broker.js';
import { fakeOutlet, until } from '../helpers/fake-outlet.js';

interface Line {
  level: 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string;
}

function capture(): { logger: RouterLogger; lines: Line[] } {
  const lines: Line[] = [];
  const push = (level: Line['level']) => (obj: object, msg: string) => lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return { logger: { info: push('info'), warn: push('warn'), error: push('error') }, lines };
}

/**
 * Opens the store and a router whose log lines are captured, and subscribes a persistent session
 * to r/# so that every r/ topic's log opens (and reports its recovery). Closed at teardown or by
 * the returned close().
 */
async function reopenWatching(t: ExecutionContext, dir: string, storeOpts: StoreOptions, routerOpts: RouterOptions = {}): Promise<{ lines: Line[]; close: () => Promise<void> }> {
  const { logger, lines } = capture();
  const store = await LogStore.open(dir, { retentionCheckMs: 0, ...storeOpts });
  const router = await Router.open(store, { ...routerOpts, logger });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await router.close();
    await store.close();
  };
  t.teardown(close);
  const { session } = router.attach('watcher', true, fakeOutlet());
  router.subscribe(session, 'r/#', 0);
  return { lines, close };
}

test('a torn tail is a warning and a torn sealed segment an error line, each naming its topic and what was dropped', async (t) => {
  const dir = await tempDir(t);
  const topicLog = { segmentBytes: 256 };
  const store = await LogStore.open(dir, { retentionCheckMs: 0 });
  const router = await Router.open(store, { topicLog });
  const pub = fakeOutlet();
  const { session } = router.attach('pub', true, pub);
  const tail = router.intern('r/tail');
  const sealed = router.intern('r/sealed');
  let pid = 0;
  for (let i = 0; i < 12; i++) {
    router.publish(session, tail, 1, false, Buffer.alloc(40, i), null, -1, ++pid, pub);
    router.publish(session, sealed, 1, false, Buffer.alloc(40, i), null, -1, ++pid, pub);
    await until(() => pub.acks.length === pid);
  }
  await router.close();
  await store.close();

  // r/tail: bytes no index entry covers (a write cut short); r/sealed: the segment before the
  // newest lost its index (a power loss before its round synced, or damage)
  const tailDir = join(dir, `t-${tail}`);
  const tailSegs = (await readdir(tailDir)).filter((f) => f.endsWith('.segment')).sort();
  await appendFile(join(tailDir, tailSegs[tailSegs.length - 1] ?? ''), Buffer.alloc(30, 7));
  await rm(join(dir, '.clean-shutdown'), { force: true }); // the store's clean-shutdown list: every log is checked in full
  const sealedDir = join(dir, `t-${sealed}`);
  const idxs = (await readdir(sealedDir)).filter((f) => f.endsWith('.index')).sort();
  t.true(idxs.length >= 3, `${idxs.length} segments`);
  await unlink(join(sealedDir, idxs[idxs.length - 2] ?? ''));
  
  const { lines } = await reopenWatching(t, dir, {}, { topicLog });
  await until(() => lines.filter((l) => l.msg.startsWith('log recovery')).length === 2);
  const warn = lines.find((l) => l.level === 'warn' && l.obj.topic === 'r/tail');
  t.truthy(warn, JSON.stringify(lines));
  t.is(warn?.obj.truncatedBytes, 30);
  t.is(warn?.obj.end, 12);
  const error = lines.find((l) => l.level === 'error' && l.obj.topic === 'r/sealed');
  t.truthy(error, JSON.stringify(lines));
  t.true((error?.obj.truncatedRecords as number) > 0);
  t.is(error?.obj.end, Number(idxs[idxs.length - 2]?.slice(0, 20)));
});

/**
 * A broker's life before the damage: 12 QoS 1 messages of 40 bytes (byte i = message i) on
 * `topic`, each stored on its own (one chunk each), then a clean stop. With `subscriber`, that
 * persistent session receives all 12 and acknowledges none.
 */
async function twelveMessages(dir: string, topic: string, subscriber?: string): Promise<void> {
  const store = await LogStore.open(dir, { retentionCheckMs: 0 });
  const router = await Router.open(store);
  const out = fakeOutlet();
  if (subscriber !== undefined) router.subscribe(router.attach(subscriber, false, out).session, topic, 1);
  const pub = fakeOutlet();
  const { session } = router.attach('pub', true, pub);
  const id = router.intern(topic);
  for (let pid = 1; pid <= 12; pid++) {
    router.publish(session, id, 1, false, Buffer.alloc(40, pid), null, -1, pid, pub);
    await until(() => pub.acks.length === pid);
  }
  if (subscriber !== undefined) await until(() => out.sent.length === 12);
  await router.close();
  await store.close();
}

/**
 * Flips the byte in the middle of the only topic log's only segment, as after an unclean stop (same boot:
 * the log refuses to open); flipping it again repairs it.
 */
async function flipMiddle(dir: string): Promise<void> {
  const logDir = join(dir, (await readdir(dir)).find((n) => /^t-\d+$/.test(n)) ?? '');
  await rm(join(dir, '.clean-shutdown'), { force: true });
  const seg = join(logDir, (await readdir(logDir)).find((f) => f.endsWith('.segment')) ?? '');
  const fh = await open(seg, 'r+');
  const at = Math.floor((await stat(seg)).size / 2);
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, at);
  b[0] = (b[0] as number) ^ 0x40;
  await fh.write(b, 0, 1, at);
  await fh.close();
}

test('after a reboot, damage that intact records follow ends the topic log there with an error line (in the same boot it would refuse to open)', async (t) => {
  const dir = await tempDir(t);
  await twelveMessages(dir, 'r/reboot');
  await flipMiddle(dir);

  // the same boot: the topic's log refuses to open (ERR_COMMITLOG_CORRUPT), and the router says so
  const same = await reopenWatching(t, dir, {});
  await until(() => same.lines.some((l) => l.msg === 'topic log unavailable'));
  t.regex(String((same.lines.find((l) => l.msg === 'topic log unavailable')?.obj.err as Error | undefined)?.cause), /damaged but record/);
  await same.close();

  const { lines } = await reopenWatching(t, dir, { bootId: 'a-later-boot' });
  await until(() => lines.some((l) => l.msg.startsWith('log recovery')));
  const error = lines.find((l) => l.level === 'error' && l.obj.topic === 'r/reboot');
  t.truthy(error, JSON.stringify(lines));
  t.regex(error?.msg ?? '', /after a reboot/);
  const end = error?.obj.end as number;
  t.true(end > 0 && end < 12, `the log ends at the damaged record, ${end}`);
  t.is(error?.obj.truncatedRecords, 12 - end);
});

test('while a topic log cannot open, a reconnecting session keeps its unacknowledged messages there, QoS 2 packet ids are freed, and one line says so; after a repair they are resent', async (t) => {
  const dir = await tempDir(t);
  await twelveMessages(dir, 'r/x', 'sub'); // delivered to 'sub', never acknowledged
  await flipMiddle(dir);
  const { logger, lines } = capture();
  const store = await LogStore.open(dir, { retentionCheckMs: 0, damagedRetryMs: 200 });
  const router = await Router.open(store, { logger });
  t.teardown(async () => {
    await router.close();
    await store.close();
  });
  const other = fakeOutlet();
  const { session: o } = router.attach('other', true, other);
  const topic = router.intern('r/x');
  router.beginQos2(o, 7);
  router.publish(o, topic, 2, false, Buffer.from('q2'), null, -1, 7, other);
  await until(() => other.failed.length === 1);
  t.is(router.qos2State(o, 7), 'new', 'the failed QoS 2 exchange is over: the packet id can be used again');
  for (let pid = 8; pid <= 11; pid++) router.publish(o, topic, 1, false, Buffer.from('q1'), null, -1, pid, other);
  await until(() => other.failed.length === 5);
  t.is(lines.filter((l) => l.msg === 'topic log unavailable').length, 1, 'one line for five failures');

  const out2 = fakeOutlet();
  const { session: sub } = router.attach('sub', false, out2);
  await new Promise((r) => setTimeout(r, 100));
  t.is(sub.inflight.size, 12, 'nothing was taken for gone to retention');
  t.is(out2.sent.length, 0);

  await flipMiddle(dir); // the operator repairs the file
  await new Promise((r) => setTimeout(r, 250)); // past damagedRetryMs
  router.detach(sub, out2);
  const out3 = fakeOutlet();
  router.attach('sub', false, out3);
  await until(() => out3.sent.length === 12);
  t.deepEqual(out3.sent.map((m) => m.payload[0]), Array.from({ length: 12 }, (_, i) => i + 1));
});

test('a publish queued behind a failed open is answered on the connection the session has now; a different error is logged at once, with what failed since the last line', async (t) => {
  const dir = await tempDir(t);
  await twelveMessages(dir, 'r/x');
  await flipMiddle(dir);
  let failList = false; // the next listing of a topic log's directory fails with EIO
  const fileOps = {
    ...nodeFileOps,
    readdir: async (path: string) => {
      if (failList && /\/t-\d+$/.test(path)) {
        failList = false;
        throw Object.assign(new Error('injected EIO'), { code: 'EIO' });
      }
      return nodeFileOps.readdir(path);
    },
  };
  const { logger, lines } = capture();
  const store = await LogStore.open(dir, { retentionCheckMs: 0, damagedRetryMs: 100, fileOps });
  const router = await Router.open(store, { logger });
  t.teardown(async () => {
    await router.close();
    await store.close();
  });
  const topic = router.intern('r/x');
  // PUBLISH 7 waits for the log on connection A; the client reconnects on B before it fails
  const a = fakeOutlet();
  const { session } = router.attach('c', false, a);
  router.beginQos2(session, 7);
  router.publish(session, topic, 2, false, Buffer.from('q2'), null, -1, 7, a);
  const b = fakeOutlet();
  router.attach('c', false, b);
  await until(() => b.failed.length === 1);
  t.deepEqual(a.failed, [], 'not to the connection that is gone');
  t.is(router.qos2State(session, 7), 'new');
  // three more failures inside the 5 s window: no line of their own
  for (let pid = 8; pid <= 10; pid++) router.publish(session, topic, 1, false, Buffer.from('q1'), null, -1, pid, b);
  await until(() => b.failed.length === 4);
  const unavailable = () => lines.filter((l) => l.msg === 'topic log unavailable');
  t.is(unavailable().length, 1);
  // past damagedRetryMs the next open fails differently (EIO): said at once, with the count
  await new Promise((r) => setTimeout(r, 150));
  failList = true;
  router.publish(session, topic, 1, false, Buffer.from('q1'), null, -1, 11, b);
  await until(() => b.failed.length === 5);
  t.is(unavailable().length, 2);
  const second = unavailable()[1]?.obj;
  t.regex(String((second?.err as Error | undefined)?.cause), /EIO/);
  t.is(unavailable()[0]?.obj.failedPublishes, 1);
  t.is(second?.failedOpens, 2, 'the suppressed open (publishes 8-10 waited for one) and this one');
  t.is(second?.failedPublishes, 4);
});
