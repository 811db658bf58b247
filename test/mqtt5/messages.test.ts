/**
 * MQTT 5.0 messages: properties passed through unchanged, message expiry as a read-time filter,
 * topic aliases both ways, receive maximum and maximum packet size towards the client,
 * subscription identifiers and options (No Local, Retain As Published, Retain Handling).
 */
import test from 'ava';
import { collect, connect5, sleep, startBroker } from '../helpers/broker.js';
import { RawClient } from '../helpers/raw-client.js';

test('passes user properties, content type, response topic, correlation data and payload format through unchanged', async (t) => {
  const broker = await startBroker(t);
  const sub = await connect5(t, broker.port);
  const inbox = collect(sub);
  await sub.subscribeAsync('req/+', { qos: 1 });
  const pub = await connect5(t, broker.port);
  const properties = {
    userProperties: { trace: 'abc', tags: ['x', 'y'] },
    contentType: 'application/json',
    responseTopic: 'resp/1',
    correlationData: Buffer.from('corr-42'),
    payloadFormatIndicator: true,
  };
  await pub.publishAsync('req/a', '{"v":1}', { qos: 1, properties });
  const [m] = await inbox.waitFor(1);
  t.deepEqual(m?.properties?.userProperties, properties.userProperties);
  t.is(m?.properties?.contentType, 'application/json');
  t.is(m?.properties?.responseTopic, 'resp/1');
  t.deepEqual(m?.properties?.correlationData, Buffer.from('corr-42'));
  t.is(m?.properties?.payloadFormatIndicator, true);
});

test('does not deliver an expired message and forwards the remaining interval [MQTT-3.3.2-5] [MQTT-3.3.2-6]', async (t) => {
  const broker = await startBroker(t);
  const sub = await connect5(t, broker.port, { clientId: 'exp-sub', clean: false, properties: { sessionExpiryInterval: 300 } });
  await sub.subscribeAsync('exp', { qos: 1 });
  await sub.endAsync();
  const pub = await connect5(t, broker.port);
  await pub.publishAsync('exp', 'short', { qos: 1, properties: { messageExpiryInterval: 1 } });
  await pub.publishAsync('exp', 'long', { qos: 1, properties: { messageExpiryInterval: 100 } });
  await sleep(2100);
  const back = await connect5(t, broker.port, { clientId: 'exp-sub', clean: false, properties: { sessionExpiryInterval: 300 } });
  const inbox = collect(back);
  const [m] = await inbox.waitFor(1);
  await sleep(200);
  t.deepEqual(
    inbox.messages.map((x) => x.payload),
    ['long'],
  );
  const left = m?.properties?.messageExpiryInterval ?? 0;
  t.true(left <= 98 && left >= 90, `remaining interval ${left}`);
});

test('an expired retained message is not sent to new subscribers', async (t) => {
  const broker = await startBroker(t);
  const pub = await connect5(t, broker.port);
  await pub.publishAsync('ret/exp', 'stale', { qos: 1, retain: true, properties: { messageExpiryInterval: 1 } });
  await sleep(2100);
  const sub = await connect5(t, broker.port);
  const inbox = collect(sub);
  await sub.subscribeAsync('ret/#', { qos: 1 });
  await sleep(300);
  t.is(inbox.messages.length, 0);
});

test('resolves inbound topic aliases and assigns outbound ones within the client maximum', async (t) => {
  const broker = await startBroker(t);
  const sub = await connect5(t, broker.port, { properties: { topicAliasMaximum: 2 } });
  const inbox = collect(sub);
  await sub.subscribeAsync('alias/#', { qos: 0 });
  const raw = await RawClient.open(broker.port, 5);
  t.teardown(() => raw.destroy());
  await raw.handshake('aliaser', { protocolVersion: 5 });
  raw.send({ cmd: 'publish', topic: 'alias/one', payload: Buffer.from('1'), qos: 0, retain: false, dup: false, properties: { topicAlias: 5 } });
  raw.send({ cmd: 'publish', topic: '', payload: Buffer.from('2'), qos: 0, retain: false, dup: false, properties: { topicAlias: 5 } });
  raw.send({ cmd: 'publish', topic: 'alias/two', payload: Buffer.from('3'), qos: 0, retain: false, dup: false });
  raw.send({ cmd: 'publish', topic: 'alias/three', payload: Buffer.from('4'), qos: 0, retain: false, dup: false });
  const got = await inbox.waitFor(4);
  // mqtt.js resolves aliases itself: every message arrives with its full topic. Order is
  // per topic (each topic is its own log), so compare as sets.
  t.deepEqual(got.map((m) => `${m.topic}=${m.payload}`).sort(), ['alias/one=1', 'alias/one=2', 'alias/three=4', 'alias/two=3']);
  // the client allows two aliases: two topics get one each (stable per topic), the third none
  const aliasOf = new Map<string, Set<number | undefined>>();
  for (const m of got) {
    const set = aliasOf.get(m.topic) ?? new Set();
    set.add(m.properties?.topicAlias);
    aliasOf.set(m.topic, set);
  }
  t.is(aliasOf.get('alias/one')?.size, 1, 'one alias per topic');
  const used = [...aliasOf.values()].map((set) => [...set][0]);
  t.deepEqual(used.filter((a) => a !== undefined).sort(), [1, 2]);
  t.is(used.filter((a) => a === undefined).length, 1);
});

test('sends an aliased topic with an empty name the second time', async (t) => {
  const broker = await startBroker(t);
  const raw = await RawClient.open(broker.port, 5);
  t.teardown(() => raw.destroy());
  await raw.handshake('alias-raw', { protocolVersion: 5, properties: { topicAliasMaximum: 4 } });
  raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'ta', qos: 0 }] });
  await raw.nextPacket('suback');
  const pub = await connect5(t, broker.port);
  pub.publish('ta', 'a');
  pub.publish('ta', 'b');
  const first = await raw.nextPacket('publish');
  const second = await raw.nextPacket('publish');
  t.is(first.topic, 'ta');
  t.is(first.properties?.topicAlias, 1);
  t.is(second.topic, '');
  t.is(second.properties?.topicAlias, 1);
});

test('never has more unacknowledged messages out than the client Receive Maximum [MQTT-3.3.4-7]', async (t) => {
  const broker = await startBroker(t);
  const raw = await RawClient.open(broker.port, 5);
  t.teardown(() => raw.destroy());
  await raw.handshake('rm', { protocolVersion: 5, properties: { receiveMaximum: 2 } });
  raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'rm', qos: 1 }] });
  await raw.nextPacket('suback');
  const pub = await connect5(t, broker.port);
  for (let i = 0; i < 5; i++) await pub.publishAsync('rm', `m${i}`, { qos: 1 });
  const a = await raw.nextPacket('publish');
  const b = await raw.nextPacket('publish');
  await t.throwsAsync(raw.nextPacket('publish', 300), { message: /no publish/ });
  raw.send({ cmd: 'puback', messageId: a.messageId ?? 0 });
  const c = await raw.nextPacket('publish');
  t.is(Buffer.from(c.payload as Buffer).toString(), 'm2');
  t.not(b.messageId, a.messageId);
});

test('drops a message larger than the client Maximum Packet Size instead of truncating it [MQTT-3.1.2-25]', async (t) => {
  const broker = await startBroker(t);
  const sub = await connect5(t, broker.port, { properties: { maximumPacketSize: 200 } });
  const inbox = collect(sub);
  await sub.subscribeAsync('mps', { qos: 1 });
  const pub = await connect5(t, broker.port);
  await pub.publishAsync('mps', 'x'.repeat(500), { qos: 1 });
  await pub.publishAsync('mps', 'small', { qos: 1 });
  const [m] = await inbox.waitFor(1);
  await sleep(200);
  t.is(m?.payload, 'small');
  t.is(inbox.messages.length, 1);
});

test('includes the identifiers of every matching subscription [MQTT-3.3.4-3]', async (t) => {
  const broker = await startBroker(t);
  const sub = await connect5(t, broker.port);
  const inbox = collect(sub);
  await sub.subscribeAsync('ids/+', { qos: 1, properties: { subscriptionIdentifier: 7 } });
  await sub.subscribeAsync('ids/#', { qos: 0, properties: { subscriptionIdentifier: 300 } });
  await sub.subscribeAsync('ids/x', { qos: 0 });
  const pub = await connect5(t, broker.port);
  await pub.publishAsync('ids/x', 'hello', { qos: 1 });
  const [m] = await inbox.waitFor(1);
  t.deepEqual(m?.properties?.subscriptionIdentifier, [7, 300]);
  t.is(m?.qos, 1);
});

test('No Local keeps a client its own messages [MQTT-3.8.3-3]', async (t) => {
  const broker = await startBroker(t);
  const a = await connect5(t, broker.port, { clientId: 'nl-a' });
  const b = await connect5(t, broker.port, { clientId: 'nl-b' });
  const inA = collect(a);
  const inB = collect(b);
  await a.subscribeAsync('chat', { qos: 1, nl: true });
  await b.subscribeAsync('chat', { qos: 1, nl: true });
  await a.publishAsync('chat', 'from-a', { qos: 1 });
  await b.publishAsync('chat', 'from-b', { qos: 1 });
  await inA.waitFor(1);
  await inB.waitFor(1);
  await sleep(150);
  t.deepEqual(
    inA.messages.map((m) => m.payload),
    ['from-b'],
  );
  t.deepEqual(
    inB.messages.map((m) => m.payload),
    ['from-a'],
  );
});

test('Retain As Published keeps the RETAIN flag on live messages [MQTT-3.3.1-12]', async (t) => {
  const broker = await startBroker(t);
  const keep = await connect5(t, broker.port);
  const clear = await connect5(t, broker.port);
  const inKeep = collect(keep);
  const inClear = collect(clear);
  await keep.subscribeAsync('rap', { qos: 0, rap: true });
  await clear.subscribeAsync('rap', { qos: 0 });
  const pub = await connect5(t, broker.port);
  await pub.publishAsync('rap', 'r', { qos: 1, retain: true });
  const [k] = await inKeep.waitFor(1);
  const [c] = await inClear.waitFor(1);
  t.true(k?.retain);
  t.false(c?.retain);
});

test('Retain Handling 1 sends retained messages only for a new subscription, 2 never [MQTT-3.3.1-10] [MQTT-3.3.1-11]', async (t) => {
  const broker = await startBroker(t);
  const pub = await connect5(t, broker.port);
  await pub.publishAsync('rh/a', 'kept', { qos: 1, retain: true });
  const one = await connect5(t, broker.port);
  const inOne = collect(one);
  await one.subscribeAsync('rh/#', { qos: 0, rh: 1 });
  await inOne.waitFor(1);
  await one.subscribeAsync('rh/#', { qos: 0, rh: 1 }); // again: not new, nothing sent
  const never = await connect5(t, broker.port);
  const inNever = collect(never);
  await never.subscribeAsync('rh/#', { qos: 0, rh: 2 });
  await sleep(250);
  t.is(inOne.messages.length, 1);
  t.is(inNever.messages.length, 0);
});

test('UNSUBACK says which filters had no subscription (0x11); SUBACK refuses invalid filters (0x8F)', async (t) => {
  const broker = await startBroker(t);
  const raw = await RawClient.open(broker.port, 5);
  t.teardown(() => raw.destroy());
  await raw.handshake('codes', { protocolVersion: 5 });
  raw.send({
    cmd: 'subscribe',
    messageId: 1,
    subscriptions: [
      { topic: 'ok', qos: 2 },
      { topic: 'bad/#/x', qos: 0 },
      { topic: '$share/g/t', qos: 1 },
      { topic: '$share//t', qos: 1 },
      { topic: '$share/g+/t', qos: 1 },
    ],
  });
  const suback = await raw.nextPacket('suback');
  t.deepEqual(suback.granted, [2, 0x8f, 1, 0x8f, 0x8f]);
  raw.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['ok', 'never'] });
  const unsuback = await raw.nextPacket('unsuback');
  t.deepEqual(unsuback.granted, [0x00, 0x11]);
});

test('answers a PUBLISH whose payload is not the UTF-8 it declares with PUBACK 0x99', async (t) => {
  const broker = await startBroker(t);
  const raw = await RawClient.open(broker.port, 5);
  t.teardown(() => raw.destroy());
  await raw.handshake('pfi', { protocolVersion: 5 });
  raw.send({ cmd: 'publish', topic: 'pfi', payload: Buffer.from([0xff, 0xfe]), qos: 1, messageId: 3, retain: false, dup: false, properties: { payloadFormatIndicator: true } });
  const ack = await raw.nextPacket('puback');
  t.is(ack.reasonCode, 0x99);
  t.false(raw.isClosed);
});

test('Request Problem Information 0 leaves reason strings out of acks; 1 keeps them [MQTT-3.1.2-29]', async (t) => {
  const broker = await startBroker(t);
  const reasons: Array<string | undefined> = [];
  for (const requestProblemInformation of [false, true]) {
    const raw = await RawClient.open(broker.port, 5);
    t.teardown(() => raw.destroy());
    await raw.handshake(`rpi-${requestProblemInformation}`, { protocolVersion: 5, properties: { requestProblemInformation } });
    raw.send({ cmd: 'publish', topic: 'rpi', payload: Buffer.from([0xff]), qos: 1, messageId: 1, retain: false, dup: false, properties: { payloadFormatIndicator: true } });
    const ack = await raw.nextPacket('puback');
    t.is(ack.reasonCode, 0x99);
    reasons.push(ack.properties?.reasonString);
  }
  t.is(reasons[0], undefined);
  t.regex(reasons[1] ?? '', /UTF-8/);
});

test('a dropped oversized message never frees or reuses a topic alias the client holds', async (t) => {
  const broker = await startBroker(t);
  const raw = await RawClient.open(broker.port, 5);
  t.teardown(() => raw.destroy());
  await raw.handshake('alias-keep', { protocolVersion: 5, properties: { topicAliasMaximum: 2, maximumPacketSize: 100 } });
  raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'al/#', qos: 0 }] });
  await raw.nextPacket('suback');
  const pub = await connect5(t, broker.port);
  const aliases = new Map<number, string>();
  const resolve = (p: { topic: string; properties?: { topicAlias?: number } }): string => {
    const alias = p.properties?.topicAlias;
    if (alias !== undefined && p.topic !== '') aliases.set(alias, p.topic);
    return p.topic !== '' ? p.topic : (aliases.get(alias ?? -1) ?? '?');
  };
  const seen: string[] = [];
  for (const [topic, payload] of [
    ['al/a', 'a-1'],
    ['al/b', 'b-1'],
    ['al/a', 'x'.repeat(200)], // dropped: larger than the client accepts
    ['al/c', 'c-1'],
    ['al/b', 'b-2'],
  ] as const) {
    await pub.publishAsync(topic, payload, { qos: 0 });
    if (payload.length < 100) {
      const p = await raw.nextPacket('publish');
      seen.push(`${resolve(p)}=${Buffer.from(p.payload as Buffer).toString()}`);
    }
  }
  t.deepEqual(seen, ['al/a=a-1', 'al/b=b-1', 'al/c=c-1', 'al/b=b-2']);
});

test('retained messages sent on SUBSCRIBE respect the client Receive Maximum too [MQTT-3.3.4-7]', async (t) => {
  const broker = await startBroker(t);
  const pub = await connect5(t, broker.port);
  for (const i of [1, 2, 3]) await pub.publishAsync(`rr/${i}`, `r${i}`, { qos: 1, retain: true });
  const raw = await RawClient.open(broker.port, 5);
  t.teardown(() => raw.destroy());
  await raw.handshake('rr', { protocolVersion: 5, properties: { receiveMaximum: 1 } });
  raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'rr/#', qos: 1 }] });
  await raw.nextPacket('suback');
  const got: string[] = [];
  for (let i = 0; i < 3; i++) {
    const p = await raw.nextPacket('publish');
    got.push(Buffer.from(p.payload as Buffer).toString());
    await t.throwsAsync(raw.nextPacket('publish', 200), { message: /no publish/ }, 'one unacknowledged at a time');
    raw.send({ cmd: 'puback', messageId: p.messageId ?? 0 });
  }
  t.deepEqual(got.sort(), ['r1', 'r2', 'r3']);
});
