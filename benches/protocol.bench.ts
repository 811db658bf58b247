/**
 * Micro-benchmarks of the broker's per-message hot paths, each beside the mqtt-packet way of
 * doing the same thing in the same run:
 *   - inbound: splitting a chunk of 64 QoS 1 PUBLISHes into packets and reading topic, packet id
 *     and payload (our framer + scan vs mqtt-packet's parser);
 *   - outbound: the PUBLISH header for one subscriber (ours, 3.1.1 and 5.0, vs generate());
 *   - MQTT 5 property scanning, record encoding, and subscription matching at 10k filters;
 *   - an inbound topic from its bytes against the connection's last-topic cache.
 * Every task checks its result before it is timed. Run: npm run bench:protocol
 */
import { isUtf8 } from 'node:buffer';
import mqtt, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { Bench } from 'tinybench';
import { encodeRecord } from '../router/record.js';
import { SubscriptionTrie } from '../router/subscriptions.js';
import { isValidTopicName } from '../router/topic-filter.js';
import { TopicTable } from '../router/topics.js';
import { encodePublishHeader } from '../src/protocol/encode.js';
import { PacketFramer } from '../src/protocol/framer.js';
import { LastTopic } from '../src/protocol/last-topic.js';
import { encodePublishHeaderV5, newPublishProperties, scanPublishProperties } from '../src/protocol/properties.js';
import { printTable, rowFromTask, writeResults, type BenchRow } from './lib/reporter.js';

const PACKETS_PER_CHUNK = 64;
const PAYLOAD = Buffer.alloc(64, 0x61);
const TOPIC = 'sensors/building-7/floor-7/temperature';

function publishPacket(i: number): IPublishPacket {
  return { cmd: 'publish', topic: TOPIC, payload: PAYLOAD, qos: 1, messageId: (i % 65535) + 1, retain: false, dup: false };
}
const chunk = Buffer.concat(Array.from({ length: PACKETS_PER_CHUNK }, (_, i) => mqtt.generate(publishPacket(i))));

/** What the connection's hot path extracts from each PUBLISH: topic string, packet id, payload view. */
function scanChunk(framer: PacketFramer, out: { topics: number; bytes: number }): void {
  framer.push(chunk, (packet, at) => {
    const topicEnd = at + 2 + packet.readUInt16BE(at);
    const topicBytes = packet.subarray(at + 2, topicEnd);
    if (!isUtf8(topicBytes)) throw new Error('bad topic');
    const topic = topicBytes.toString('utf8');
    const pid = packet.readUInt16BE(topicEnd);
    const payload = packet.subarray(topicEnd + 2);
    out.topics += topic.length > 0 && pid > 0 ? 1 : 0;
    out.bytes += payload.length;
  });
}

function parseChunk(parser: ReturnType<typeof mqtt.parser>, out: { topics: number; bytes: number }): void {
  parser.parse(chunk);
  void out;
}

async function main(): Promise<void> {
  const rows: BenchRow[] = [];
  const bench = new Bench({ time: 600, warmupTime: 150 });

  // ── inbound ──
  const framer = new PacketFramer(1 << 20);
  const scanned = { topics: 0, bytes: 0 };
  scanChunk(framer, scanned);
  if (scanned.topics !== PACKETS_PER_CHUNK || scanned.bytes !== PACKETS_PER_CHUNK * PAYLOAD.length) throw new Error('scan check failed');
  const parser = mqtt.parser({ protocolVersion: 4 });
  const parsed = { topics: 0, bytes: 0 };
  parser.on('packet', (p: Packet) => {
    const pub = p as IPublishPacket;
    parsed.topics += pub.topic === TOPIC ? 1 : 0;
    parsed.bytes += (pub.payload as Buffer).length;
  });
  parseChunk(parser, parsed);
  if (parsed.topics !== PACKETS_PER_CHUNK) throw new Error('parser check failed');
  bench.add(`inbound: framer + scan, ${PACKETS_PER_CHUNK} QoS1 PUBLISH/chunk`, () => scanChunk(framer, scanned));
  bench.add(`inbound: mqtt-packet parser, ${PACKETS_PER_CHUNK} QoS1 PUBLISH/chunk`, () => parseChunk(parser, parsed));

  // ── outbound ──
  const topicBytes = Buffer.from(TOPIC);
  const ours = Buffer.concat([encodePublishHeader(topicBytes, 1, false, false, 7, PAYLOAD.length), PAYLOAD]);
  const theirs = mqtt.generate(publishPacket(6));
  if (!ours.equals(theirs)) throw new Error('header check failed');
  const v5 = Buffer.concat([encodePublishHeaderV5(topicBytes, 1, false, false, 7, PAYLOAD.length, 0, -1, null, null), PAYLOAD]);
  if (!v5.equals(mqtt.generate(publishPacket(6), { protocolVersion: 5 }))) throw new Error('v5 header check failed');
  bench.add('outbound: our 3.1.1 PUBLISH header (payload not copied)', () => encodePublishHeader(topicBytes, 1, false, false, 7, PAYLOAD.length));
  bench.add('outbound: our 5.0 PUBLISH header, alias + sub id', () => encodePublishHeaderV5(null, 1, false, false, 7, PAYLOAD.length, 3, -1, [9], null));
  bench.add('outbound: mqtt-packet generate() (copies the payload)', () => mqtt.generate(publishPacket(6)));

  // ── MQTT 5 properties ──
  const withProps = mqtt.generate(
    { ...publishPacket(1), properties: { topicAlias: 3, messageExpiryInterval: 60, contentType: 'application/json', userProperties: { trace: 'abc' } } },
    { protocolVersion: 5 },
  );
  let headerBytes = 0;
  new PacketFramer(1 << 20).push(withProps, (_p, at) => (headerBytes = at));
  const propsAt = headerBytes + 2 + TOPIC.length + 2; // topic length, topic, packet id
  const props = newPublishProperties();
  if (scanPublishProperties(withProps, propsAt, props).topicAlias !== 3) throw new Error('props check failed');
  bench.add('5.0: scan PUBLISH properties (alias, expiry, content type, user prop)', () => scanPublishProperties(withProps, propsAt, props));

  // ── router ──
  bench.add('router: encode a stored record (one payload copy)', () => encodeRecord(1, false, 7, -1, null, PAYLOAD));
  const trie = new SubscriptionTrie<number>();
  for (let i = 0; i < 10_000; i++) trie.add(`sensors/building-${i % 100}/floor-${i % 10}/${i % 7 === 0 ? '#' : '+'}`, i, 1);
  let matches = 0;
  trie.match(TOPIC, () => matches++);
  if (matches === 0) throw new Error('trie check failed');
  bench.add('router: match a new topic against 10k filters (trie)', () => trie.match(TOPIC, () => {}));
  const table = new TopicTable();
  for (let i = 0; i < 10_000; i++) table.intern(`sensors/building-${i % 100}/floor-${i % 10}/t${i}`);
  bench.add('router: intern a known topic among 10k', () => table.lookup('sensors/building-7/floor-7/t7007'));

  // ── the topic of an inbound PUBLISH: from its bytes, or a repeat of the connection's last ──
  const known = 'sensors/building-7/floor-7/t7007';
  const inPacket = Buffer.concat([Buffer.from([0x32, 0x30, 0x00, known.length]), Buffer.from(known), Buffer.from([0, 7]), PAYLOAD]);
  const tFrom = 4;
  const tTo = tFrom + known.length;
  const topicOf = (): number => {
    if (!isUtf8(inPacket.subarray(tFrom, tTo))) return -1;
    const name = inPacket.toString('utf8', tFrom, tTo);
    return isValidTopicName(name) ? table.intern(name).id : -1;
  };
  const last = new LastTopic<number>(-1);
  last.remember(inPacket, tFrom, tTo, known, topicOf());
  if (topicOf() !== table.lookup(known) || !last.matches(inPacket, tFrom, tTo) || last.id !== table.lookup(known)) throw new Error('topic check failed');
  bench.add('topic: UTF-8 check + string + name check + intern (a new PUBLISH topic)', topicOf);
  bench.add('topic: same bytes as the last PUBLISH (connection cache)', () => last.matches(inPacket, tFrom, tTo));

  await bench.run();
  for (const task of bench.tasks) {
    const perChunk = task.name.startsWith('inbound');
    rows.push(rowFromTask(task, perChunk ? { records: PACKETS_PER_CHUNK, bytes: chunk.length } : {}));
  }
  const scan = rows[0]?.recordsPerSec ?? 0;
  const parse = rows[1]?.recordsPerSec ?? 1;
  const ourHeader = rows[2]?.opsPerSec ?? 0;
  const generate = rows[4]?.opsPerSec ?? 1;
  printTable('protocol and router hot paths (tinybench)', rows);
  const topicFull = rows.find((r) => r.name.startsWith('topic: UTF-8'))?.opsPerSec ?? 1;
  const topicCached = rows.find((r) => r.name.startsWith('topic: same bytes'))?.opsPerSec ?? 0;
  const ratios = { scanVsParser: +(scan / parse).toFixed(2), headerVsGenerate: +(ourHeader / generate).toFixed(2), topicCacheVsFull: +(topicCached / topicFull).toFixed(2) };
  console.log(
    `ratios: inbound scan / mqtt-packet parser = ${ratios.scanVsParser}x; our header / generate() = ${ratios.headerVsGenerate}x; cached topic / full topic = ${ratios.topicCacheVsFull}x`,
  );
  console.log(`results: ${writeResults('protocol', rows, { ratios })}`);
}

await main();
