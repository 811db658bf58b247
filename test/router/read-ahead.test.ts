/**
 * A cursor behind the in-memory tail catches up from disk with one positional read per ~64 KiB,
 * not one per scheduler turn, and still delivers every record once, in order.
 */
import test from 'ava';
import { nodeFileOps, type FileOps } from '../../commitlog/index.js';
import { fakeOutlet, until, withRouter } from '../helpers/fake-outlet.js';

test('a lagging subscriber catches up from disk in order with few reads', async (t) => {
  let reads = 0;
  const ops: FileOps = { ...nodeFileOps, read: (...args) => (reads++, nodeFileOps.read(...args)) };
  // no in-memory tail: every delivery comes from the segment files
  const { router } = await withRouter(t, { topicLog: { tailBytes: 0 } }, { fileOps: ops });
  const sub = fakeOutlet(false); // its socket is "full" while the backlog builds
  const { session } = router.attach('lagging', true, sub);
  router.subscribe(session, 'backlog', 0);
  const pub = fakeOutlet();
  const { session: p } = router.attach('p', true, pub);
  const id = router.intern('backlog');
  const N = 20_000;
  for (let i = 0; i < N; i++) router.publish(p, id, 1, false, Buffer.from(`m${i}`.padEnd(32, '.')), null, -1, 1, pub);
  await until(() => pub.acks.length === N, 20_000);
  reads = 0;
  sub.setWritable(true);
  router.resume(session);
  await until(() => sub.sent.length === N, 20_000);
  t.true(sub.sent.every((m, i) => m.payload.toString().startsWith(`m${i}.`)), 'every record once, in order');
  const turns = N / 64;
  t.true(reads < turns / 4, `${reads} reads for ${turns} scheduler turns`);
});
