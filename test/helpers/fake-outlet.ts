/**
 * An in-memory Outlet for router-level tests: records what the router delivers and acknowledges,
 * and can pretend its socket is full.
 */
import type { ExecutionContext } from 'ava';
import { LogStore, type StoreOptions } from '../../commitlog/index.js';
import { Router, type Outlet, type QoS, type RouterOptions } from '../../router/index.js';
import { tempDir } from './broker.js';

export interface Sent {
  topic: string;
  payload: Buffer;
  qos: QoS;
  packetId: number;
}

export interface FakeOutlet extends Outlet {
  readonly sent: Sent[];
  /** Packet ids the router acknowledged to this publisher (PUBACK/PUBREC). */
  readonly acks: number[];
  /** Packet ids the router could not store (storeFailed). */
  readonly failed: number[];
  setWritable(writable: boolean): void;
}

export function fakeOutlet(writable = true): FakeOutlet {
  const sent: Sent[] = [];
  const acks: number[] = [];
  const failed: number[] = [];
  let open = writable;
  return {
    sent,
    acks,
    failed,
    get writable() {
      return open;
    },
    setWritable(v: boolean) {
      open = v;
    },
    publish(topic, _topicId, qos, _retain, _dup, packetId, payload) {
      sent.push({ topic: topic.toString(), payload, qos, packetId });
      return true;
    },
    pubrel() {},
    stored(packetId) {
      acks.push(packetId);
    },
    storeFailed(packetId) {
      failed.push(packetId);
    },
  };
}

/** Polls `cond` until it holds, failing after `timeoutMs`. */
export async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * The usual rig of a router test: a subscriber to `topic` at `subQos` and a publisher, each a
 * fake outlet with a clean session. publish() does what a connection does for one PUBLISH
 * (beginQos2 first for QoS 2).
 */
export function subscribedPair(router: Router, topic: string, subQos: QoS) {
  const sub = fakeOutlet();
  const { session: subSession } = router.attach('sub', true, sub);
  router.subscribe(subSession, topic, subQos);
  const pub = fakeOutlet();
  const { session: pubSession } = router.attach('pub', true, pub);
  const id = router.intern(topic);
  const publish = (payload: string, qos: QoS, packetId: number, retain = false): void => {
    if (qos === 2) router.beginQos2(pubSession, packetId);
    router.publish(pubSession, id, qos, retain, Buffer.from(payload), null, -1, packetId, pub);
  };
  return { sub, subSession, pub, pubSession, id, publish };
}

/** A router over a fresh store in a temp dir, both closed when the test ends. */
export async function withRouter(t: ExecutionContext, opts: RouterOptions = {}, storeOpts: StoreOptions = {}): Promise<{ router: Router; store: LogStore }> {
  const store = await LogStore.open(await tempDir(t), storeOpts);
  const router = await Router.open(store, opts);
  t.teardown(async () => {
    await router.close();
    await store.close();
  });
  return { router, store };
}
