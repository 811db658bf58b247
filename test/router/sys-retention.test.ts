/** $SYS topic logs keep a bounded history; ordinary topic logs keep what retention says. */
import test from 'ava';
import { fakeOutlet, until, withRouter } from '../helpers/fake-outlet.js';

test('a $SYS topic log stays near 256 KiB however much is published to it', async (t) => {
  const { router, store } = await withRouter(t);
  const publisher = fakeOutlet();
  const { session } = router.attach('sys-pub', true, publisher);
  const sys = router.intern('$SYS/broker/uptime');
  const plain = router.intern('plain/topic');
  const payload = Buffer.alloc(50, 0x31);
  for (let i = 0; i < 20_000; i++) {
    router.publish(session, sys, 1, false, payload, null, -1, 1, publisher);
    router.publish(session, plain, 1, false, payload, null, -1, 1, publisher);
  }
  await until(() => publisher.acks.length === 40_000, 20_000);
  const sysLog = await store.open(`t-${sys}`);
  const plainLog = await store.open(`t-${plain}`);
  await sysLog.enforceRetention();
  t.true(plainLog.diskBytes > 1_000_000, `ordinary topic keeps everything: ${plainLog.diskBytes} B`);
  t.true(sysLog.diskBytes < 512 * 1024, `$SYS topic trimmed to ${sysLog.diskBytes} B`);
  t.true(sysLog.start > 0, 'its oldest records were deleted');
});
