/**
 * The PUBLISH framing scanner against mqtt-packet's generator: every packet comes out whole
 * and decoded the same way however the byte stream is cut into chunks, for 3.1.1 and 5.0.
 */
import test from 'ava';
import mqtt from 'mqtt-packet';
import { buildAck, buildPublish, decodePublish, FrameReader } from '../../benches/load/framing.js';

function packets(version: 4 | 5): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < 60; i++) {
    const qos = (i % 3) as 0 | 1 | 2;
    const p: mqtt.IPublishPacket = { cmd: 'publish', topic: `t/${i}/é`, payload: Buffer.alloc(i * 37, i), qos, dup: i % 4 === 0, retain: i % 5 === 0 };
    if (qos > 0) p.messageId = 1000 + i;
    if (version === 5 && i % 2 === 0) p.properties = { userProperties: { k: 'v' }, contentType: 'x/y' };
    out.push(mqtt.generate(p, { protocolVersion: version }));
    if (i % 7 === 0) out.push(mqtt.generate({ cmd: 'puback', messageId: i + 1 }, { protocolVersion: version }));
  }
  out.push(mqtt.generate({ cmd: 'publish', topic: 'big', payload: Buffer.alloc(20_000, 7), qos: 1, messageId: 9, dup: false, retain: false }, { protocolVersion: version }));
  return out;
}

for (const version of [4, 5] as const) {
  test(`frames and decodes PUBLISH like mqtt-packet however the stream is chunked (MQTT ${version === 5 ? '5.0' : '3.1.1'})`, (t) => {
    const list = packets(version);
    const stream = Buffer.concat(list);
    for (const chunkSize of [1, 2, 3, 7, 64, 1500, stream.length]) {
      const seen: { type: number; payload?: Buffer; qos?: number; id?: number; topic?: string }[] = [];
      const reader = new FrameReader((buf, start, end) => {
        const type = (buf[start] ?? 0) >> 4;
        if (type === 3) {
          const v = decodePublish(buf, start, end, version === 5);
          if (v === null) throw new Error('decode failed');
          seen.push({ type, payload: Buffer.from(v.payload), qos: v.qos, id: v.messageId, topic: buf.subarray(v.topicStart, v.topicEnd).toString() });
        } else seen.push({ type });
      });
      for (let at = 0; at < stream.length; at += chunkSize) reader.push(stream.subarray(at, at + chunkSize));
      t.is(seen.length, list.length, `chunk ${chunkSize}`);
      const parser = mqtt.parser({ protocolVersion: version });
      const expected: mqtt.Packet[] = [];
      parser.on('packet', (p: mqtt.Packet) => expected.push(p));
      parser.parse(stream);
      expected.forEach((p, i) => {
        const s = seen[i];
        if (p.cmd === 'publish') {
          t.is(s?.topic, p.topic);
          t.is(s?.qos, p.qos);
          t.is(s?.id, p.qos > 0 ? p.messageId : 0);
          t.true(s?.payload?.equals(p.payload as Buffer), `payload ${i} chunk ${chunkSize}`);
        } else t.is(s?.type, 4);
      });
    }
  });
}

test('builds PUBLISH and acks that mqtt-packet parses back', (t) => {
  for (const version of [4, 5] as const) {
    const { packet, payloadAt } = buildPublish(Buffer.from('a/b'), Buffer.from('payload-bytes'), 1, 513, version === 5);
    t.is(packet.subarray(payloadAt).toString(), 'payload-bytes');
    const parser = mqtt.parser({ protocolVersion: version });
    const got: mqtt.Packet[] = [];
    parser.on('packet', (p: mqtt.Packet) => got.push(p));
    parser.parse(Buffer.concat([packet, buildAck(0x40, 513), buildAck(0x62, 7)]));
    const pub = got[0] as mqtt.IPublishPacket;
    t.is(pub.topic, 'a/b');
    t.is(pub.messageId, 513);
    t.is((pub.payload as Buffer).toString(), 'payload-bytes');
    t.deepEqual(got.slice(1).map((p) => [p.cmd, p.messageId]), [['puback', 513], ['pubrel', 7]]);
  }
});

test('a 5.0 PUBLISH built with properties parses back with them, and the receiver still finds its payload', async (t) => {
  const props = Buffer.concat([Buffer.from([0x03, 0, 3]), Buffer.from('a/b'), Buffer.from([0x26, 0, 1, 0x6b, 0, 1, 0x76])]);
  const payload = Buffer.from('0123456789abcdefghijklmnopq');
  const { packet, payloadAt } = buildPublish(Buffer.from('t/p'), payload, 1, 9, true, props);
  t.deepEqual(packet.subarray(payloadAt), payload);
  const parser = mqtt.parser({ protocolVersion: 5 });
  const parsed = await new Promise<mqtt.IPublishPacket>((resolve) => {
    parser.on('packet', (p) => resolve(p as mqtt.IPublishPacket));
    parser.parse(packet);
  });
  t.is(parsed.properties?.contentType, 'a/b');
  t.deepEqual(parsed.properties?.userProperties, { k: 'v' });
  const view = decodePublish(packet, 0, packet.length, true);
  t.deepEqual(view?.payload, payload);
});
