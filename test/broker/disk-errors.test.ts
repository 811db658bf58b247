/**
 * Disk errors: when the commit log cannot store a PUBLISH, only its publisher hears about it
 * (3.1.1: disconnected; 5.0: PUBACK 0x97 for a full disk), the broker keeps serving, and
 * everything acknowledged before the fault is still delivered after it clears.
 */
import test, { type ExecutionContext } from 'ava';
import type { FileOps } from '../../commitlog/index.js';
import { Broker } from '../../src/server/broker.js';
import { collect, connect, connect5, sleep, tempDir } from '../helpers/broker.js';
import { diskThatFills } from '../helpers/file-faults.js';
import { RawClient } from '../helpers/raw-client.js';

async function brokerOn(t: ExecutionContext, ops: FileOps): Promise<{ broker: Broker; errors: string[] }> {
  const errors: string[] = [];
  const logger = { debug() {}, info() {}, warn: (_o: object, m: string) => void errors.push(m), error: (_o: object, m: string) => void errors.push(m) };
  const broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir: await tempDir(t), sysIntervalSec: 0 }, logger, { fileOps: ops });
  t.teardown(() => broker.close());
  return { broker, errors };
}

test('a full disk answers a 5.0 publisher PUBACK 0x97, keeps the connection and loses nothing acknowledged', async (t) => {
  const disk = diskThatFills();
  const { broker, errors } = await brokerOn(t, disk.ops);
  const sub = await connect5(t, broker.port, { clientId: 'disk-sub', clean: false, properties: { sessionExpiryInterval: 60 } });
  await sub.subscribeAsync('disk/#', { qos: 1 });
  const inbox = collect(sub);
  const pub = await RawClient.open(broker.port, 5);
  t.teardown(() => pub.destroy());
  await pub.handshake('disk-pub', { protocolVersion: 5 });
  pub.send({ cmd: 'publish', topic: 'disk/a', payload: Buffer.from('before'), qos: 1, messageId: 1, retain: false, dup: false });
  t.is((await pub.nextPacket('puback')).reasonCode ?? 0, 0);
  disk.setFull(true);
  pub.send({ cmd: 'publish', topic: 'disk/a', payload: Buffer.from('lost'), qos: 1, messageId: 2, retain: false, dup: false });
  const refused = await pub.nextPacket('puback');
  t.is(refused.messageId, 2);
  t.is(refused.reasonCode, 0x97);
  t.regex(refused.properties?.reasonString ?? '', /not stored/);
  t.false(pub.isClosed);
  t.true(errors.some((m) => /append failed/.test(m)), 'the failure is logged');
  disk.setFull(false);
  pub.send({ cmd: 'publish', topic: 'disk/a', payload: Buffer.from('after'), qos: 1, messageId: 3, retain: false, dup: false });
  t.is((await pub.nextPacket('puback')).reasonCode ?? 0, 0);
  const got = await inbox.waitFor(2);
  await sleep(150);
  t.deepEqual(
    got.map((m) => m.payload),
    ['before', 'after'],
  );
});

test('a full disk disconnects a 3.1.1 publisher only; other clients carry on', async (t) => {
  const disk = diskThatFills();
  const { broker } = await brokerOn(t, disk.ops);
  const bystander = await connect(t, broker.port);
  await bystander.subscribeAsync('other', { qos: 0 });
  const pub = await RawClient.open(broker.port, 4);
  t.teardown(() => pub.destroy());
  await pub.handshake('full-311');
  disk.setFull(true);
  pub.send({ cmd: 'publish', topic: 'x', payload: Buffer.from('lost'), qos: 1, messageId: 1, retain: false, dup: false });
  t.true(await pub.closedWithin(3000), '3.1.1 has no negative PUBACK: the client is disconnected to retry');
  disk.setFull(false);
  bystander.publish('other', 'still here', { qos: 0 });
  t.is((await collect(bystander).waitFor(1))[0]?.payload, 'still here');
  // the topic whose registration failed is registered on retry and works again
  const again = await connect(t, broker.port);
  await again.subscribeAsync('x', { qos: 1 });
  await again.publishAsync('x', 'stored now', { qos: 1 });
  t.is((await collect(again).waitFor(1))[0]?.payload, 'stored now');
});

test('a retained message that could not be stored is never served, not even after a restart', async (t) => {
  const disk = diskThatFills();
  const dataDir = await tempDir(t);
  let broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir, sysIntervalSec: 0 }, undefined, { fileOps: disk.ops });
  const pub = await RawClient.open(broker.port, 5);
  await pub.handshake('ret-pub', { protocolVersion: 5 });
  pub.send({ cmd: 'publish', topic: 'cfg', payload: Buffer.from('v1'), qos: 1, messageId: 1, retain: true, dup: false });
  t.is((await pub.nextPacket('puback')).reasonCode ?? 0, 0);
  disk.setFull(true);
  pub.send({ cmd: 'publish', topic: 'cfg', payload: Buffer.from('v2-not-stored'), qos: 1, messageId: 2, retain: true, dup: false });
  t.is((await pub.nextPacket('puback')).reasonCode, 0x97);
  disk.setFull(false);
  const sub = await connect5(t, broker.port);
  await sub.subscribeAsync('cfg', { qos: 1 });
  t.is((await collect(sub).waitFor(1))[0]?.payload, 'v1');
  pub.destroy();
  await broker.close();
  broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir, sysIntervalSec: 0 });
  t.teardown(() => broker.close());
  const late = await connect5(t, broker.port);
  await late.subscribeAsync('cfg', { qos: 1 });
  t.is((await collect(late).waitFor(1))[0]?.payload, 'v1');
});
