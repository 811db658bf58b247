/**
 * Delivery before the fdatasync (RouterOptions.deliverUnsynced): QoS 0/1 records reach
 * subscribers once written to the OS while their publisher waits for the sync; QoS 2 records
 * wait for it; a failed sync rewinds the cursors that had read past it.
 */
import test, { type ExecutionContext } from 'ava';
import { readdir, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { LogStore } from '../../commitlog/index.js';
import { Router } from '../../router/index.js';
import { tempDir } from '../helpers/broker.js';
import type { RouterOptions, Session } from '../../router/index.js';
import { fakeOutlet, subscribedPair, type FakeOutlet, until, withRouter } from '../helpers/fake-outlet.js';
import { syncGate } from '../helpers/file-faults.js';

interface Rig {
  router: Router;
  gate: ReturnType<typeof syncGate>;
  sub: FakeOutlet;
  subSession: Session;
  pub: FakeOutlet;
  publish(payload: string, qos: 0 | 1 | 2, packetId: number): void;
}

/** Segment/index header and index entry sizes (commitlog/format.ts, documented in notes/commitlog.md). */
const HEADER = 16;
const INDEX_ENTRY = 20;

/** A router with one QoS 2 subscriber on `t/x`, a publisher, and the topic's log already open. */
async function rig(t: ExecutionContext, opts: RouterOptions = {}): Promise<Rig> {
  const gate = syncGate();
  const { router } = await withRouter(t, opts, { fileOps: gate.ops });
  t.teardown(() => gate.release());
  const { sub, subSession, pub, publish } = subscribedPair(router, 't/x', 2);
  publish('warm-up', 1, 1); // opens the topic's log with syncs running normally
  await until(() => pub.acks.length === 1 && sub.sent.length === 1);
  return { router, gate, sub, subSession, pub, publish };
}

test('a QoS 1 message reaches the subscriber while its fdatasync is still running; the publisher is acknowledged only after it', async (t) => {
  const { gate, sub, pub, publish } = await rig(t);
  gate.hold();
  publish('early', 1, 2);
  await until(() => sub.sent.length === 2);
  t.is(sub.sent[1]?.payload.toString(), 'early');
  t.true(gate.held() > 0, 'the sync is being held');
  t.deepEqual(pub.acks, [1], 'no PUBACK before the sync');
  gate.release();
  await until(() => pub.acks.length === 2);
  t.deepEqual(pub.acks, [1, 2]);
});

test('a QoS 2 message waits for its fdatasync before it is delivered, and so do the records behind it', async (t) => {
  const { gate, sub, pub, publish } = await rig(t);
  gate.hold();
  publish('exactly-once', 2, 2);
  publish('behind', 1, 3);
  await until(() => gate.held() > 0);
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(sub.sent.map((m) => m.payload.toString()), ['warm-up'], 'nothing after the QoS 2 record before its sync');
  gate.release();
  await until(() => sub.sent.length === 3 && pub.acks.length === 3);
  t.deepEqual(sub.sent.map((m) => m.payload.toString()), ['warm-up', 'exactly-once', 'behind']);
  t.is(sub.sent[1]?.qos, 2);
});

test('with deliverUnsynced: false every record waits for its fdatasync', async (t) => {
  const { gate, sub, publish } = await rig(t, { deliverUnsynced: false });
  gate.hold();
  publish('late', 1, 2);
  await until(() => gate.held() > 0);
  await new Promise((r) => setTimeout(r, 50));
  t.is(sub.sent.length, 1);
  gate.release();
  await until(() => sub.sent.length === 2);
  t.is(sub.sent[1]?.payload.toString(), 'late');
});

test('a failed sync after an early delivery rewinds the cursor: the records that reuse the offsets are delivered, the lost one is forgotten', async (t) => {
  const { router, gate, sub, subSession, pub, publish } = await rig(t, { maxInflight: 3 });
  const failures: number[] = [];
  pub.storeFailed = (packetId: number) => void failures.push(packetId);
  gate.hold();
  publish('lost', 1, 2);
  await until(() => sub.sent.length === 2 && gate.held() > 0);
  const lostPid = sub.sent[1]?.packetId as number;
  gate.release('EIO');
  await until(() => failures.length === 1);
  t.deepEqual(failures, [2], 'the publisher is told its message was not stored');
  t.is(router.stats.appendFailures, 1);
  // The disk works again: the next records take the lost one's offset and must not be skipped.
  publish('after-1', 1, 3);
  publish('after-2', 1, 4);
  await until(() => sub.sent.length === 4 && pub.acks.length === 3);
  t.deepEqual(sub.sent.map((m) => m.payload.toString()), ['warm-up', 'lost', 'after-1', 'after-2']);
  // The lost message's inflight slot was freed: with a window of 3, both new ones got out
  // although the subscriber acknowledged neither the warm-up nor the lost message.
  t.not(lostPid, 0);
  t.false(router.puback(subSession, lostPid), 'a late PUBACK for the lost message matches nothing');
});

test('a restored cursor past a log tail lost in a crash resumes at the end as soon as the log opens, so a record published before the subscriber returns is not skipped', async (t) => {
  const dir = await tempDir(t);
  let store = await LogStore.open(dir);
  let router = await Router.open(store);
  const first = fakeOutlet();
  const { session } = router.attach('keeper', false, first, -1);
  router.subscribe(session, 't/lost', 0);
  const pub = fakeOutlet();
  const { session: ps } = router.attach('pub', true, pub);
  const id = router.intern('t/lost');
  for (let i = 0; i < 5; i++) router.publish(ps, id, 1, false, Buffer.from(`m${i}`), null, -1, i + 1, pub);
  await until(() => first.sent.length === 5 && pub.acks.length === 5);
  router.detach(session, first); // the cursor (next = 5) is persisted
  await router.close();
  await store.close();

  // A power loss took the last two records of the topic's log (they were delivered before their
  // sync): cut segment and index back to three records, as recovery would find them.
  const logDir = join(dir, `t-${id}`);
  const segment = (await readdir(logDir)).find((f) => f.endsWith('.segment')) as string;
  const index = segment.replace('.segment', '.index');
  const recordBytes = (await stat(join(logDir, segment))).size - HEADER;
  await truncate(join(logDir, segment), HEADER + Math.round((recordBytes * 3) / 5));
  await truncate(join(logDir, index), HEADER + 3 * INDEX_ENTRY);
  await rm(join(dir, '.clean-shutdown'), { force: true });

  store = await LogStore.open(dir);
  router = await Router.open(store);
  t.teardown(async () => {
    await router.close();
    await store.close();
  });
  // someone publishes before the subscriber is back: the record takes offset 3
  const pub2 = fakeOutlet();
  const { session: ps2 } = router.attach('pub2', true, pub2);
  router.publish(ps2, router.intern('t/lost'), 1, false, Buffer.from('after-crash'), null, -1, 1, pub2);
  await until(() => pub2.acks.length === 1);
  const back = fakeOutlet();
  const { present } = router.attach('keeper', false, back, -1);
  t.true(present);
  await until(() => back.sent.length === 1);
  t.deepEqual(back.sent.map((m) => m.payload.toString()), ['after-crash']);
});
