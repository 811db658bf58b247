/**
 * Shared subscriptions ($share/{group}/{filter}): each message goes to one member of a group,
 * groups are independent of each other and of ordinary subscriptions, and a member that leaves
 * with unacknowledged messages has them redelivered to another member.
 */
import test from 'ava';
import { Broker } from '../../src/server/broker.js';
import { collect, connect, connect5, sleep, startBroker, tempDir } from '../helpers/broker.js';
import { RawClient } from '../helpers/raw-client.js';

test('each message goes to exactly one member, spread over the members', async (t) => {
  const broker = await startBroker(t);
  const members = await Promise.all([0, 1, 2].map(() => connect5(t, broker.port)));
  const inboxes = members.map((m) => collect(m));
  for (const m of members) await m.subscribeAsync('$share/workers/jobs/+', { qos: 1 });
  const plain = await connect5(t, broker.port);
  const inPlain = collect(plain);
  await plain.subscribeAsync('jobs/#', { qos: 1 });
  const pub = await connect5(t, broker.port);
  for (let i = 0; i < 30; i++) await pub.publishAsync(`jobs/${i % 3}`, `j${i}`, { qos: 1 });
  await inPlain.waitFor(30);
  const deadline = Date.now() + 5000;
  while (inboxes.reduce((n, b) => n + b.messages.length, 0) < 30 && Date.now() < deadline) await sleep(20);
  await sleep(200);
  const all = inboxes.flatMap((b) => b.messages.map((m) => m.payload));
  t.is(all.length, 30, 'each message once across the group');
  t.is(new Set(all).size, 30, 'no duplicates');
  t.true(
    inboxes.every((b) => b.messages.length >= 5),
    `spread: ${inboxes.map((b) => b.messages.length).join('/')}`,
  );
  t.is(inPlain.messages.length, 30, 'an ordinary subscription still gets everything');
});

test('two groups on the same filter each get every message once', async (t) => {
  const broker = await startBroker(t);
  const a1 = await connect5(t, broker.port);
  const a2 = await connect5(t, broker.port);
  const b1 = await connect(t, broker.port); // 3.1.1 clients can share too
  for (const c of [a1, a2]) await c.subscribeAsync('$share/a/evt', { qos: 0 });
  await b1.subscribeAsync('$share/b/evt', { qos: 0 });
  const ia1 = collect(a1);
  const ia2 = collect(a2);
  const ib1 = collect(b1);
  const pub = await connect5(t, broker.port);
  for (let i = 0; i < 10; i++) pub.publish('evt', `e${i}`);
  await ib1.waitFor(10);
  const deadline = Date.now() + 3000;
  while (ia1.messages.length + ia2.messages.length < 10 && Date.now() < deadline) await sleep(20);
  await sleep(150);
  t.is(ia1.messages.length + ia2.messages.length, 10);
  t.is(ib1.messages.length, 10);
});

test('a member that leaves with unacknowledged messages has them redelivered to another member', async (t) => {
  const broker = await startBroker(t);
  // a raw member that never acknowledges, with room for the first messages
  const lazy = await RawClient.open(broker.port, 5);
  await lazy.handshake('lazy', { protocolVersion: 5, properties: { receiveMaximum: 3 } });
  lazy.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/g/work', qos: 1 }] });
  await lazy.nextPacket('suback');
  const pub = await connect5(t, broker.port);
  for (let i = 0; i < 3; i++) await pub.publishAsync('work', `w${i}`, { qos: 1 });
  for (let i = 0; i < 3; i++) await lazy.nextPacket('publish');
  // now a second member joins, and the lazy one disconnects without acknowledging
  const steady = await connect5(t, broker.port);
  const inbox = collect(steady);
  await steady.subscribeAsync('$share/g/work', { qos: 1 });
  lazy.destroy();
  const got = await inbox.waitFor(3, 5000);
  t.deepEqual(got.map((m) => m.payload).sort(), ['w0', 'w1', 'w2']);
});

test('no retained messages are sent on a shared subscription', async (t) => {
  const broker = await startBroker(t);
  const pub = await connect5(t, broker.port);
  await pub.publishAsync('shr/ret', 'kept', { qos: 1, retain: true });
  const member = await connect5(t, broker.port);
  const inbox = collect(member);
  await member.subscribeAsync('$share/g/shr/#', { qos: 1 });
  await sleep(250);
  t.is(inbox.messages.length, 0);
  await pub.publishAsync('shr/ret', 'live', { qos: 1 });
  const [m] = await inbox.waitFor(1);
  t.is(m?.payload, 'live');
});

test('No Local on a shared subscription is a protocol error [MQTT-3.8.3-4]', async (t) => {
  const broker = await startBroker(t);
  const raw = await RawClient.open(broker.port, 5);
  t.teardown(() => raw.destroy());
  await raw.handshake('nl-share', { protocolVersion: 5 });
  raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/g/x', qos: 1, nl: true }] });
  const d = await raw.nextPacket('disconnect');
  t.is(d.reasonCode, 0x82);
});

test('a shared group resumes where it stopped after a restart, unacknowledged messages included', async (t) => {
  const dataDir = await tempDir(t);
  const start = () => Broker.start({ host: '127.0.0.1', port: 0, dataDir, sysIntervalSec: 0 });
  let broker = await start();
  // a persistent member that receives but never acknowledges
  const member = await RawClient.open(broker.port, 5);
  await member.handshake('grp-member', { protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 300 } });
  member.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/keep/jobs', qos: 1 }] });
  await member.nextPacket('suback');
  const pub = await connect5(t, broker.port);
  await pub.publishAsync('jobs', 'unacked', { qos: 1 });
  await member.nextPacket('publish');
  member.destroy();
  await pub.publishAsync('jobs', 'while-offline', { qos: 1 });
  await pub.endAsync();
  await sleep(50);
  await broker.close();

  broker = await start();
  t.teardown(() => broker.close());
  const back = await connect5(t, broker.port, { clientId: 'grp-member', clean: false, properties: { sessionExpiryInterval: 300 } });
  const got = await collect(back).waitFor(2, 5000);
  t.deepEqual(got.map((m) => m.payload).sort(), ['unacked', 'while-offline']);
});

test('a member that reconnects gets what was published while the whole group was offline (also across a restart)', async (t) => {
  const dataDir = await tempDir(t);
  const start = () => Broker.start({ host: '127.0.0.1', port: 0, dataDir, sysIntervalSec: 0 });
  let broker = await start();
  const opts = { clientId: 'lone-worker', clean: false, properties: { sessionExpiryInterval: 300 } };
  const worker = await connect5(t, broker.port, opts);
  await worker.subscribeAsync('$share/g/tasks/#', { qos: 1 });
  await worker.endAsync();
  const pub = await connect5(t, broker.port);
  await pub.publishAsync('tasks/x', 'while-away-1', { qos: 1 });
  // within one broker run: the group must wake up when its member returns
  const back = await connect5(t, broker.port, opts);
  t.is((await collect(back).waitFor(1, 3000))[0]?.payload, 'while-away-1');
  await back.endAsync();
  await pub.publishAsync('tasks/x', 'while-away-2', { qos: 1 });
  await pub.endAsync();
  await broker.close();
  // across a restart: the group's position was persisted although no member was connected
  broker = await start();
  t.teardown(() => broker.close());
  const again = await connect5(t, broker.port, opts);
  t.is((await collect(again).waitFor(1, 3000))[0]?.payload, 'while-away-2');
});
