/** The fixed-header guard refuses oversized packets from their first bytes, across chunk splits. */
import test from 'ava';
import mqtt from 'mqtt-packet';
import { FrameGuard } from '../../src/protocol/frame-guard.js';
import { encodeAck, encodePublishHeader } from '../../src/protocol/encode.js';

function publish(bytes: number): Buffer {
  return mqtt.generate({ cmd: 'publish', topic: 't', payload: Buffer.alloc(bytes), qos: 0, retain: false, dup: false });
}

test('passes a stream of small packets split at every byte', (t) => {
  const stream = Buffer.concat([publish(10), publish(200), publish(0), encodeAck(0x40, 7)]);
  const guard = new FrameGuard(1024);
  for (const byte of stream) t.is(guard.check(Buffer.from([byte])), 'ok');
});

test('refuses a packet whose declared size exceeds the limit before its body arrives', (t) => {
  const big = publish(5000);
  const guard = new FrameGuard(4096);
  t.is(guard.check(big.subarray(0, 1)), 'ok');
  t.is(guard.check(big.subarray(1, 4)), 'too-large');
  t.is(guard.lastDeclaredBytes, big.length);
});

test('refuses a remaining length with a fifth byte [MQTT-2.2.3]', (t) => {
  const guard = new FrameGuard(1 << 30);
  t.is(guard.check(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])), 'malformed');
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
