/**
 * `deliverAfter`: by default a subscriber gets a QoS 1 message once it is written to the OS,
 * while the publisher's PUBACK still waits for the fsync; with 'sync' the subscriber waits too.
 * `qos0SyncMs`: QoS 0 messages share the next QoS 1 message's fsync instead of paying their own.
 * Driven end to end: mqtt.js subscribes, a raw client publishes, the fsyncs are held.
 */
import test, { type ExecutionContext } from 'ava';
import type { BrokerOptions } from '../../src/config.js';
import { Broker } from '../../src/server/broker.js';
import { collect, connect, sleep, tempDir } from '../helpers/broker.js';
import { syncGate } from '../helpers/file-faults.js';
import { RawClient } from '../helpers/raw-client.js';

async function setup(t: ExecutionContext, opts: BrokerOptions) {
  const gate = syncGate();
  const broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir: await tempDir(t), sysIntervalSec: 0, logLevel: 'silent', ...opts }, undefined, { fileOps: gate.ops });
  t.teardown(async () => {
    gate.release();
    await broker.close();
  });
  const sub = await connect(t, broker.port, { clientId: 'da-sub' });
  await sub.subscribeAsync('da/x', { qos: 1 });
  const inbox = collect(sub);
  const pub = await RawClient.open(broker.port, 4);
  t.teardown(() => pub.destroy());
  await pub.handshake('da-pub');
  pub.send({ cmd: 'publish', topic: 'da/x', payload: Buffer.from('warm-up'), qos: 1, messageId: 1, retain: false, dup: false });
  await pub.nextPacket('puback');
  await inbox.waitFor(1);
  return { gate, inbox, pub };
}

test("deliverAfter 'write' (default): the subscriber has the message before the publisher's PUBACK, which waits for the fsync", async (t) => {
  const { gate, inbox, pub } = await setup(t, {});
  gate.hold();
  pub.send({ cmd: 'publish', topic: 'da/x', payload: Buffer.from('early'), qos: 1, messageId: 2, retain: false, dup: false });
  const got = await inbox.waitFor(2);
  t.is(got[1]?.payload, 'early');
  // the journal's fdatasync starts in the loop's next check phase, maybe after the delivery
  const deadline = Date.now() + 2000;
  while (gate.held() === 0 && Date.now() < deadline) await sleep(5);
  t.true(gate.held() > 0, 'the fsync has not finished');
  await t.throwsAsync(pub.nextPacket('puback', 100), undefined, 'no PUBACK while the fsync is held');
  gate.release();
  t.is((await pub.nextPacket('puback')).messageId, 2);
});

test("deliverAfter 'sync': the subscriber waits for the fsync like the publisher", async (t) => {
  const { gate, inbox, pub } = await setup(t, { deliverAfter: 'sync' });
  gate.hold();
  pub.send({ cmd: 'publish', topic: 'da/x', payload: Buffer.from('late'), qos: 1, messageId: 2, retain: false, dup: false });
  await sleep(150);
  t.true(gate.held() > 0);
  t.is(inbox.messages.length, 1, 'not delivered before the fsync');
  gate.release();
  const got = await inbox.waitFor(2);
  t.is(got[1]?.payload, 'late');
  t.is((await pub.nextPacket('puback')).messageId, 2);
});

test('deliverAfter refuses values other than write and sync, naming the option', async (t) => {
  const err = await t.throwsAsync(Broker.start({ port: 0, dataDir: await tempDir(t), deliverAfter: 'later' as 'write' }));
  t.regex(err?.message ?? '', /deliverAfter/);
});

for (const journal of [true, false]) {
  test(`qos0SyncMs (default): QoS 0 messages get no fsync of their own; the next QoS 1 PUBACK waits for one round that covers them (journal ${journal})`, async (t) => {
    const { gate, inbox, pub } = await setup(t, { journal });
    gate.hold();
    for (let i = 0; i < 3; i++) {
      pub.send({ cmd: 'publish', topic: 'da/x', payload: Buffer.from(`q0-${i}`), qos: 0, retain: false, dup: false });
      await sleep(5);
    }
    await inbox.waitFor(4);
    await sleep(50);
    t.is(gate.held(), 0, 'no fsync was started for QoS 0 messages');
    pub.send({ cmd: 'publish', topic: 'da/x', payload: Buffer.from('q1'), qos: 1, messageId: 2, retain: false, dup: false });
    await inbox.waitFor(5);
    await sleep(20);
    t.is(gate.held(), journal ? 1 : 2, journal ? "one round: the journal's fdatasync" : 'one round: segment and index');
    await t.throwsAsync(pub.nextPacket('puback', 100), undefined, 'no PUBACK before the fsync');
    gate.release();
    t.is((await pub.nextPacket('puback')).messageId, 2);
    t.deepEqual(inbox.messages.map((m) => m.payload).slice(1), ['q0-0', 'q0-1', 'q0-2', 'q1']);
  });
}

test('qos0SyncMs 0: every QoS 0 batch is fsynced', async (t) => {
  const { gate, inbox, pub } = await setup(t, { qos0SyncMs: 0 });
  gate.hold();
  pub.send({ cmd: 'publish', topic: 'da/x', payload: Buffer.from('q0'), qos: 0, retain: false, dup: false });
  await inbox.waitFor(2);
  const deadline = Date.now() + 2000;
  while (gate.held() === 0 && Date.now() < deadline) await sleep(5);
  t.true(gate.held() > 0, 'the QoS 0 batch started its own fsync');
});

test('qos0SyncMs refuses values outside 0..3600000 ms, naming the option', async (t) => {
  const err = await t.throwsAsync(Broker.start({ port: 0, dataDir: await tempDir(t), qos0SyncMs: -5 }));
  t.regex(err?.message ?? '', /qos0SyncMs/);
});
