/**
 * Publish/subscribe end to end through the broker, driven by the `mqtt` npm client.
 */
import test from 'ava';
import { collect, connect, startBroker } from '../helpers/broker.js';

test('delivers QoS 0 messages to a subscriber in order', async (t) => {
  const broker = await startBroker(t);
  const sub = await connect(t, broker.port);
  const inbox = collect(sub);
  await sub.subscribeAsync('a/b', { qos: 0 });
  const pub = await connect(t, broker.port);
  for (let i = 0; i < 20; i++) pub.publish('a/b', `m${i}`, { qos: 0 });
  const got = await inbox.waitFor(20);
  t.deepEqual(
    got.map((m) => m.payload),
    Array.from({ length: 20 }, (_, i) => `m${i}`),
  );
  t.true(got.every((m) => m.topic === 'a/b' && m.qos === 0 && !m.retain));
});

test('acknowledges QoS 1 publishes and delivers at min(published, granted) QoS [MQTT-3.8.4-6]', async (t) => {
  const broker = await startBroker(t);
  const sub1 = await connect(t, broker.port);
  const sub0 = await connect(t, broker.port);
  const in1 = collect(sub1);
  const in0 = collect(sub0);
  await sub1.subscribeAsync('q/#', { qos: 1 });
  await sub0.subscribeAsync('q/#', { qos: 0 });
  const pub = await connect(t, broker.port);
  await pub.publishAsync('q/x', 'one', { qos: 1 });
  await pub.publishAsync('q/y', 'zero', { qos: 0 });
  const got1 = await in1.waitFor(2);
  const got0 = await in0.waitFor(2);
  t.deepEqual(
    got1.map((m) => [m.payload, m.qos]),
    [
      ['one', 1],
      ['zero', 0],
    ],
  );
  t.deepEqual(
    got0.map((m) => [m.payload, m.qos]),
    [
      ['one', 0],
      ['zero', 0],
    ],
  );
});

test('QoS 2 flows in both directions exactly once', async (t) => {
  const broker = await startBroker(t);
  const sub = await connect(t, broker.port);
  const inbox = collect(sub);
  await sub.subscribeAsync('x', { qos: 2 });
  const pub = await connect(t, broker.port);
  for (let i = 0; i < 5; i++) await pub.publishAsync('x', `e${i}`, { qos: 2 });
  const got = await inbox.waitFor(5);
  await new Promise((r) => setTimeout(r, 200));
  t.is(inbox.messages.length, 5);
  t.deepEqual(
    got.map((m) => [m.payload, m.qos]),
    [0, 1, 2, 3, 4].map((i) => [`e${i}`, 2]),
  );
});

test('overlapping subscriptions yield one copy at the highest granted QoS [MQTT-3.3.5-1]', async (t) => {
  const broker = await startBroker(t);
  const sub = await connect(t, broker.port);
  const inbox = collect(sub);
  await sub.subscribeAsync({ 'home/#': { qos: 0 }, 'home/+/temp': { qos: 1 }, 'home/kitchen/temp': { qos: 0 } });
  const pub = await connect(t, broker.port);
  await pub.publishAsync('home/kitchen/temp', '21', { qos: 1 });
  await pub.publishAsync('home/end', 'end', { qos: 1 });
  await inbox.waitFor(2);
  await new Promise((r) => setTimeout(r, 150));
  t.deepEqual(
    inbox.messages.map((m) => [m.topic, m.qos]),
    [
      ['home/kitchen/temp', 1],
      ['home/end', 0],
    ],
  );
});

test('wildcards match per level and never match $ topics from the first level [MQTT-4.7.2-1]', async (t) => {
  const broker = await startBroker(t);
  const sub = await connect(t, broker.port);
  const inbox = collect(sub);
  await sub.subscribeAsync({ '#': { qos: 0 }, 'a/+/c': { qos: 0 } });
  const pub = await connect(t, broker.port);
  pub.publish('$internal/x', 'hidden');
  pub.publish('a/b/c', 'abc');
  pub.publish('a/b/c/d', 'abcd');
  await inbox.waitFor(2);
  await new Promise((r) => setTimeout(r, 150));
  t.deepEqual(inbox.messages.map((m) => m.topic).sort(), ['a/b/c', 'a/b/c/d']);
});

test('a subscription made before a topic exists picks up the new topic from its first message', async (t) => {
  const broker = await startBroker(t);
  const sub = await connect(t, broker.port);
  const inbox = collect(sub);
  await sub.subscribeAsync('fresh/+', { qos: 1 });
  const pub = await connect(t, broker.port);
  await pub.publishAsync('fresh/1', 'first', { qos: 1 });
  await pub.publishAsync('fresh/2', 'second', { qos: 1 });
  const got = await inbox.waitFor(2);
  t.deepEqual(got.map((m) => m.payload).sort(), ['first', 'second']);
});

test('unsubscribe stops delivery', async (t) => {
  const broker = await startBroker(t);
  const sub = await connect(t, broker.port);
  const inbox = collect(sub);
  await sub.subscribeAsync('u', { qos: 1 });
  const pub = await connect(t, broker.port);
  await pub.publishAsync('u', 'before', { qos: 1 });
  await inbox.waitFor(1);
  await sub.unsubscribeAsync('u');
  await pub.publishAsync('u', 'after', { qos: 1 });
  await new Promise((r) => setTimeout(r, 200));
  t.deepEqual(
    inbox.messages.map((m) => m.payload),
    ['before'],
  );
});

test('a retained message reaches later subscribers with RETAIN set; an empty one clears it [MQTT-3.3.1-10]', async (t) => {
  const broker = await startBroker(t);
  const pub = await connect(t, broker.port);
  await pub.publishAsync('status/door', 'open', { qos: 1, retain: true });
  const sub = await connect(t, broker.port);
  const inbox = collect(sub);
  await sub.subscribeAsync('status/+', { qos: 1 });
  const [m] = await inbox.waitFor(1);
  t.is(m?.payload, 'open');
  t.true(m?.retain);
  t.is(m?.qos, 1);
  // a live subscriber gets later retained publishes with RETAIN cleared [MQTT-3.3.1-9]
  await pub.publishAsync('status/door', 'closed', { qos: 1, retain: true });
  const live = (await inbox.waitFor(2))[1];
  t.is(live?.payload, 'closed');
  t.false(live?.retain);
  await pub.publishAsync('status/door', '', { qos: 1, retain: true });
  const late = await connect(t, broker.port);
  const lateInbox = collect(late);
  await late.subscribeAsync('status/#', { qos: 1 });
  await new Promise((r) => setTimeout(r, 200));
  t.is(lateInbox.messages.length, 0);
});

test('publishes $SYS statistics that a # subscriber does not see but $SYS/# does', async (t) => {
  const broker = await startBroker(t);
  const all = await connect(t, broker.port);
  const allInbox = collect(all);
  await all.subscribeAsync('#', { qos: 0 });
  const sys = await connect(t, broker.port);
  const sysInbox = collect(sys);
  await sys.subscribeAsync('$SYS/broker/#', { qos: 0 });
  broker.publishSys();
  const got = await sysInbox.waitFor(13); // every statistic: topics have no order among themselves
  const topics = got.map((m) => m.topic);
  t.true(topics.includes('$SYS/broker/clients/connected'));
  t.true(topics.includes('$SYS/broker/uptime'));
  const connected = got.find((m) => m.topic === '$SYS/broker/clients/connected');
  t.is(connected?.payload, '2');
  t.is(allInbox.messages.length, 0);
});

test('a publisher switching between topics of equal length gets each message to its own topic', async (t) => {
  // the connection caches its last topic (src/protocol/last-topic.ts); a stale hit would file a
  // message under the previous topic
  const broker = await startBroker(t);
  const sub = await connect(t, broker.port);
  const inbox = collect(sub);
  await sub.subscribeAsync('s/#', { qos: 1 });
  const pub = await connect(t, broker.port);
  const long = `s/${'x'.repeat(70)}`;
  const topics = ['s/a1', 's/a2', 's/a2', 's/a1', 's/b1', 's/a1', long, `${long}y`, long, 's/a1'];
  for (const [i, topic] of topics.entries()) await pub.publishAsync(topic, `${i}`, { qos: i % 2 === 0 ? 0 : 1 });
  const got = await inbox.waitFor(topics.length);
  // each topic is its own log, so only the order within one topic is promised
  t.deepEqual(
    got.map((m) => [Number(m.payload), m.topic]).sort((x, y) => (x[0] as number) - (y[0] as number)),
    topics.map((topic, i) => [i, topic]),
  );
});
