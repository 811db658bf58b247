/**
 * Sessions: client id rules, takeover, persistent sessions resuming from the log (within a run and
 * across a restart), DUP redelivery of unacknowledged messages, Will messages, keepalive.
 */
import test from 'ava';
import { Broker } from '../../src/server/broker.js';
import { collect, connect, sleep, startBroker, tempDir } from '../helpers/broker.js';
import { RawClient } from '../helpers/raw-client.js';

test('assigns a client id to an empty one with clean session [MQTT-3.1.3-6]', async (t) => {
  const broker = await startBroker(t);
  const raw = await RawClient.open(broker.port);
  t.teardown(() => raw.destroy());
  const connack = await raw.handshake('');
  t.is(connack.returnCode, 0);
  t.is(broker.clientCount, 1);
});

test('refuses an empty client id without clean session with return code 2 [MQTT-3.1.3-8]', async (t) => {
  const broker = await startBroker(t);
  const raw = await RawClient.open(broker.port);
  t.teardown(() => raw.destroy());
  // CONNECT, 3.1.1, clean session 0, keepalive 0, empty client id (mqtt-packet will not generate it)
  raw.sendRaw([0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x00, 0, 0, 0, 0]);
  const connack = await raw.nextPacket('connack');
  t.is(connack.returnCode, 2);
  t.true(await raw.closedWithin(2000));
});

test('a second connection with the same client id takes over and closes the first [MQTT-3.1.4-2]', async (t) => {
  const broker = await startBroker(t);
  const first = await RawClient.open(broker.port);
  t.teardown(() => first.destroy());
  await first.handshake('same-id');
  const second = await RawClient.open(broker.port);
  t.teardown(() => second.destroy());
  const connack = await second.handshake('same-id');
  t.is(connack.returnCode, 0);
  t.true(await first.closedWithin(2000));
  t.false(second.isClosed);
  t.is(broker.clientCount, 1);
});

test('a persistent session receives what was published while it was offline, from the log', async (t) => {
  const broker = await startBroker(t);
  const sub = await connect(t, broker.port, { clientId: 'offline-sub', clean: false });
  await sub.subscribeAsync('dev/+/state', { qos: 1 });
  await sub.endAsync();
  const pub = await connect(t, broker.port);
  for (let i = 0; i < 10; i++) await pub.publishAsync(`dev/${i % 2}/state`, `s${i}`, { qos: 1 });
  const back = await connect(t, broker.port, { clientId: 'offline-sub', clean: false });
  const inbox = collect(back);
  const got = await inbox.waitFor(10);
  t.deepEqual(got.map((m) => m.payload).sort(), Array.from({ length: 10 }, (_, i) => `s${i}`).sort());
  t.true(got.every((m) => m.qos === 1));
});

test('sets Session Present only when a stored session is resumed [MQTT-3.2.2-2]', async (t) => {
  const broker = await startBroker(t);
  const a = await RawClient.open(broker.port);
  t.is((await a.handshake('sp', { clean: false })).sessionPresent, false);
  a.destroy();
  await sleep(50);
  const b = await RawClient.open(broker.port);
  t.teardown(() => b.destroy());
  t.is((await b.handshake('sp', { clean: false })).sessionPresent, true);
  const c = await RawClient.open(broker.port);
  t.teardown(() => c.destroy());
  t.is((await c.handshake('sp', { clean: true })).sessionPresent, false);
});

test('resends unacknowledged QoS 1 messages with DUP on reconnect, in order [MQTT-4.4.0-1]', async (t) => {
  const broker = await startBroker(t);
  const raw = await RawClient.open(broker.port);
  await raw.handshake('dup-test', { clean: false });
  raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'd', qos: 1 }] });
  await raw.nextPacket('suback');
  const pub = await connect(t, broker.port);
  await pub.publishAsync('d', 'one', { qos: 1 });
  await pub.publishAsync('d', 'two', { qos: 1 });
  const first = await raw.nextPacket('publish');
  const second = await raw.nextPacket('publish');
  t.false(first.dup);
  raw.send({ cmd: 'puback', messageId: first.messageId ?? 0 }); // ack only the first
  await sleep(50);
  raw.destroy();
  await sleep(50);
  const again = await RawClient.open(broker.port);
  t.teardown(() => again.destroy());
  const connack = await again.handshake('dup-test', { clean: false });
  t.true(connack.sessionPresent);
  const resent = await again.nextPacket('publish');
  t.true(resent.dup);
  t.is(resent.messageId, second.messageId);
  t.is(Buffer.from(resent.payload as Buffer).toString(), 'two');
});

test('a persistent session and a retained message survive a broker restart', async (t) => {
  const dataDir = await tempDir(t);
  let broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir, sysIntervalSec: 0 });
  const sub = await connect(t, broker.port, { clientId: 'restart-sub', clean: false });
  await sub.subscribeAsync('r/#', { qos: 1 });
  await sub.endAsync();
  const pub = await connect(t, broker.port);
  await pub.publishAsync('r/kept', 'offline-1', { qos: 1 });
  await pub.publishAsync('r/retained', 'sticky', { qos: 1, retain: true });
  await pub.endAsync();
  await broker.close();

  broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir, sysIntervalSec: 0 });
  t.teardown(() => broker.close());
  const back = await connect(t, broker.port, { clientId: 'restart-sub', clean: false });
  const inbox = collect(back);
  const got = await inbox.waitFor(2);
  t.deepEqual(got.map((m) => m.payload).sort(), ['offline-1', 'sticky']);
  const fresh = await connect(t, broker.port);
  const freshInbox = collect(fresh);
  await fresh.subscribeAsync('r/retained', { qos: 0 });
  const [retained] = await freshInbox.waitFor(1);
  t.is(retained?.payload, 'sticky');
  t.true(retained?.retain);
});

test('publishes the Will on an abnormal disconnect, not after DISCONNECT [MQTT-3.1.2-8] [MQTT-3.14.4-3]', async (t) => {
  const broker = await startBroker(t);
  const watcher = await connect(t, broker.port);
  const inbox = collect(watcher);
  await watcher.subscribeAsync('will/#', { qos: 1 });
  const polite = await RawClient.open(broker.port);
  await polite.handshake('polite', { will: { topic: 'will/polite', payload: Buffer.from('gone'), qos: 1, retain: false } });
  polite.send({ cmd: 'disconnect' });
  await polite.closedWithin(1000);
  const rude = await RawClient.open(broker.port);
  await rude.handshake('rude', { will: { topic: 'will/rude', payload: Buffer.from('lost'), qos: 1, retain: false } });
  rude.destroy();
  const [m] = await inbox.waitFor(1);
  await sleep(150);
  t.is(inbox.messages.length, 1);
  t.is(m?.topic, 'will/rude');
  t.is(m?.payload, 'lost');
});

test('closes a silent client after 1.5 × keepalive and publishes its Will [MQTT-3.1.2-24]', async (t) => {
  const broker = await startBroker(t);
  const watcher = await connect(t, broker.port);
  const inbox = collect(watcher);
  await watcher.subscribeAsync('ka', { qos: 0 });
  const silent = await RawClient.open(broker.port);
  t.teardown(() => silent.destroy());
  const started = Date.now();
  await silent.handshake('silent', { keepalive: 1, will: { topic: 'ka', payload: Buffer.from('timeout'), qos: 0, retain: false } });
  t.true(await silent.closedWithin(3000));
  const elapsed = Date.now() - started;
  t.true(elapsed >= 1400, `closed after ${elapsed} ms`);
  const [m] = await inbox.waitFor(1);
  t.is(m?.payload, 'timeout');
});

test('a client that pings stays connected past its keepalive', async (t) => {
  const broker = await startBroker(t);
  const raw = await RawClient.open(broker.port);
  t.teardown(() => raw.destroy());
  await raw.handshake('pinger', { keepalive: 1 });
  for (let i = 0; i < 4; i++) {
    await sleep(500);
    raw.send({ cmd: 'pingreq' });
    await raw.nextPacket('pingresp');
  }
  t.false(raw.isClosed);
});
