/**
 * MQTT 5.0 sessions: Session Expiry Interval (also across a restart), Clean Start, DISCONNECT
 * changing the expiry, Will Delay Interval and its cancellation by a reconnect.
 */
import test from 'ava';
import { Broker } from '../../src/server/broker.js';
import { collect, connect5, sleep, startBroker, tempDir } from '../helpers/broker.js';
import { RawClient } from '../helpers/raw-client.js';

async function sessionPresent(port: number, clientId: string, expiry: number, clean = false): Promise<boolean> {
  const raw = await RawClient.open(port, 5);
  const ack = await raw.handshake(clientId, { protocolVersion: 5, clean, properties: { sessionExpiryInterval: expiry } });
  raw.send({ cmd: 'disconnect', reasonCode: 0 });
  await raw.closedWithin(1000);
  return ack.sessionPresent;
}

test('a session with expiry 0 ends with its connection; with expiry > 0 it outlives it until it expires', async (t) => {
  const broker = await startBroker(t);
  t.false(await sessionPresent(broker.port, 'zero', 0));
  t.false(await sessionPresent(broker.port, 'zero', 0));
  t.false(await sessionPresent(broker.port, 'short', 1));
  t.true(await sessionPresent(broker.port, 'short', 1), 'resumed within the interval');
  await sleep(1600);
  t.false(await sessionPresent(broker.port, 'short', 1), 'expired after the interval [MQTT-3.1.2-23]');
});

test('Clean Start discards a stored session [MQTT-3.1.2-4]', async (t) => {
  const broker = await startBroker(t);
  t.false(await sessionPresent(broker.port, 'cs', 60));
  t.false(await sessionPresent(broker.port, 'cs', 60, true));
});

test('a DISCONNECT may shorten the session expiry to 0, ending the session', async (t) => {
  const broker = await startBroker(t);
  const raw = await RawClient.open(broker.port, 5);
  await raw.handshake('shorten', { protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 60 } });
  raw.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
  await raw.closedWithin(1000);
  t.false(await sessionPresent(broker.port, 'shorten', 60));
});

test('a DISCONNECT may not give an expiry to a session that had none [MQTT-3.14.2-2]', async (t) => {
  const broker = await startBroker(t);
  const raw = await RawClient.open(broker.port, 5);
  t.teardown(() => raw.destroy());
  await raw.handshake('grow', { protocolVersion: 5, properties: { sessionExpiryInterval: 0 } });
  raw.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 30 } });
  const d = await raw.nextPacket('disconnect');
  t.is(d.reasonCode, 0x82);
});

test('session expiry is kept across a restart, and messages wait in the log meanwhile', async (t) => {
  const dataDir = await tempDir(t);
  let broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir, sysIntervalSec: 0 });
  const sub = await connect5(t, broker.port, { clientId: 'keep', clean: false, properties: { sessionExpiryInterval: 120 } });
  await sub.subscribeAsync('k/#', { qos: 1 });
  await sub.endAsync();
  const gone = await connect5(t, broker.port, { clientId: 'gone', clean: false, properties: { sessionExpiryInterval: 1 } });
  await gone.subscribeAsync('k/#', { qos: 1 });
  await gone.endAsync();
  const pub = await connect5(t, broker.port);
  await pub.publishAsync('k/1', 'waiting', { qos: 1 });
  await pub.endAsync();
  await broker.close();
  await sleep(1300);
  broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir, sysIntervalSec: 0 });
  t.teardown(() => broker.close());
  t.false(await sessionPresent(broker.port, 'gone', 1), 'expired while the broker was down');
  const back = await connect5(t, broker.port, { clientId: 'keep', clean: false, properties: { sessionExpiryInterval: 120 } });
  const [m] = await collect(back).waitFor(1);
  t.is(m?.payload, 'waiting');
});

test('a Will with a delay is sent after the delay [MQTT-3.1.3-9]', async (t) => {
  const broker = await startBroker(t);
  const watcher = await connect5(t, broker.port);
  const inbox = collect(watcher);
  await watcher.subscribeAsync('wd/#', { qos: 1 });
  const raw = await RawClient.open(broker.port, 5);
  await raw.handshake('delayed', {
    protocolVersion: 5,
    clean: false,
    properties: { sessionExpiryInterval: 60 },
    will: { topic: 'wd/late', payload: Buffer.from('late'), qos: 1, retain: false, properties: { willDelayInterval: 1, userProperties: { why: 'test' } } },
  });
  const dropped = Date.now();
  raw.destroy();
  const [m] = await inbox.waitFor(1, 4000);
  const after = Date.now() - dropped;
  t.true(after >= 900, `sent after ${after} ms`);
  t.is(m?.payload, 'late');
  t.deepEqual(m?.properties?.userProperties, { why: 'test' });
});

test('a reconnect within the Will Delay cancels the Will', async (t) => {
  const broker = await startBroker(t);
  const watcher = await connect5(t, broker.port);
  const inbox = collect(watcher);
  await watcher.subscribeAsync('wc/#', { qos: 1 });
  const will = { topic: 'wc/x', payload: Buffer.from('should-not-appear'), qos: 1 as const, retain: false, properties: { willDelayInterval: 1 } };
  const raw = await RawClient.open(broker.port, 5);
  await raw.handshake('cancel', { protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 60 }, will });
  raw.destroy();
  await sleep(200);
  const again = await RawClient.open(broker.port, 5);
  t.teardown(() => again.destroy());
  const ack = await again.handshake('cancel', { protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 60 } });
  t.true(ack.sessionPresent);
  await sleep(1300);
  t.is(inbox.messages.length, 0);
});

test('the Will goes out when the session ends before its delay', async (t) => {
  const broker = await startBroker(t);
  const watcher = await connect5(t, broker.port);
  const inbox = collect(watcher);
  await watcher.subscribeAsync('we/#', { qos: 1 });
  const raw = await RawClient.open(broker.port, 5);
  await raw.handshake('ends', {
    protocolVersion: 5,
    properties: { sessionExpiryInterval: 0 },
    will: { topic: 'we/x', payload: Buffer.from('now'), qos: 1, retain: false, properties: { willDelayInterval: 30 } },
  });
  raw.destroy();
  const [m] = await inbox.waitFor(1, 2000);
  t.is(m?.payload, 'now');
});

test('DISCONNECT with reason 0x04 publishes the Will', async (t) => {
  const broker = await startBroker(t);
  const watcher = await connect5(t, broker.port);
  const inbox = collect(watcher);
  await watcher.subscribeAsync('w4', { qos: 0 });
  const raw = await RawClient.open(broker.port, 5);
  await raw.handshake('with-will', { protocolVersion: 5, will: { topic: 'w4', payload: Buffer.from('asked'), qos: 0, retain: false } });
  raw.send({ cmd: 'disconnect', reasonCode: 0x04 });
  const [m] = await inbox.waitFor(1);
  t.is(m?.payload, 'asked');
});

test('a client back with a smaller Receive Maximum gets its old messages resent no faster than it allows [MQTT-3.3.4-7]', async (t) => {
  const broker = await startBroker(t);
  const first = await RawClient.open(broker.port, 5);
  await first.handshake('shrink', { protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 60, receiveMaximum: 10 } });
  first.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'shrink', qos: 1 }] });
  await first.nextPacket('suback');
  const pub = await connect5(t, broker.port);
  for (let i = 0; i < 6; i++) await pub.publishAsync('shrink', `m${i}`, { qos: 1 });
  for (let i = 0; i < 6; i++) await first.nextPacket('publish'); // none acknowledged
  first.destroy();
  await sleep(50);
  const again = await RawClient.open(broker.port, 5);
  t.teardown(() => again.destroy());
  await again.handshake('shrink', { protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 60, receiveMaximum: 2 } });
  const got: string[] = [];
  for (let round = 0; round < 3; round++) {
    const a = await again.nextPacket('publish');
    const b = await again.nextPacket('publish');
    t.true(a.dup && b.dup);
    await t.throwsAsync(again.nextPacket('publish', 200), { message: /no publish/ }, 'two outstanding at most');
    got.push(Buffer.from(a.payload as Buffer).toString(), Buffer.from(b.payload as Buffer).toString());
    again.send({ cmd: 'puback', messageId: a.messageId ?? 0 });
    again.send({ cmd: 'puback', messageId: b.messageId ?? 0 });
  }
  t.deepEqual(got, ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'], 'in the original order');
});
