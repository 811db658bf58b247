/**
 * `commitDelayMs` (`--commit-delay-ms`, default 1): with the journal, a fdatasync round that no
 * publisher waits on starts at most once per delay, so more messages share it. A publisher that
 * sends each QoS 1 message after the previous PUBACK is never slowed; one that sends on before
 * its PUBACKs gets them up to the delay later. Driven end to end with a 300 ms delay, far longer
 * than a fdatasync, so the two cases cannot be mistaken for each other.
 */
import test, { type ExecutionContext } from 'ava';
import { parseStartArgs } from '../../src/cli/start.js';
import { resolveOptions } from '../../src/config.js';
import { Broker } from '../../src/server/broker.js';
import { connect, sleep, tempDir } from '../helpers/broker.js';
import { syncGate } from '../helpers/file-faults.js';
import { RawClient } from '../helpers/raw-client.js';

const DELAY = 300;

/** A broker with the 300 ms delay whose fdatasyncs a gate can hold, and raw clients of it. */
async function gatedBroker(t: ExecutionContext): Promise<{ gate: ReturnType<typeof syncGate>; client(id: string): Promise<RawClient> }> {
  const gate = syncGate();
  const broker = await Broker.start(
    { host: '127.0.0.1', port: 0, dataDir: await tempDir(t), sysIntervalSec: 0, logLevel: 'silent', commitDelayMs: DELAY },
    undefined,
    { fileOps: gate.ops },
  );
  t.teardown(async () => {
    gate.release();
    await broker.close();
  });
  const client = async (id: string) => {
    const c = await RawClient.open(broker.port, 4);
    t.teardown(() => c.destroy());
    await c.handshake(id);
    return c;
  };
  return { gate, client };
}

/** Holds fdatasyncs, calls `send`, and waits until the round it started is held. */
async function holdRound(t: ExecutionContext, gate: ReturnType<typeof syncGate>, send: () => void): Promise<void> {
  gate.hold();
  send();
  const deadline = Date.now() + 2000;
  while (gate.held() === 0 && Date.now() < deadline) await sleep(2);
  t.true(gate.held() > 0, 'a round is in flight');
}

test('commitDelayMs: default 1, --commit-delay-ms sets it, out of range is refused', async (t) => {
  t.is(resolveOptions({}).commitDelayMs, 1);
  t.like(await parseStartArgs(['--commit-delay-ms', '0']), { commitDelayMs: 0 });
  t.throws(() => resolveOptions({ commitDelayMs: 1001 }), { code: 'ERR_CONFIG_INVALID' });
  t.throws(() => resolveOptions({ commitDelayMs: 0.5 }), { code: 'ERR_CONFIG_INVALID' });
});

test('a publisher that waits for each PUBACK is not delayed', async (t) => {
  const broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir: await tempDir(t), sysIntervalSec: 0, logLevel: 'silent', commitDelayMs: DELAY });
  t.teardown(() => broker.close());
  const pub = await connect(t, broker.port);
  await pub.publishAsync('cd/lock', 'warm-up', { qos: 1 });
  const start = performance.now();
  for (let i = 0; i < 12; i++) await pub.publishAsync('cd/lock', `m${i}`, { qos: 1 });
  const elapsed = performance.now() - start;
  t.true(elapsed < DELAY * 4, `12 publishes in lock step took ${elapsed.toFixed(0)} ms; delayed, they would take ${DELAY * 11} ms or more`);
});

test('a publisher that sends on before its PUBACK gets the next round after the delay, not later', async (t) => {
  const { gate, client } = await gatedBroker(t);
  const pub = await client('cd-pub');
  const publish = (messageId: number) => pub.send({ cmd: 'publish', topic: 'cd/pipe', payload: Buffer.from(`m${messageId}`), qos: 1, messageId, retain: false, dup: false });
  publish(1);
  await pub.nextPacket('puback');
  await sleep(DELAY + 50); // nothing recent to wait for

  const sent = performance.now();
  await holdRound(t, gate, () => publish(2));
  publish(3); // written while that round is in flight: its publisher is not waiting on it
  await sleep(20);
  gate.release();
  t.is((await pub.nextPacket('puback')).messageId, 2);
  const second = await pub.nextPacket('puback', 3000);
  const waited = performance.now() - sent;
  t.is(second.messageId, 3);
  t.true(waited >= DELAY - 20, `PUBACK 3 came ${waited.toFixed(0)} ms after message 2 was sent: its round waited for the delay`);
  t.true(waited < DELAY + 1000, 'and not much longer');
});

test('publishers sharing a topic: one that waits for each PUBACK keeps its pace beside one that sends on', async (t) => {
  const { gate, client } = await gatedBroker(t);
  const [lock, other, pipe] = await Promise.all([client('cd-lock'), client('cd-other'), client('cd-pipe')]);
  const publish = (c: RawClient, messageId: number) => c.send({ cmd: 'publish', topic: 'cd/shared', payload: Buffer.from(`m${messageId}`), qos: 1, messageId, retain: false, dup: false });
  publish(pipe, 1);
  await pipe.nextPacket('puback');
  await sleep(DELAY + 50); // the topic's log is idle: its next round is not urgent by its own gap

  // 1. the waiting publisher's message is written while another's round is in flight
  publish(lock, 1);
  await lock.nextPacket('puback'); // lock-step from here: each message right after its PUBACK
  publish(other, 1);
  await other.nextPacket('puback');
  await holdRound(t, gate, () => publish(lock, 2));
  // queued behind that round, `other` looks pipelined to the log; its own gap says it waits
  publish(other, 2);
  await sleep(20);
  const released = performance.now();
  gate.release();
  t.is((await lock.nextPacket('puback', 3000)).messageId, 2);
  t.is((await other.nextPacket('puback', 3000)).messageId, 2);
  const first = performance.now() - released;
  t.true(first < DELAY / 2, `the second publisher's PUBACK came ${first.toFixed(0)} ms after the round it queued behind`);

  // 2. its message arrives while a pipelined round waits out the delay: that round is hurried
  await holdRound(t, gate, () => publish(pipe, 2));
  publish(pipe, 3); // written during the held round: its round waits for the delay
  await sleep(20);
  gate.release();
  t.is((await pipe.nextPacket('puback', 3000)).messageId, 2);
  await sleep(30); // message 3's round is waiting in the journal now
  const sent = performance.now();
  publish(lock, 3);
  t.is((await lock.nextPacket('puback', 3000)).messageId, 3);
  const second = performance.now() - sent;
  t.true(second < DELAY / 2, `PUBACK 3 came ${second.toFixed(0)} ms after it was sent; behind the waiting round it would take ~${DELAY - 60} ms`);
  t.is((await pipe.nextPacket('puback', 3000)).messageId, 3);
});
