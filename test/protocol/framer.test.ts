/** The framer hands out whole packets whatever the chunking, and refuses oversized ones from the header. */
import test from 'ava';
import fc from 'fast-check';
import mqtt from 'mqtt-packet';
import { encodePublishHeader } from '../../src/protocol/encode.js';
import { PacketFramer } from '../../src/protocol/framer.js';

function publish(bytes: number): Buffer {
  return mqtt.generate({ cmd: 'publish', topic: 't/x', payload: Buffer.alloc(bytes, 1), qos: 1, messageId: 5, retain: false, dup: false });
}

test('reassembles the same packets under any chunking', (t) => {
  const packets = [publish(10), publish(300), publish(0), Buffer.from([0xc0, 0]), publish(20_000), Buffer.from([0x40, 2, 0, 9])];
  const stream = Buffer.concat(packets);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: stream.length }), { maxLength: 30 }), (cuts) => {
      const points = [...new Set(cuts)].sort((a, b) => a - b);
      const framer = new PacketFramer(1 << 20);
      const out: Buffer[] = [];
      let prev = 0;
      for (const p of [...points, stream.length]) {
        if (p <= prev) continue;
        if (framer.push(stream.subarray(prev, p), (pkt) => out.push(Buffer.from(pkt))) !== 'ok') return false;
        prev = p;
      }
      return out.length === packets.length && out.every((pkt, i) => pkt.equals(packets[i] as Buffer));
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('hands out a packet inside one chunk as a view, without copying', (t) => {
  const chunk = Buffer.concat([publish(10), publish(10)]);
  const framer = new PacketFramer(1024);
  const views: Buffer[] = [];
  framer.push(chunk, (pkt) => views.push(pkt));
  t.is(views.length, 2);
  t.is(views[0]?.buffer, chunk.buffer);
});

test('refuses a packet whose declared size exceeds the limit before its body arrives', (t) => {
  const big = publish(5000);
  const framer = new PacketFramer(4096);
  t.is(framer.push(big.subarray(0, 1), () => {}), 'ok');
  t.is(framer.push(big.subarray(1, 4), () => {}), 'too-large');
  t.is(framer.lastDeclaredBytes, big.length);
});

test('refuses a remaining length with a fifth byte [MQTT-2.2.3]', (t) => {
  t.is(new PacketFramer(1 << 30).push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), () => {}), 'malformed');
});

test('the hand-built PUBLISH header plus payload parses as the same PUBLISH', async (t) => {
  const payload = Buffer.from('hello world');
  const header = encodePublishHeader(Buffer.from('a/b'), 1, true, true, 513, payload.length);
  const parser = mqtt.parser({ protocolVersion: 4 });
  const got = await new Promise<mqtt.IPublishPacket>((resolve) => {
    parser.on('packet', (p) => resolve(p as mqtt.IPublishPacket));
    parser.parse(Buffer.concat([header, payload]));
  });
  t.is(got.topic, 'a/b');
  t.is(got.qos, 1);
  t.true(got.retain);
  t.true(got.dup);
  t.is(got.messageId, 513);
  t.deepEqual(Buffer.from(got.payload as Buffer), payload);
});
