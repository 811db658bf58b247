/**
 * Exactly-once across a broker restart: an owed outbound PUBREL is resent (not the message), and
 * an inbound QoS 2 PUBLISH resent after the restart is acknowledged without being stored twice.
 */
import test from 'ava';
import { Broker } from '../../src/server/broker.js';
import { collect, connect, sleep, tempDir } from '../helpers/broker.js';
import { holdWritesTo } from '../helpers/file-faults.js';
import { RawClient } from '../helpers/raw-client.js';

const start = (dataDir: string) => Broker.start({ host: '127.0.0.1', port: 0, dataDir, sysIntervalSec: 0 });

test('resends an owed PUBREL after a restart, not the message [MQTT-4.3.3]', async (t) => {
  const dataDir = await tempDir(t);
  let broker = await start(dataDir);
  const sub = await RawClient.open(broker.port);
  await sub.handshake('q2-out', { clean: false });
  sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'q2', qos: 2 }] });
  await sub.nextPacket('suback');
  const pub = await connect(t, broker.port);
  await pub.publishAsync('q2', 'once', { qos: 2 });
  const msg = await sub.nextPacket('publish');
  sub.send({ cmd: 'pubrec', messageId: msg.messageId ?? 0 });
  const rel = await sub.nextPacket('pubrel');
  t.is(rel.messageId, msg.messageId);
  // no PUBCOMP: the broker still owes the PUBREL when it stops
  await sleep(50);
  sub.destroy();
  pub.end(true);
  await broker.close();

  broker = await start(dataDir);
  t.teardown(() => broker.close());
  const again = await RawClient.open(broker.port);
  t.teardown(() => again.destroy());
  const connack = await again.handshake('q2-out', { clean: false });
  t.true(connack.sessionPresent);
  const resent = await again.nextPacket('pubrel');
  t.is(resent.messageId, msg.messageId);
  again.send({ cmd: 'pubcomp', messageId: resent.messageId ?? 0 });
  await sleep(300);
  await t.throwsAsync(again.nextPacket('publish', 200), { message: /no publish/ });
});

test('an inbound QoS 2 PUBLISH resent after a restart is not stored twice [MQTT-4.3.3-2]', async (t) => {
  const dataDir = await tempDir(t);
  let broker = await start(dataDir);
  const watcher = await connect(t, broker.port, { clientId: 'q2-watch', clean: false });
  await watcher.subscribeAsync('q2in', { qos: 2 });
  await watcher.endAsync();
  const pub = await RawClient.open(broker.port);
  await pub.handshake('q2-in', { clean: false });
  pub.send({ cmd: 'publish', topic: 'q2in', payload: Buffer.from('exactly-once'), qos: 2, messageId: 5, retain: false, dup: false });
  const rec = await pub.nextPacket('pubrec');
  t.is(rec.messageId, 5);
  await sleep(50);
  pub.destroy();
  await broker.close();

  broker = await start(dataDir);
  t.teardown(() => broker.close());
  const again = await RawClient.open(broker.port);
  t.teardown(() => again.destroy());
  await again.handshake('q2-in', { clean: false });
  again.send({ cmd: 'publish', topic: 'q2in', payload: Buffer.from('exactly-once'), qos: 2, messageId: 5, retain: false, dup: true });
  t.is((await again.nextPacket('pubrec')).messageId, 5);
  again.send({ cmd: 'pubrel', messageId: 5 });
  t.is((await again.nextPacket('pubcomp')).messageId, 5);

  const back = await connect(t, broker.port, { clientId: 'q2-watch', clean: false });
  const inbox = collect(back);
  await inbox.waitFor(1);
  await sleep(300);
  t.deepEqual(
    inbox.messages.map((m) => m.payload),
    ['exactly-once'],
  );
});

test('a restart resends exactly the unacknowledged messages, with their packet ids, and nothing completed or QoS 0 [MQTT-4.4.0-1]', async (t) => {
  const dataDir = await tempDir(t);
  let broker = await start(dataDir);
  const sub = await RawClient.open(broker.port);
  await sub.handshake('exact', { clean: false });
  sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'ex', qos: 2 }] });
  await sub.nextPacket('suback');
  const pub = await connect(t, broker.port);
  for (const m of ['m0', 'm1', 'm2']) await pub.publishAsync('ex', m, { qos: 2 });
  await pub.publishAsync('ex', 'q0', { qos: 0 });
  const got = [];
  for (let i = 0; i < 4; i++) got.push(await sub.nextPacket('publish'));
  // complete m1 and m2; leave m0 unanswered
  for (const p of got.slice(1, 3)) {
    sub.send({ cmd: 'pubrec', messageId: p.messageId ?? 0 });
    await sub.nextPacket('pubrel');
    sub.send({ cmd: 'pubcomp', messageId: p.messageId ?? 0 });
  }
  await sleep(100);
  sub.destroy();
  pub.end(true);
  await broker.close();

  broker = await start(dataDir);
  t.teardown(() => broker.close());
  const again = await RawClient.open(broker.port);
  t.teardown(() => again.destroy());
  await again.handshake('exact', { clean: false });
  const resent = await again.nextPacket('publish');
  t.is(Buffer.from(resent.payload as Buffer).toString(), 'm0');
  t.is(resent.messageId, got[0]?.messageId, 'the original packet id');
  t.true(resent.dup);
  await t.throwsAsync(again.nextPacket('publish', 500), { message: /no publish/ }, 'm1, m2 (completed) and q0 (QoS 0) are not repeated');
});

test('a persistent session gets PUBREC only once its stored packet id is durable, and PUBCOMP once the release is', async (t) => {
  const sessionsLog = holdWritesTo('sessions');
  const broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir: await tempDir(t), sysIntervalSec: 0 }, undefined, { fileOps: sessionsLog.ops });
  t.teardown(() => broker.close());
  const raw = await RawClient.open(broker.port);
  t.teardown(() => raw.destroy());
  await raw.handshake('durable-q2', { clean: false });
  await sleep(100);
  sessionsLog.hold(true);
  raw.send({ cmd: 'publish', topic: 'dq2', payload: Buffer.from('x'), qos: 2, messageId: 4, retain: false, dup: false });
  await t.throwsAsync(raw.nextPacket('pubrec', 300), { message: /no pubrec/ }, 'no PUBREC while the packet id cannot be recorded');
  sessionsLog.release();
  t.is((await raw.nextPacket('pubrec')).messageId, 4);
  sessionsLog.hold(true);
  raw.send({ cmd: 'pubrel', messageId: 4 });
  await t.throwsAsync(raw.nextPacket('pubcomp', 300), { message: /no pubcomp/ }, 'no PUBCOMP while the release cannot be recorded');
  sessionsLog.release();
  t.is((await raw.nextPacket('pubcomp')).messageId, 4);
});
