/**
 * The connection's last-topic cache (src/protocol/last-topic.ts) against MQTT 5 topic aliases
 * and 3.1.1 topic validation: a hit must give exactly what the uncached path gives.
 */
import test, { type ExecutionContext } from 'ava';
import { collect, connect, connect5, startBroker, type Inbox } from '../helpers/broker.js';
import { RawClient } from '../helpers/raw-client.js';

/** A subscriber on `filter` (through mqtt.js) and a raw publisher, both on one fresh broker. */
async function subscriberAndRaw(t: ExecutionContext, version: 4 | 5, filter: string): Promise<{ inbox: Inbox; raw: RawClient }> {
  const broker = await startBroker(t);
  const sub = await (version === 5 ? connect5 : connect)(t, broker.port);
  const inbox = collect(sub);
  await sub.subscribeAsync(filter, { qos: 0 });
  const raw = await RawClient.open(broker.port, version);
  t.teardown(() => raw.destroy());
  await raw.handshake(`raw-v${version}`, { protocolVersion: version });
  return { inbox, raw };
}

function publish(raw: RawClient, topic: string, payload: string, properties: { topicAlias?: number } = {}): void {
  raw.send({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 0, retain: false, dup: false, properties });
}

test('alias-only and alias re-binding around the last-topic cache', async (t) => {
  const { inbox, raw } = await subscriberAndRaw(t, 5, 'c/#');
  const seq: Array<[string, number]> = [
    ['c/1', 1], ['c/2', 2], ['', 1], ['', 2], // alias-only, twice in a row with different aliases
    ['c/2', 1], // a cache hit on c/2's bytes must still re-bind alias 1
    ['', 1], ['c/2', 3], ['', 3], ['c/1', 2], ['c/1', 4], ['', 2], ['', 4], ['', 1],
  ];
  const want = ['c/1', 'c/2', 'c/1', 'c/2', 'c/2', 'c/2', 'c/2', 'c/2', 'c/1', 'c/1', 'c/1', 'c/1', 'c/2'];
  for (const [i, [topic, alias]] of seq.entries()) publish(raw, topic, String(i), { topicAlias: alias });
  const got = await inbox.waitFor(seq.length);
  t.deepEqual(
    got.map((m) => [Number(m.payload), m.topic]).sort((a, b) => (a[0] as number) - (b[0] as number)),
    want.map((w, i) => [i, w]),
  );
});

test('3.1.1: an invalid topic after a cached valid one of the same length is refused', async (t) => {
  const { inbox, raw } = await subscriberAndRaw(t, 4, '#');
  publish(raw, 'd/ab', '0');
  publish(raw, 'd/a+', '1'); // a wildcard in a PUBLISH topic: the client is disconnected [MQTT-3.3.2-2]
  publish(raw, 'd/ab', '2');
  await raw.closed;
  await inbox.waitFor(1);
  t.deepEqual(inbox.messages.map((m) => `${m.topic}=${m.payload}`), ['d/ab=0']);
});

test('an alias set by a PUBLISH whose payload is refused (bad UTF-8 under its format indicator) still stands for its topic', async (t) => {
  const { inbox, raw } = await subscriberAndRaw(t, 5, 'e/#');
  raw.send({ cmd: 'publish', topic: 'e/1', payload: Buffer.from([0xff, 0xfe]), qos: 1, messageId: 7, retain: false, dup: false, properties: { topicAlias: 5, payloadFormatIndicator: true } });
  const ack = await raw.nextPacket('puback');
  t.is(ack.reasonCode, 0x99, 'payload format invalid');
  publish(raw, '', 'via alias', { topicAlias: 5 });
  const [m] = await inbox.waitFor(1);
  t.is(m?.topic, 'e/1');
  t.is(String(m?.payload), 'via alias');
  t.is(inbox.messages.length, 1, 'the refused payload was not delivered');
});
