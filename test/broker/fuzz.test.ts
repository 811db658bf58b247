/**
 * Throws random and mutated packets at a running broker for a bounded time, then checks that it
 * still serves a normal client and still holds every message it acknowledged before the storm.
 */
import test from 'ava';
import { connect as netConnect } from 'node:net';
import mqtt, { type Packet } from 'mqtt-packet';
import { collect, connect, startBroker } from '../helpers/broker.js';

const FUZZ_MS = 3000;

/** A small deterministic PRNG, so a failure can be replayed from the seed in the title. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = 20261123;

const templates: Packet[] = [
  { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 10, clientId: 'fuzz' },
  { cmd: 'publish', topic: 'fuzz/t', payload: Buffer.from('payload'), qos: 1, messageId: 7, retain: false, dup: false },
  { cmd: 'publish', topic: 'fuzz/r', payload: Buffer.from('r'), qos: 2, messageId: 9, retain: true, dup: false },
  { cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'fuzz/#', qos: 2 }] },
  { cmd: 'unsubscribe', messageId: 3, unsubscriptions: ['fuzz/#'] },
  { cmd: 'puback', messageId: 1 },
  { cmd: 'pubrel', messageId: 9 },
  { cmd: 'pingreq' },
  { cmd: 'disconnect' },
];
const encoded = templates.map((p) => mqtt.generate(p));

function mutate(rand: () => number): Buffer {
  const kind = rand();
  if (kind < 0.2) {
    return Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)));
  }
  const parts: Buffer[] = [encoded[0] as Buffer];
  const n = 1 + Math.floor(rand() * 6);
  for (let i = 0; i < n; i++) {
    const b = Buffer.from(encoded[Math.floor(rand() * encoded.length)] as Buffer);
    const flips = Math.floor(rand() * 4);
    for (let f = 0; f < flips; f++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
    parts.push(rand() < 0.2 ? b.subarray(0, Math.floor(rand() * b.length)) : b);
  }
  return Buffer.concat(parts);
}

test(`survives ${FUZZ_MS} ms of random and mutated packets (seed ${SEED}) and still serves clients`, async (t) => {
  t.timeout(30_000);
  const broker = await startBroker(t, { maxPacketBytes: 64 * 1024 });
  const pub = await connect(t, broker.port);
  await pub.publishAsync('kept/before', 'acknowledged', { qos: 1, retain: true });

  const rand = prng(SEED);
  const deadline = Date.now() + FUZZ_MS;
  let sent = 0;
  const inflight = new Set<Promise<void>>();
  while (Date.now() < deadline) {
    const bytes = mutate(rand);
    const p = new Promise<void>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port: broker.port }, () => {
        s.write(bytes);
        setTimeout(() => s.destroy(), 20);
      });
      s.on('error', () => {});
      s.on('close', () => resolve());
    });
    inflight.add(p);
    void p.then(() => inflight.delete(p));
    sent++;
    if (inflight.size >= 32) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  t.true(sent > 50, `only ${sent} fuzz connections`);

  const client = await connect(t, broker.port);
  const inbox = collect(client);
  await client.subscribeAsync('kept/#', { qos: 1 });
  const [retained] = await inbox.waitFor(1);
  t.is(retained?.payload, 'acknowledged');
  await pub.publishAsync('kept/after', 'fine', { qos: 1 });
  const got = await inbox.waitFor(2);
  t.is(got[1]?.payload, 'fine');
});
