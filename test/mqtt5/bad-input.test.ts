/**
 * Bad input specific to MQTT 5.0: each gets the spec's reason code in a DISCONNECT, and only
 * that client is disconnected.
 */
import test from 'ava';
import { collect, connect5, startBroker } from '../helpers/broker.js';
import { RawClient } from '../helpers/raw-client.js';

/** A v5 PUBLISH QoS 0 to topic 't' with the given raw property bytes and payload 'x'. */
function publishWithProps(props: number[], topic = 't'): Buffer {
  const t = Buffer.from(topic);
  const body = [0, t.length, ...t, props.length, ...props, 0x78];
  return Buffer.from([0x30, body.length, ...body]);
}

for (const [title, bytes, reason] of [
  ['an unknown property', publishWithProps([0x7f, 0]), 0x82],
  ['a property not allowed on PUBLISH', publishWithProps([0x11, 0, 0, 0, 5]), 0x82],
  ['a duplicate property', publishWithProps([0x02, 0, 0, 0, 5, 0x02, 0, 0, 0, 6]), 0x82],
  ['topic alias 0', publishWithProps([0x23, 0, 0]), 0x94],
  ['a topic alias above the maximum', publishWithProps([0x23, 0x04, 0x01]), 0x94],
  ['an empty topic with an alias never set', publishWithProps([0x23, 0, 3], ''), 0x82],
] as const) {
  test(`disconnects with 0x${reason.toString(16)} on ${title}`, async (t) => {
    const broker = await startBroker(t, { topicAliasMaximum: 10 });
    const bystander = await connect5(t, broker.port);
    await bystander.subscribeAsync('ok', { qos: 1 });
    const raw = await RawClient.open(broker.port, 5);
    t.teardown(() => raw.destroy());
    await raw.handshake('bad5', { protocolVersion: 5 });
    raw.sendRaw(bytes);
    const d = await raw.nextPacket('disconnect');
    t.is(d.reasonCode, reason);
    t.true(await raw.closedWithin(2000));
    await bystander.publishAsync('ok', 'still', { qos: 1 });
    t.is((await collect(bystander).waitFor(1))[0]?.payload, 'still');
  });
}

test('disconnects with 0x93 when a client exceeds the Receive Maximum it was given', async (t) => {
  const broker = await startBroker(t, { receiveMaximum: 2, fsync: 1000 });
  const raw = await RawClient.open(broker.port, 5);
  t.teardown(() => raw.destroy());
  await raw.handshake('greedy', { protocolVersion: 5 });
  // five QoS 2 publishes without ever sending PUBREL: the third exceeds the quota
  for (let i = 1; i <= 5; i++) raw.send({ cmd: 'publish', topic: 'rm', payload: Buffer.from('x'), qos: 2, messageId: i, retain: false, dup: false });
  const d = await raw.nextPacket('disconnect');
  t.is(d.reasonCode, 0x93);
});

test('disconnects with 0x95 on a packet larger than the advertised maximum', async (t) => {
  const broker = await startBroker(t, { maxPacketBytes: 512 });
  const raw = await RawClient.open(broker.port, 5);
  t.teardown(() => raw.destroy());
  await raw.handshake('big5', { protocolVersion: 5 });
  raw.send({ cmd: 'publish', topic: 'big', payload: Buffer.alloc(2000), qos: 0, retain: false, dup: false });
  const d = await raw.nextPacket('disconnect');
  t.is(d.reasonCode, 0x95);
});

test('disconnects with 0x82 on a subscription identifier of 0 [MQTT-3.8.2-1]', async (t) => {
  const broker = await startBroker(t);
  const raw = await RawClient.open(broker.port, 5);
  t.teardown(() => raw.destroy());
  await raw.handshake('sub0', { protocolVersion: 5 });
  // SUBSCRIBE id 1, properties: subscription identifier 0, filter 'a' QoS 0
  raw.sendRaw([0x82, 8, 0, 1, 2, 0x0b, 0x00, 0, 1, 0x61, 0]);
  const d = await raw.nextPacket('disconnect');
  t.true(d.reasonCode === 0x82 || d.reasonCode === 0x81, `reason 0x${d.reasonCode?.toString(16)}`);
});

test('a QoS 2 PUBLISH refused for exceeding Receive Maximum can be resent after reconnecting', async (t) => {
  const broker = await startBroker(t, { receiveMaximum: 1 });
  const watcher = await connect5(t, broker.port);
  await watcher.subscribeAsync('rm2', { qos: 2 });
  const first = await RawClient.open(broker.port, 5);
  await first.handshake('rm2-pub', { protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 60 } });
  first.send({ cmd: 'publish', topic: 'rm2', payload: Buffer.from('one'), qos: 2, messageId: 1, retain: false, dup: false });
  await first.nextPacket('pubrec');
  first.send({ cmd: 'publish', topic: 'rm2', payload: Buffer.from('two'), qos: 2, messageId: 2, retain: false, dup: false });
  t.is((await first.nextPacket('disconnect')).reasonCode, 0x93);
  first.destroy();
  const again = await RawClient.open(broker.port, 5);
  t.teardown(() => again.destroy());
  await again.handshake('rm2-pub', { protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 60 } });
  again.send({ cmd: 'pubrel', messageId: 1 });
  await again.nextPacket('pubcomp');
  again.send({ cmd: 'publish', topic: 'rm2', payload: Buffer.from('two'), qos: 2, messageId: 2, retain: false, dup: true });
  t.is((await again.nextPacket('pubrec')).messageId, 2);
  t.deepEqual(
    (await collect(watcher).waitFor(2)).map((m) => m.payload),
    ['one', 'two'],
  );
});
