/**
 * Lazy syncing of topic logs (RouterOptions.lazySyncMs): a QoS 0 record is delivered once
 * written and gets no fdatasync of its own; a QoS 1/2 or RETAIN record asks for the sync, which
 * then covers the QoS 0 records before it; lazySyncMs bounds how long the others wait.
 * fdatasyncs are counted per file through the FileOps seam.
 */
import test, { type ExecutionContext } from 'ava';
import { nodeFileOps, type FileOps } from '../../commitlog/index.js';
import type { Router, RouterOptions, Session } from '../../router/index.js';
import { pathAwareOps } from '../commitlog/helpers.js';
import { fakeOutlet, subscribedPair, type FakeOutlet, until, withRouter } from '../helpers/fake-outlet.js';

interface Rig {
  router: Router;
  /** fdatasyncs of files of topic logs (directories `t-<id>`) so far. */
  topicSyncs(): number;
  /** Writes (segment or index) to files of topic logs so far. */
  topicWrites(): number;
  sub: FakeOutlet;
  pubSession: Session;
  pub: FakeOutlet;
  publish(payload: string, qos: 0 | 1 | 2, packetId: number, retain?: boolean): void;
}

/** FileOps that count the writes and fdatasyncs of topic logs' files (directories `t-<id>`). */
function countingTopicOps(): { ops: FileOps; writes(): number; syncs(): number } {
  let writes = 0;
  let syncs = 0;
  const ops = pathAwareOps((pathOf) => {
    const isTopic = (fd: number) => /[/\\]t-\d+[/\\]/.test(pathOf(fd));
    return {
      async writev(fd, buffers, position) {
        if (isTopic(fd)) writes++;
        return nodeFileOps.writev(fd, buffers, position);
      },
      writevSync(fd, buffers, position) {
        if (isTopic(fd)) writes++;
        nodeFileOps.writevSync?.(fd, buffers, position);
      },
      async fdatasync(fd) {
        if (isTopic(fd)) syncs++;
        return nodeFileOps.fdatasync(fd);
      },
    };
  });
  return { ops, writes: () => writes, syncs: () => syncs };
}

async function rig(t: ExecutionContext, opts: RouterOptions = {}): Promise<Rig> {
  const counted = countingTopicOps();
  const { router } = await withRouter(t, opts, { fileOps: counted.ops });
  const { sub, pub, pubSession, publish } = subscribedPair(router, 't/x', 2);
  publish('warm-up', 1, 1); // opens the topic's log
  await until(() => pub.acks.length === 1 && sub.sent.length === 1);
  return { router, topicSyncs: counted.syncs, topicWrites: counted.writes, sub, pubSession, pub, publish };
}

test('QoS 0 messages are delivered without a write or an fdatasync of their own; the next QoS 1 message is written and synced together with them', async (t) => {
  // lazySyncMs of an hour: only the QoS 1 message's request can start a sync within the test
  const { topicSyncs, topicWrites, sub, pub, publish } = await rig(t, { lazySyncMs: 3_600_000 });
  const before = topicSyncs();
  const writesBefore = topicWrites();
  for (let i = 0; i < 5; i++) {
    publish(`q0-${i}`, 0, 0);
    await new Promise((r) => setImmediate(r)); // one batch each
  }
  await until(() => sub.sent.length === 6);
  await new Promise((r) => setTimeout(r, 50));
  t.is(topicSyncs(), before, 'no fdatasync for QoS 0 batches');
  t.is(topicWrites(), writesBefore, 'not even a write: delivered from memory');
  publish('q1', 1, 2);
  await until(() => pub.acks.length === 2);
  t.is(topicSyncs(), before + 2, 'one round (segment + index) for the QoS 1 message and the five before it');
  t.is(topicWrites(), writesBefore + 2, 'one batch (segment + index) for all six');
  t.deepEqual(sub.sent.map((m) => m.payload.toString()).slice(1), ['q0-0', 'q0-1', 'q0-2', 'q0-3', 'q0-4', 'q1']);
});

test('a retained QoS 0 message asks for its sync: it becomes the retained value at once, not after lazySyncMs', async (t) => {
  const { router, topicSyncs, publish } = await rig(t, { lazySyncMs: 3_600_000 });
  const before = topicSyncs();
  publish('kept', 0, 0, true);
  // a retained value is applied only once its topic record (and retained entry) have committed
  await until(() => router.stats.retained === 1, 2000);
  t.true(topicSyncs() >= before + 2);
  const late = fakeOutlet();
  const { session } = router.attach('late', true, late);
  router.subscribe(session, 't/x', 0);
  await until(() => late.sent.length === 1, 2000);
  t.is(late.sent[0]?.payload.toString(), 'kept');
});

test('QoS 0 records nobody asks for are synced lazySyncMs after they were written', async (t) => {
  const { topicSyncs, sub, publish } = await rig(t, { lazySyncMs: 60 });
  const before = topicSyncs();
  publish('q0', 0, 0);
  await until(() => sub.sent.length === 2);
  t.is(topicSyncs(), before);
  await until(() => topicSyncs() === before + 2, 2000);
  t.pass();
});

test('lazySyncMs 0, or deliverUnsynced false, syncs every QoS 0 batch', async (t) => {
  for (const opts of [{ lazySyncMs: 0 }, { deliverUnsynced: false }] as RouterOptions[]) {
    const { topicSyncs, sub, publish } = await rig(t, opts);
    const before = topicSyncs();
    publish('q0', 0, 0);
    await until(() => sub.sent.length === 2, 2000);
    await until(() => topicSyncs() === before + 2, 500);
    t.pass();
  }
});

test('lazySyncMs is validated', async (t) => {
  for (const bad of [-1, 0.5, 3_600_001]) {
    const err = await t.throwsAsync(withRouter(t, { lazySyncMs: bad }));
    t.is((err as { code?: string }).code, 'ERR_ROUTER_INVALID_OPTION');
  }
});

for (const durability of [{ mode: 'never' as const }, { mode: 'interval' as const, intervalMs: 3_600_000 }]) {
  test(`a store whose logDefaults say '${durability.mode}' keeps it for topic logs: lazy syncing only ever relaxes 'batch'`, async (t) => {
    const counted = countingTopicOps();
    const { router } = await withRouter(t, {}, { fileOps: counted.ops, logDefaults: { durability } });
    const pub = fakeOutlet();
    const { session } = router.attach('pub', true, pub);
    const id = router.intern('t/x');
    for (let i = 1; i <= 3; i++) {
      router.publish(session, id, 1, false, Buffer.from(`m${i}`), null, -1, i, pub);
      await until(() => pub.acks.length === i, 3000);
    }
    t.is(counted.syncs(), 0);
  });
}

test("a store whose logDefaults say 'batch' with lazyMs 0 keeps syncing every batch: the router's lazy default does not override an explicit 0", async (t) => {
  const counted = countingTopicOps();
  const { router } = await withRouter(t, {}, { fileOps: counted.ops, logDefaults: { durability: { mode: 'batch', lazyMs: 0 } } });
  const pub = fakeOutlet();
  const { session } = router.attach('pub', true, pub);
  router.publish(session, router.intern('t/x'), 0, false, Buffer.from('q0'), null, -1, 0, pub);
  // under the lazy default this QoS 0 record would wait a second for its fdatasync
  await until(() => counted.syncs() >= 2, 500);
  t.true(counted.writes() >= 2);
});
