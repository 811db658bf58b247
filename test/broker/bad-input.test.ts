/**
 * Bad input: every violation disconnects that client only, with a reason in the log; the broker
 * and every other client carry on, and nothing acknowledged is lost.
 */
import test, { type ExecutionContext } from 'ava';
import mqtt from 'mqtt-packet';
import { Broker } from '../../src/server/broker.js';
import { collect, connect, startBroker, tempDir } from '../helpers/broker.js';
import { RawClient } from '../helpers/raw-client.js';

interface LogLine {
  obj: object;
  msg: string;
}

/** A broker whose warnings are captured, so tests can check the reason is named. */
async function brokerWithLog(t: ExecutionContext, opts: { maxPacketBytes?: number } = {}): Promise<{ broker: Broker; warnings: LogLine[] }> {
  const warnings: LogLine[] = [];
  const logger = {
    debug() {},
    info() {},
    warn(obj: object, msg: string) {
      warnings.push({ obj, msg });
    },
    error(obj: object, msg: string) {
      warnings.push({ obj, msg });
    },
  };
  const broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir: await tempDir(t), sysIntervalSec: 0, ...opts }, logger);
  t.teardown(() => broker.close());
  return { broker, warnings };
}

/** A bystander that keeps a QoS 1 subscription; each test checks it still works afterwards. */
async function bystander(t: ExecutionContext, port: number) {
  const sub = await connect(t, port);
  await sub.subscribeAsync('bystander', { qos: 1 });
  const pub = await connect(t, port);
  return {
    async stillWorks() {
      await pub.publishAsync('bystander', 'alive', { qos: 1 });
      const got = await collect(sub).waitFor(1);
      t.is(got[0]?.payload, 'alive');
    },
  };
}

test('closes a connection whose first packet is not CONNECT [MQTT-3.1.0-1]', async (t) => {
  const { broker, warnings } = await brokerWithLog(t);
  const other = await bystander(t, broker.port);
  const raw = await RawClient.open(broker.port);
  raw.send({ cmd: 'pingreq' });
  t.true(await raw.closedWithin(2000));
  t.true(warnings.some((w) => (w.obj as { code?: string }).code === 'ERR_MQTT_CONNECT_FIRST'));
  await other.stillWorks();
});

test('closes a connection that sends a second CONNECT [MQTT-3.1.0-2]', async (t) => {
  const { broker, warnings } = await brokerWithLog(t);
  const other = await bystander(t, broker.port);
  const raw = await RawClient.open(broker.port);
  await raw.handshake('twice');
  raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'twice' });
  t.true(await raw.closedWithin(2000));
  t.true(warnings.some((w) => (w.obj as { code?: string }).code === 'ERR_MQTT_SECOND_CONNECT'));
  await other.stillWorks();
});

test('refuses an oversized packet from its fixed header, before its body arrives', async (t) => {
  const { broker, warnings } = await brokerWithLog(t, { maxPacketBytes: 1024 });
  const other = await bystander(t, broker.port);
  const raw = await RawClient.open(broker.port);
  await raw.handshake('big');
  const big = mqtt.generate({ cmd: 'publish', topic: 'x', payload: Buffer.alloc(100_000), qos: 0, retain: false, dup: false });
  raw.sendRaw(big.subarray(0, 8)); // only the header and a few bytes
  t.true(await raw.closedWithin(2000));
  const line = warnings.find((w) => (w.obj as { code?: string }).code === 'ERR_MQTT_PACKET_TOO_LARGE');
  t.truthy(line);
  t.regex(line?.msg ?? '', /exceeds the limit of 1024/);
  await other.stillWorks();
});

test('closes on a malformed remaining length', async (t) => {
  const { broker } = await brokerWithLog(t);
  const other = await bystander(t, broker.port);
  const raw = await RawClient.open(broker.port);
  await raw.handshake('malformed');
  raw.sendRaw([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]);
  t.true(await raw.closedWithin(2000));
  await other.stillWorks();
});

test('closes on a PUBLISH whose topic has wildcards [MQTT-3.3.2-2]', async (t) => {
  const { broker, warnings } = await brokerWithLog(t);
  const other = await bystander(t, broker.port);
  const raw = await RawClient.open(broker.port);
  await raw.handshake('wild');
  raw.send({ cmd: 'publish', topic: 'a/+/b', payload: Buffer.from('x'), qos: 1, messageId: 1, retain: false, dup: false });
  t.true(await raw.closedWithin(2000));
  t.true(warnings.some((w) => (w.obj as { code?: string }).code === 'ERR_MQTT_TOPIC_INVALID'));
  await other.stillWorks();
});

test('closes on a PUBLISH whose topic is not valid UTF-8 [MQTT-1.5.3-1]', async (t) => {
  const { broker } = await brokerWithLog(t);
  const other = await bystander(t, broker.port);
  const raw = await RawClient.open(broker.port);
  await raw.handshake('utf8');
  // PUBLISH QoS 0, topic = [0x61, 0xff, 0x62] (0xff never appears in UTF-8), payload 'x'
  raw.sendRaw([0x30, 6, 0, 3, 0x61, 0xff, 0x62, 0x78]);
  t.true(await raw.closedWithin(2000));
  await other.stillWorks();
});

test('refuses an invalid subscription filter with SUBACK 0x80 and keeps the valid ones', async (t) => {
  const broker = await startBroker(t);
  const raw = await RawClient.open(broker.port);
  t.teardown(() => raw.destroy());
  await raw.handshake('filters');
  raw.send({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'a/#/b', qos: 1 }, { topic: 'ok/+', qos: 1 }] });
  const suback = await raw.nextPacket('suback');
  t.deepEqual(suback.granted, [0x80, 1]);
});

test('answers an unsupported protocol level with CONNACK return code 1 and closes [MQTT-3.1.2-2]', async (t) => {
  const broker = await startBroker(t);
  const raw = await RawClient.open(broker.port);
  // CONNECT with protocol level 6
  raw.sendRaw([0x10, 13, 0, 4, 0x4d, 0x51, 0x54, 0x54, 6, 0x02, 0, 0, 0, 1, 0x61]);
  const connack = await raw.nextPacket('connack');
  t.is(connack.returnCode, 1);
  t.true(await raw.closedWithin(2000));
});

test('closes a connection that never sends CONNECT', async (t) => {
  const { broker } = await (async () => {
    const b = await Broker.start({ host: '127.0.0.1', port: 0, dataDir: await tempDir(t), sysIntervalSec: 0, connectTimeoutMs: 300 });
    t.teardown(() => b.close());
    return { broker: b };
  })();
  const raw = await RawClient.open(broker.port);
  t.true(await raw.closedWithin(2000));
});

for (const [title, bytes] of [
  ['a PUBLISH with both QoS bits set [MQTT-3.3.1-4]', [0x36, 5, 0, 1, 0x74, 0, 1]],
  ['a QoS 1 PUBLISH with packet id 0 [MQTT-2.3.1-1]', [0x32, 5, 0, 1, 0x74, 0, 0]],
  ['a PUBLISH whose topic length runs past the packet', [0x30, 4, 0, 9, 0x74, 0x74]],
  ['a PUBREL with the wrong fixed-header flags [MQTT-3.6.1-1]', [0x60, 2, 0, 1]],
] as const) {
  test(`closes on ${title}`, async (t) => {
    const { broker } = await brokerWithLog(t);
    const other = await bystander(t, broker.port);
    const raw = await RawClient.open(broker.port);
    await raw.handshake('scanner');
    raw.sendRaw([...bytes]);
    t.true(await raw.closedWithin(2000));
    await other.stillWorks();
  });
}
