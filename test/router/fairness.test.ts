/**
 * Scheduling: cursors take turns a bounded batch at a time, so a backlog on one topic does not
 * starve another, and a subscriber whose socket is full holds back nobody else.
 */
import test from 'ava';
import { fakeOutlet, until, withRouter } from '../helpers/fake-outlet.js';

test('a backlog of thousands on one topic does not hold back a message on another', async (t) => {
  const { router } = await withRouter(t, { batchRecords: 64 });
  const outlet = fakeOutlet(false); // not writable while the backlog builds
  const { session } = router.attach('s', true, outlet);
  router.subscribe(session, 'big', 0);
  router.subscribe(session, 'small', 0);
  const big = router.intern('big');
  const small = router.intern('small');
  // QoS 1 publishes, so their acknowledgements tell when every record has committed
  const publisher = fakeOutlet();
  const { session: p } = router.attach('p', true, publisher);
  for (let i = 0; i < 5000; i++) router.publish(p, big, 1, false, Buffer.from('b'), null, -1, 1 + (i % 65535), publisher);
  router.publish(p, small, 1, false, Buffer.from('s'), null, -1, 1, publisher);
  await until(() => publisher.acks.length === 5001); // both topics committed; their cursors are parked as blocked
  outlet.setWritable(true);
  router.resume(session);
  await until(() => outlet.sent.length === 5001);
  const position = outlet.sent.map((m) => m.topic).indexOf('small');
  t.true(position >= 0 && position <= 128, `the small topic's message came at position ${position}`);
});

test('a subscriber whose socket stays full does not stall delivery to others', async (t) => {
  const { router } = await withRouter(t);
  const stuck = fakeOutlet(false);
  const healthy = fakeOutlet(true);
  const a = router.attach('stuck', true, stuck).session;
  const b = router.attach('healthy', true, healthy).session;
  router.subscribe(a, 'x', 1);
  router.subscribe(b, 'x', 1);
  const x = router.intern('x');
  for (let i = 0; i < 300; i++) router.publish(null, x, 1, false, Buffer.from(String(i)), null, -1, 0, null);
  await until(() => healthy.sent.length === 256); // the inflight window (256) bounds QoS 1
  t.is(stuck.sent.length, 0);
});
