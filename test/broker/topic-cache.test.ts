/**
 * The connection's last-topic cache (src/protocol/last-topic.ts) against MQTT 5 topic aliases
 * and 3.1.1 topic validation: a hit must give exactly what the uncached path gives.
 */
import test from 'ava';
import { collect, connect, connect5, startBroker } from '../helpers/broker.js';
import { RawClient } from '../helpers/raw-client.js';

test('alias-only and alias re-binding around the last-topic cache', async (t) => {
  const broker = await startBroker(t);
  const sub = await connect5(t, broker.port);
  const inbox = collect(sub);
  await sub.subscribeAsync('c/#', { qos: 0 });
  const raw = await RawClient.open(broker.port, 5);
  t.teardown(() => raw.destroy());
  await raw.handshake('aliaser2', { protocolVersion: 5 });
  const seq: Array<[string, number | undefined]> = [
    ['c/1', 1], ['c/2', 2], ['', 1], ['', 2],   // alias-only, twice in a row with different aliases
    ['c/2', 1],                                  // cache hit on c/2 bytes, re-binds alias 1
    ['', 1], ['c/2', 3], ['', 3], ['c/1', 2], ['c/1', 4], ['', 2], ['', 4], ['', 1],
  ];
  const want = ['c/1', 'c/2', 'c/1', 'c/2', 'c/2', 'c/2', 'c/2', 'c/2', 'c/1', 'c/1', 'c/1', 'c/1', 'c/2'];
  for (const [i, [topic, alias]] of seq.entries()) {
    raw.send({ cmd: 'publish', topic, payload: Buffer.from(String(i)), qos: 0, retain: false, dup: false, properties: alias === undefined ? {} : { topicAlias: alias } });
  }
  const got = await inbox.waitFor(seq.length);
  t.deepEqual(got.map((m) => [Number(m.payload), m.topic]).sort((a, b) => (a[0] as number) - (b[0] as number)), want.map((w, i) => [i, w]));
});

test('3.1.1: invalid topic after a cached valid one of the same length is refused', async (t) => {
  const broker = await startBroker(t);
  const sub = await connect(t, broker.port);
  const inbox = collect(sub);
  await sub.subscribeAsync('#', { qos: 0 });
  const raw = await RawClient.open(broker.port, 4);
  t.teardown(() => raw.destroy());
  await raw.handshake('v3', { protocolVersion: 4 });
  raw.send({ cmd: 'publish', topic: 'd/ab', payload: Buffer.from('0'), qos: 0, retain: false, dup: false });
  raw.send({ cmd: 'publish', topic: 'd/a+', payload: Buffer.from('1'), qos: 0, retain: false, dup: false });
  raw.send({ cmd: 'publish', topic: 'd/ab', payload: Buffer.from('2'), qos: 0, retain: false, dup: false });
  await inbox.waitFor(1);
  await new Promise((r) => setTimeout(r, 300));
  t.deepEqual(inbox.messages.map((m) => `${m.topic}=${m.payload}`), ['d/ab=0']);
});
