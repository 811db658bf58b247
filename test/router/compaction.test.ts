/**
 * Meta-log compaction: after many session and retained changes, compact() rewrites the live
 * state at the end of each log and deletes what it supersedes; a restart rebuilds exactly the
 * same sessions, cursors and retained messages from what is left.
 */
import test from 'ava';
import { LogStore } from '../../commitlog/index.js';
import { Router } from '../../router/index.js';
import { tempDir } from '../helpers/broker.js';
import { holdWritesTo } from '../helpers/file-faults.js';
import { fakeOutlet as outlet, until } from '../helpers/fake-outlet.js';

test('compaction keeps live sessions and retained messages and deletes the superseded history', async (t) => {
  const dir = await tempDir(t);
  let store = await LogStore.open(dir);
  let router = await Router.open(store, { metaSegmentBytes: 8192 });
  // churn: many sessions come and go, one stays; a retained topic is overwritten many times
  for (let i = 0; i < 300; i++) {
    const o = outlet();
    const { session } = router.attach(`churn-${i}`, false, o, 60);
    router.subscribe(session, `c/${i}`, 1);
    router.detach(session, o);
    router.attach(`churn-${i}`, true, o, 0); // clean start ends it
    router.detach(session, o);
  }
  const keeper = outlet();
  const { session: kept } = router.attach('keeper', false, keeper, -1);
  router.subscribe(kept, 'k/#', 0); // QoS 0: nothing stays owed, so the cursor alone says where it is
  const id = router.intern('k/retained');
  for (let i = 0; i < 200; i++) router.publish(null, id, 1, true, Buffer.from(`v${i}`), null, -1, 0, null);
  await until(() => keeper.sent.length === 200);
  // wait until the newest retained value is the visible one (its retained entry committed)
  const probe = outlet();
  const { session: probing } = router.attach('probe', true, probe);
  await until(() => {
    probe.sent.length = 0;
    router.subscribe(probing, 'k/retained', 0);
    return probe.sent[0]?.payload.toString() === 'v199';
  });
  router.detach(probing, probe);
  router.detach(kept, keeper);
  const before = (await readSizes(store)).sessions;
  const result = await router.compact();
  t.is(result.sessions, 1);
  t.is(result.retained, 1);
  await router.close();
  await store.close();

  store = await LogStore.open(dir);
  const sizes = await readSizes(store);
  t.true(sizes.sessions < before, `sessions log: ${before} records before, ${sizes.sessions} after`);
  router = await Router.open(store, { metaSegmentBytes: 8192 });
  t.teardown(async () => {
    await router.close();
    await store.close();
  });
  t.is(router.sessionCount, 1);
  const back = outlet();
  const { present } = router.attach('keeper', false, back, -1);
  t.true(present);
  // the cursor is where it was: a new message is the first thing delivered
  router.publish(null, router.intern('k/retained'), 1, true, Buffer.from('after'), null, -1, 0, null);
  await until(() => back.sent.length === 1);
  t.deepEqual(back.sent.map((m) => m.payload.toString()), ['after']);
  // the retained value survived compaction and was replaced by the new one once that committed
  // (the live delivery above may come before the retained entry is durable)
  const fresh = outlet();
  const { session: f } = router.attach('fresh', true, fresh);
  const seen = new Set<string>();
  await until(() => {
    fresh.sent.length = 0;
    router.subscribe(f, 'k/retained', 0);
    const v = fresh.sent.map((m) => m.payload.toString()).join(',');
    seen.add(v);
    return v === 'after';
  });
  t.deepEqual([...seen].filter((v) => v !== 'after' && v !== 'v199'), [], 'only the old or the new retained value');
});

/** Records in each meta log, read through a throwaway store handle. */
async function readSizes(store: LogStore): Promise<{ sessions: number }> {
  const log = await store.open('sessions');
  return { sessions: log.end - log.start };
}

test('compacting while a retained value is still committing keeps the newest value across a restart', async (t) => {
  const dir = await tempDir(t);
  const retainedLog = holdWritesTo('retained');
  let store = await LogStore.open(dir, { fileOps: retainedLog.ops });
  let router = await Router.open(store, { metaSegmentBytes: 8192 });
  const pub = outlet();
  const { session } = router.attach('p', true, pub);
  const id = router.intern('cfg');
  router.publish(session, id, 1, true, Buffer.from('old'), null, -1, 1, pub);
  await until(() => pub.acks.length === 1);
  retainedLog.hold(true);
  router.publish(session, id, 1, true, Buffer.from('new'), null, -1, 2, pub);
  const compacting = router.compact(); // 'new' is still waiting for its retained entry
  await new Promise((r) => setTimeout(r, 50));
  retainedLog.release();
  await compacting;
  await until(() => pub.acks.length === 2);
  await router.close();
  await store.close();

  store = await LogStore.open(dir);
  router = await Router.open(store, { metaSegmentBytes: 8192 });
  t.teardown(async () => {
    await router.close();
    await store.close();
  });
  const sub = outlet();
  const { session: s } = router.attach('s', true, sub);
  router.subscribe(s, 'cfg', 0);
  t.deepEqual(sub.sent.map((m) => m.payload.toString()), ['new']);
});
