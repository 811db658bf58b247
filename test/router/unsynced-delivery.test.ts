/**
 * Delivery before the fdatasync (RouterOptions.deliverUnsynced): QoS 0/1 records reach
 * subscribers once written to the OS while their publisher waits for the sync; QoS 2 records
 * wait for it; a failed sync rewinds the cursors that had read past it.
 */
import test, { type ExecutionContext } from 'ava';
import type { Router, RouterOptions, Session } from '../../router/index.js';
import { fakeOutlet, type FakeOutlet, until, withRouter } from '../helpers/fake-outlet.js';
import { syncGate } from '../helpers/file-faults.js';

interface Rig {
  router: Router;
  gate: ReturnType<typeof syncGate>;
  sub: FakeOutlet;
  subSession: Session;
  pub: FakeOutlet;
  publish(payload: string, qos: 0 | 1 | 2, packetId: number): void;
}

/** A router with one QoS 2 subscriber on `t/x`, a publisher, and the topic's log already open. */
async function rig(t: ExecutionContext, opts: RouterOptions = {}): Promise<Rig> {
  const gate = syncGate();
  const { router } = await withRouter(t, opts, { fileOps: gate.ops });
  t.teardown(() => gate.release());
  const sub = fakeOutlet();
  const { session } = router.attach('sub', true, sub);
  router.subscribe(session, 't/x', 2);
  const pub = fakeOutlet();
  const { session: ps } = router.attach('pub', true, pub);
  const id = router.intern('t/x');
  const publish = (payload: string, qos: 0 | 1 | 2, packetId: number) => {
    if (qos === 2) router.beginQos2(ps, packetId); // what the connection does first
    router.publish(ps, id, qos, false, Buffer.from(payload), null, -1, packetId, pub);
  };
  publish('warm-up', 1, 1); // opens the topic's log with syncs running normally
  await until(() => pub.acks.length === 1 && sub.sent.length === 1);
  return { router, gate, sub, subSession: session, pub, publish };
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
