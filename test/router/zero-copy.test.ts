/**
 * Zero-copy fanout: the payload every subscriber's outlet receives is one view of one stored
 * buffer — one copy on the way in (into the record), none per subscriber on the way out.
 */
import test from 'ava';
import { LogStore } from '../../commitlog/index.js';
import { Router } from '../../router/index.js';
import { tempDir } from '../helpers/broker.js';
import { fakeOutlet, subscribedPair, type Sent, until, withRouter } from '../helpers/fake-outlet.js';

test('every subscriber gets a view of the same stored payload bytes, and the publisher is acked after commit', async (t) => {
  const { router, store } = await withRouter(t);
  const subscribers = [fakeOutlet(), fakeOutlet(), fakeOutlet()];
  subscribers.forEach((outlet, i) => {
    const { session } = router.attach(`sub-${i}`, true, outlet);
    router.subscribe(session, 'fan/out', 1);
  });
  const publisher = fakeOutlet();
  const { session: pubSession } = router.attach('pub', true, publisher);
  const payload = Buffer.alloc(4096, 7);
  router.publish(pubSession, router.intern('fan/out'), 1, false, payload, null, -1, 42, publisher);
  await until(() => subscribers.every((s) => s.sent.length === 1) && publisher.acks.length === 1);

  t.deepEqual(publisher.acks, [42]);
  const views = subscribers.map((s) => (s.sent[0] as Sent).payload);
  const first = views[0] as Buffer;
  t.true(first.equals(payload));
  t.not(first.buffer, payload.buffer, 'the stored copy is not the socket buffer');
  for (const v of views) {
    t.is(v.buffer, first.buffer, 'same backing memory');
    t.is(v.byteOffset, first.byteOffset, 'same bytes, not a copy');
  }
  t.is(router.stats.bytesCopiedIn, payload.length);
  t.is(router.stats.bytesOut, payload.length * subscribers.length);
});

test('QoS 1 subscribers get distinct packet ids and the window bounds what is in flight', async (t) => {
  const { router, store } = await withRouter(t, { maxInflight: 4 });
  const { sub, subSession: session, pub, publish } = subscribedPair(router, 'w', 1);
  for (let i = 0; i < 10; i++) publish(`m${i}`, 1, i + 1);
  await until(() => pub.acks.length === 10 && sub.sent.length === 4);
  await new Promise((r) => setTimeout(r, 50));
  t.is(sub.sent.length, 4, 'window of 4 holds the rest back');
  t.is(new Set(sub.sent.map((s) => s.packetId)).size, 4);
  for (const s of sub.sent.slice()) router.puback(session, s.packetId);
  await until(() => sub.sent.length === 8);
  t.deepEqual(
    sub.sent.map((s) => s.payload.toString()),
    Array.from({ length: 8 }, (_, i) => `m${i}`),
  );
});

test('closing while a new topic log is still opening drops its queued publishes without throwing', async (t) => {
  const store = await LogStore.open(await tempDir(t));
  const router = await Router.open(store);
  const failures: unknown[] = [];
  const onRejection = (err: unknown) => failures.push(err);
  process.on('unhandledRejection', onRejection);
  t.teardown(() => process.off('unhandledRejection', onRejection));
  const outlet = fakeOutlet();
  const { session } = router.attach('late', true, outlet);
  router.publish(session, router.intern('brand/new/topic'), 1, false, Buffer.from('x'), null, -1, 1, outlet);
  await router.close(); // before the topic's log has opened
  await new Promise((r) => setTimeout(r, 100));
  await store.close();
  t.deepEqual(failures, []);
  t.deepEqual(outlet.acks, [], 'nothing was acknowledged');
});
