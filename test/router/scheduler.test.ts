/**
 * The delivery scheduler: a cursor woken by a 'flushed' or 'commit' event is served inside
 * that event, and no scheduled pass is queued for it as well (one wake-up per delivered
 * message at low load, which found the ready list empty).
 */
import test from 'ava';
import { createHook } from 'node:async_hooks';
import { subscribedPair, until, withRouter } from '../helpers/fake-outlet.js';

test.serial('a message delivered from its commit event queues no setImmediate pass in the router', async (t) => {
  const { router } = await withRouter(t);
  const { sub, subSession, pub, publish } = subscribedPair(router, 'sched/t', 1);
  // the first message opens the topic's log (its cursor is served by a scheduled pass)
  publish('m0', 1, 1);
  await until(() => sub.sent.length === 1 && pub.acks.length === 1);
  let immediates = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'Immediate' && /router[/\\]router\.[jt]s/.test(new Error().stack ?? '')) immediates++;
    },
  });
  hook.enable();
  try {
    for (let i = 1; i <= 50; i++) {
      publish(`m${i}`, 1, (i % 65535) + 1);
      await until(() => sub.sent.length === i + 1 && pub.acks.length === i + 1);
      router.puback(subSession, (sub.sent[i] as { packetId: number }).packetId);
    }
  } finally {
    hook.disable();
  }
  t.deepEqual(
    sub.sent.map((s) => s.payload.toString()),
    Array.from({ length: 51 }, (_, i) => `m${i}`),
  );
  t.is(immediates, 0);
});
