/**
 * MQTT 5 PUBLISH properties on raw bytes: the scanner takes out Topic Alias and Message Expiry,
 * keeps the rest byte for byte, refuses what the spec refuses; the encoder's output parses back
 * (through mqtt-packet, an independent implementation) to the same properties.
 */
import test from 'ava';
import mqtt, { type IPublishPacket } from 'mqtt-packet';
import { PacketFramer } from '../../src/protocol/framer.js';
import { encodePublishHeaderV5, newPublishProperties, scanPublishProperties } from '../../src/protocol/properties.js';
import { REASON } from '../../src/protocol/reason-codes.js';

/** Generates a 5.0 PUBLISH and returns it with the offset of its property block. */
function publishV5(properties: IPublishPacket['properties'], qos: 0 | 1 = 1): { packet: Buffer; at: number } {
  const publish: IPublishPacket = { cmd: 'publish', topic: 'a/b', payload: Buffer.from('body'), qos, messageId: 7, retain: false, dup: false };
  if (properties !== undefined) publish.properties = properties;
  const packet = mqtt.generate(publish, { protocolVersion: 5 });
  let at = 0;
  new PacketFramer(1 << 20).push(packet, (_p, headerBytes) => (at = headerBytes));
  at += 2 + 3 + (qos > 0 ? 2 : 0); // topic length, 'a/b', packet id
  return { packet, at };
}

function parseV5(bytes: Buffer): Promise<IPublishPacket> {
  const parser = mqtt.parser({ protocolVersion: 5 });
  return new Promise((resolve, reject) => {
    parser.on('packet', (p) => resolve(p as IPublishPacket));
    parser.on('error', reject);
    parser.parse(bytes);
  });
}

test('takes out topic alias and message expiry and keeps the rest as raw bytes', async (t) => {
  const props = {
    topicAlias: 3,
    messageExpiryInterval: 60,
    contentType: 'text/plain',
    responseTopic: 'reply/here',
    correlationData: Buffer.from([1, 2, 3]),
    userProperties: { a: '1', b: ['x', 'y'] },
    payloadFormatIndicator: true,
  };
  const { packet, at } = publishV5(props);
  const out = scanPublishProperties(packet, at, newPublishProperties());
  t.is(out.reason, 0);
  t.is(out.topicAlias, 3);
  t.is(out.messageExpiry, 60);
  t.true(out.payloadUtf8);
  t.is(packet.subarray(out.end).toString(), 'body');
  // forward the kept bytes in a new PUBLISH and read them back
  const header = encodePublishHeaderV5(Buffer.from('a/b'), 1, false, false, 9, 4, 0, 30, [5, 300], out.forward);
  const back = await parseV5(Buffer.concat([header, Buffer.from('body')]));
  t.is(back.properties?.contentType, 'text/plain');
  t.is(back.properties?.responseTopic, 'reply/here');
  t.deepEqual(back.properties?.correlationData, Buffer.from([1, 2, 3]));
  t.deepEqual(back.properties?.userProperties, { a: '1', b: ['x', 'y'] });
  t.is(back.properties?.payloadFormatIndicator, true);
  t.is(back.properties?.messageExpiryInterval, 30);
  t.deepEqual(back.properties?.subscriptionIdentifier, [5, 300]);
  t.is(back.properties?.topicAlias, undefined);
  t.is(back.messageId, 9);
});

test('an empty property block scans to nothing to forward', (t) => {
  const { packet, at } = publishV5(undefined, 0);
  const out = scanPublishProperties(packet, at, newPublishProperties());
  t.is(out.reason, 0);
  t.is(out.forward, null);
  t.is(out.messageExpiry, -1);
  t.is(packet.subarray(out.end).toString(), 'body');
});

test('an outbound header with a topic alias and no topic name parses back', async (t) => {
  const header = encodePublishHeaderV5(null, 0, true, false, 0, 2, 7, -1, null, null);
  const back = await parseV5(Buffer.concat([header, Buffer.from('hi')]));
  t.is(back.topic, '');
  t.is(back.properties?.topicAlias, 7);
  t.true(back.retain);
});

function rawProps(bytes: number[]): { packet: Buffer; at: number } {
  // PUBLISH QoS 0, topic 'a', properties as given, payload 'x'
  const body = [0, 1, 0x61, bytes.length, ...bytes, 0x78];
  return { packet: Buffer.from([0x30, body.length, ...body]), at: 5 };
}

for (const [title, bytes, reason] of [
  ['a subscription identifier [MQTT-3.3.4-6]', [0x0b, 0x01], REASON.PROTOCOL_ERROR],
  ['a repeated property', [0x01, 0x00, 0x01, 0x01], REASON.PROTOCOL_ERROR],
  ['a property not allowed on PUBLISH', [0x11, 0, 0, 0, 1], REASON.PROTOCOL_ERROR],
  ['topic alias 0 [MQTT-3.3.2-8]', [0x23, 0, 0], REASON.TOPIC_ALIAS_INVALID],
  ['a response topic with a wildcard [MQTT-3.3.2-14]', [0x08, 0, 1, 0x23], REASON.PROTOCOL_ERROR],
  ['a truncated property', [0x02, 0, 0], REASON.MALFORMED_PACKET],
] as const) {
  test(`refuses ${title}`, (t) => {
    const { packet, at } = rawProps([...bytes]);
    t.is(scanPublishProperties(packet, at, newPublishProperties()).reason, reason);
  });
}
