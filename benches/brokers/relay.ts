/**
 * A deliberately minimal MQTT 3.1.1/5 relay, to measure Node's own floor of broker CPU per
 * message in the side-by-side scenarios: no log, no sessions, no persistence, no retained
 * messages, no keepalive enforcement, no QoS 2, no checks beyond what mqtt-packet's parser does.
 * It is not a broker anyone should use; it is what any Node broker pays at least for a socket
 * read, a parse, a match and a socket write per message (`RELAY=1 benches/tools/cpu-split.sh`).
 *
 *   node dist/benches/brokers/relay.js [--port N] [--cork | --batch] [--scan] [--store DIR [--sync-delay-ms N]]
 *   node --import=tsx benches/brokers/relay.ts [--port N] [--cork | --batch] [--scan] [--store DIR [--sync-delay-ms N]]
 *
 * Prints `relay ready on 127.0.0.1:<port>` on stderr once listening (--port 0 = any free one).
 * Writes go straight to the socket by default (one write(2) per packet). --cork corks a socket
 * on its first write in a tick and uncorks it in process.nextTick, so the packets written to
 * one socket while handling one socket read leave in one writev; --batch uncorks in
 * setImmediate instead, so the packets of every socket read of one event-loop turn do (what
 * mqlog's router gets from serving deliveries in setImmediate).
 *
 * --scan reads a 3.1.1 client's PUBLISH, PUBACK and PINGREQ by hand instead of through
 * mqtt-packet (the framer `src/protocol/framer.ts` cuts the stream into packets; everything
 * else, and every 5.0 client's packets, still goes through the parser), and sends each
 * delivery as a small header built by hand plus a view of the inbound payload. That is the
 * "hand-written PUBLISH/PUBACK framing scanner" relay of issue 4's ceiling paragraph, and
 * the floor for mqlog, whose connections scan the same packets by hand.
 *
 * --store DIR adds the least that durable storage costs: every inbound PUBLISH (the packet as
 * read; only its payload when mqtt-packet parsed it: without --scan, or from a 5.0 client) is written to one append-only file in DIR with one writev per event-loop turn on the
 * calling thread, and a QoS 1 PUBLISH is acknowledged only after an fdatasync that covers it
 * (group commit: one round in flight; PUBACKs that arrive meanwhile wait for the next one).
 * QoS 0 messages are written and never synced. The file rolls at 64 MiB and every file is
 * kept until the relay stops, as mqlog keeps a bench run's records, so both grow the page
 * cache the same way (on this VM, pages the guest has not used lately cost ~10× more to write
 * into: notes/2026-11-24-durable-floor.md). No index, no per-topic files, no checksums, no tail, no
 * recovery: whatever a durable broker does beyond this is its own cost, not Node's or the disk's.
 * --sync-delay-ms N (for tests only) holds each sync round's end by N ms, so a test can see
 * that PUBACKs wait for it.
 *
 * What it does: CONNECT → CONNACK; SUBSCRIBE → SUBACK (exact filters and the wildcards `+` and
 * `#`, granted QoS at most 1); PUBLISH → forwarded to every matching subscription at
 * min(QoS), with a packet id per subscriber, and a QoS 1 PUBLISH is acknowledged to its
 * publisher at once; PUBACKs from subscribers are dropped; PINGREQ → PINGRESP; DISCONNECT ends.
 */
import * as fs from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { argv, exit, nextTick, stderr } from 'node:process';
import mqtt from 'mqtt-packet';
import { nodeFileOps } from '../../commitlog/index.js';
import { levelsMatch } from '../../router/topic-filter.js';
import { encodeAck, encodePublishHeader, PINGRESP } from '../../src/protocol/encode.js';
import { PacketFramer } from '../../src/protocol/framer.js';
import { LastTopic } from '../../src/protocol/last-topic.js';

type Version = 4 | 5;

interface Subscription {
  client: Client;
  /** The filter split into levels. */
  levels: string[];
  qos: 0 | 1;
}

/** Subscriptions without wildcards, by topic (one map lookup), and the wildcard ones (matched level by level). */
const exact = new Map<string, Subscription[]>();
const wildcard: Subscription[] = [];

/** When a socket's writes reach the kernel: at once, at the end of the tick, or at the end of the loop turn. */
type Flush = 'write' | 'tick' | 'immediate';

function parseArgs(args: string[]): { port: number; flush: Flush; scan: boolean; storeDir: string | null; syncDelayMs: number } {
  let port = 1883;
  let flush: Flush = 'write';
  let scan = false;
  let storeDir: string | null = null;
  let syncDelayMs = 0;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--cork') flush = 'tick';
    else if (a === '--batch') flush = 'immediate';
    else if (a === '--scan') scan = true;
    else if (a === '--store' && i + 1 < args.length) storeDir = args[++i] as string;
    else if (a === '--sync-delay-ms') syncDelayMs = Number(args[++i]);
    else if (a === '--port') port = Number(args[++i]);
    else {
      stderr.write(`relay: unknown argument ${a}\nusage: relay [--port N] [--cork | --batch] [--scan] [--store DIR [--sync-delay-ms N]]\n`);
      exit(2);
    }
  }
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    stderr.write(`relay: --port must be an integer in [0, 65535]\n`);
    exit(2);
  }
  if (!Number.isInteger(syncDelayMs) || syncDelayMs < 0) {
    stderr.write(`relay: --sync-delay-ms must be a non-negative integer\n`);
    exit(2);
  }
  return { port, flush, scan, storeDir, syncDelayMs };
}

const { port, flush, scan, storeDir, syncDelayMs } = parseArgs(argv.slice(2));

/** --store: the file rolls at this size; every file is kept. */
const STORE_ROLL_BYTES = 64 * 1024 * 1024;

/** --store: the log's own whole-buffer writev on the calling thread (it loops over short writes). */
const writevSync: (fd: number, buffers: readonly Buffer[], position: number) => void =
  nodeFileOps.writevSync ??
  (() => {
    throw new Error('nodeFileOps has no writevSync');
  });

/**
 * --store: one append-only file, written once per event-loop turn on the calling thread and
 * fdatasynced in group-commit rounds on the threadpool (one in flight at a time).
 */
class Store {
  readonly #dir: string;
  #fd = -1;
  #n = 0;
  #pos = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #scheduled = false;
  /** PUBACKs that wait for the next sync round, as (client, packet) pairs. */
  #waiting: Array<Client | Buffer> = [];
  #syncing = false;

  constructor(dir: string) {
    this.#dir = dir;
    fs.mkdirSync(dir, { recursive: true });
    this.#roll();
  }

  #roll(): void {
    if (this.#fd >= 0) fs.closeSync(this.#fd);
    this.#fd = fs.openSync(join(this.#dir, `relay-${this.#n++}.log`), 'w');
    this.#pos = 0;
  }

  /** Stores `packet` (a view of the inbound bytes; it is written before this turn ends). */
  append(packet: Buffer): void {
    this.#pending.push(packet);
    this.#pendingBytes += packet.length;
    this.#schedule();
  }

  /** Sends `ack` to `client` once a sync round that started after this call has finished. */
  ackAfterSync(client: Client, ack: Buffer): void {
    this.#waiting.push(client, ack);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#flushTurn);
  }

  readonly #flushTurn = (): void => {
    this.#scheduled = false;
    if (this.#pending.length > 0) {
      if (this.#pos + this.#pendingBytes > STORE_ROLL_BYTES && this.#pos > 0 && !this.#syncing) this.#roll();
      writevSync(this.#fd, this.#pending, this.#pos);
      this.#pos += this.#pendingBytes;
      this.#pending = [];
      this.#pendingBytes = 0;
    }
    if (this.#waiting.length > 0 && !this.#syncing) this.#sync();
  };

  #sync(): void {
    this.#syncing = true;
    const acks = this.#waiting;
    this.#waiting = [];
    fs.fdatasync(this.#fd, (err) => {
      if (err !== null) {
        stderr.write(`relay: fdatasync: ${err.message}\n`);
        exit(1);
      }
      if (syncDelayMs > 0) setTimeout(() => this.#synced(acks), syncDelayMs);
      else this.#synced(acks);
    });
  }

  #synced(acks: Array<Client | Buffer>): void {
    this.#syncing = false;
    for (let i = 0; i < acks.length; i += 2) (acks[i] as Client).write(acks[i + 1] as Buffer);
    if (this.#waiting.length > 0) this.#sync();
  }
}

const store = storeDir === null ? null : new Store(storeDir);

/** Larger than any packet the comparison's scenarios send; the framer refuses bigger ones. */
const MAX_PACKET_BYTES = 1 << 20;

class Client {
  readonly #socket: net.Socket;
  /** mqtt-packet's parser reads `settings.protocolVersion` for 5.0 properties; set after CONNECT. */
  readonly #parser: mqtt.Parser & { settings: { protocolVersion?: number } };
  #version: Version = 4;
  #nextId = 1;
  #corked = false;
  #connected = false;
  readonly #subs: Subscription[] = [];
  /** --scan: the last PUBLISH's topic, so a repeated topic is not decoded again. */
  readonly #lastTopic = new LastTopic<number>(0);

  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    this.#parser = mqtt.parser({ protocolVersion: 4 }) as mqtt.Parser & { settings: { protocolVersion?: number } };
    this.#parser.on('packet', (p: mqtt.Packet) => this.#onPacket(p));
    this.#parser.on('error', () => socket.destroy());
    if (scan) {
      const framer = new PacketFramer(MAX_PACKET_BYTES);
      socket.on('data', (chunk: Buffer) => {
        if (framer.push(chunk, this.#onFrame) !== 'ok') socket.destroy();
      });
    } else {
      socket.on('data', (chunk: Buffer) => this.#parser.parse(chunk));
    }
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#unsubscribeAll());
  }

  get version(): Version {
    return this.#version;
  }

  write(buf: Buffer): void {
    if (flush !== 'write' && !this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      if (flush === 'tick') nextTick(this.#uncork);
      else setImmediate(this.#uncork);
    }
    this.#socket.write(buf);
  }

  readonly #uncork = (): void => {
    this.#corked = false;
    this.#socket.uncork();
  };

  /** The next packet id for a QoS 1 PUBLISH to this client (never 0). */
  nextId(): number {
    const id = this.#nextId;
    this.#nextId = id === 65_535 ? 1 : id + 1;
    return id;
  }

  /** --scan: one whole packet; a 3.1.1 client's PUBLISH, PUBACK and PINGREQ are read by hand. */
  readonly #onFrame = (packet: Buffer, at: number): void => {
    if (!this.#connected || this.#version === 5) {
      this.#parser.parse(packet);
      return;
    }
    const first = packet[0] as number;
    switch (first >> 4) {
      case 3: {
        const qos = (first >> 1) & 3;
        if (qos === 2 || at + 2 > packet.length) break; // QoS 2 is outside the relay: the parser's path refuses it
        const topicEnd = at + 2 + packet.readUInt16BE(at);
        const payloadAt = topicEnd + (qos === 1 ? 2 : 0);
        if (payloadAt > packet.length) break;
        const last = this.#lastTopic;
        if (!last.matches(packet, at + 2, topicEnd)) last.remember(packet, at + 2, topicEnd, packet.toString('utf8', at + 2, topicEnd), 0);
        forwardScanned(last.name, packet, at + 2, topicEnd, payloadAt, qos);
        if (store !== null) store.append(packet);
        if (qos === 1) {
          const ack = encodeAck(0x40, packet.readUInt16BE(topicEnd));
          if (store !== null) store.ackAfterSync(this, ack);
          else this.write(ack);
        }
        return;
      }
      case 4:
        return; // a subscriber's PUBACK: no inflight bookkeeping
      case 12:
        this.write(PINGRESP);
        return;
    }
    this.#parser.parse(packet);
  };

  #send(p: mqtt.Packet): void {
    this.write(mqtt.generate(p, { protocolVersion: this.#version }));
  }

  #onPacket(p: mqtt.Packet): void {
    switch (p.cmd) {
      case 'connect':
        this.#version = p.protocolVersion === 5 ? 5 : 4;
        this.#parser.settings.protocolVersion = this.#version;
        this.#connected = true;
        this.#send(this.#version === 5 ? { cmd: 'connack', sessionPresent: false, reasonCode: 0 } : { cmd: 'connack', sessionPresent: false, returnCode: 0 });
        return;
      case 'subscribe': {
        const granted: number[] = [];
        for (const s of p.subscriptions) {
          const qos = s.qos === 0 ? 0 : 1;
          const sub: Subscription = { client: this, levels: s.topic.split('/'), qos };
          this.#subs.push(sub);
          if (s.topic.includes('+') || s.topic.includes('#')) wildcard.push(sub);
          else {
            const list = exact.get(s.topic);
            if (list === undefined) exact.set(s.topic, [sub]);
            else list.push(sub);
          }
          granted.push(qos);
        }
        this.#send({ cmd: 'suback', messageId: p.messageId ?? 0, granted });
        return;
      }
      case 'publish':
        if (p.qos === 2) {
          this.#socket.destroy(); // not supported: no scenario of the comparison uses it
          return;
        }
      {
        const payload = typeof p.payload === 'string' ? Buffer.from(p.payload) : p.payload;
        forward(p.topic, payload, p.qos);
        if (store !== null) store.append(payload);
        if (p.qos === 1) {
          const ack = mqtt.generate(this.#version === 5 ? { cmd: 'puback', messageId: p.messageId ?? 0, reasonCode: 0 } : { cmd: 'puback', messageId: p.messageId ?? 0 }, { protocolVersion: this.#version });
          if (store !== null) store.ackAfterSync(this, ack);
          else this.write(ack);
        }
        return;
      }
      case 'puback':
        return; // no inflight bookkeeping: a subscriber's ack is simply consumed
      case 'pingreq':
        this.#send({ cmd: 'pingresp' });
        return;
      case 'disconnect':
        this.#socket.end();
        return;
      default:
        this.#socket.destroy(); // anything else is outside this relay
    }
  }

  #unsubscribeAll(): void {
    for (const sub of this.#subs) {
      const list = sub.levels.some((l) => l === '+' || l === '#') ? wildcard : exact.get(sub.levels.join('/'));
      if (list === undefined) continue;
      const i = list.indexOf(sub);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0 && list !== wildcard) exact.delete(sub.levels.join('/'));
    }
    this.#subs.length = 0;
  }
}

/** Calls `deliver` for every subscription matching `topic`: exact ones by one map lookup, wildcard ones level by level. */
function eachMatch(topic: string, deliver: (sub: Subscription) => void): void {
  const list = exact.get(topic);
  if (list !== undefined) for (const sub of list) deliver(sub);
  if (wildcard.length > 0) {
    const levels = topic.split('/');
    for (const sub of wildcard) if (levelsMatch(sub.levels, levels)) deliver(sub);
  }
}

/** Sends one message to every matching subscription (a QoS 0 packet is built once per protocol version). */
function forward(topic: string, payload: Buffer, qos: 0 | 1): void {
  const qos0: [Buffer | null, Buffer | null] = [null, null];
  const deliver = (sub: Subscription): void => {
    const q = qos < sub.qos ? qos : sub.qos;
    const c = sub.client;
    const v = c.version;
    if (q === 0) {
      const k = v === 5 ? 1 : 0;
      const built = qos0[k] ?? mqtt.generate({ cmd: 'publish', topic, payload, qos: 0, dup: false, retain: false }, { protocolVersion: v });
      qos0[k] = built;
      c.write(built);
    } else {
      c.write(mqtt.generate({ cmd: 'publish', topic, payload, qos: 1, messageId: c.nextId(), dup: false, retain: false }, { protocolVersion: v }));
    }
  };
  eachMatch(topic, deliver);
}

/**
 * --scan: sends one scanned PUBLISH (topic at packet[topicAt, topicEnd), payload from
 * `payloadAt`) to every matching subscription. A 3.1.1 subscriber gets a header built by hand
 * (mqlog's encodePublishHeader) plus a view of the inbound payload (one QoS 0 header is shared); a 5.0 subscriber goes
 * through mqtt-packet as in `forward`.
 */
function forwardScanned(topic: string, packet: Buffer, topicAt: number, topicEnd: number, payloadAt: number, qos: number): void {
  const payload = packet.subarray(payloadAt);
  const topicBytes = packet.subarray(topicAt, topicEnd);
  let qos0Header: Buffer | null = null;
  const deliver = (sub: Subscription): void => {
    const q = qos < sub.qos ? qos : sub.qos;
    const c = sub.client;
    if (c.version === 5) {
      const out = { cmd: 'publish' as const, topic, payload, dup: false, retain: false };
      c.write(mqtt.generate(q === 0 ? { ...out, qos: 0 } : { ...out, qos: 1, messageId: c.nextId() }, { protocolVersion: 5 }));
      return;
    }
    if (q === 0 && qos0Header !== null) {
      c.write(qos0Header);
      c.write(payload);
      return;
    }
    const header = encodePublishHeader(topicBytes, q, false, false, q === 1 ? c.nextId() : 0, payload.length);
    if (q === 0) qos0Header = header;
    c.write(header);
    c.write(payload);
  };
  eachMatch(topic, deliver);
}

const server = net.createServer((socket) => new Client(socket));
server.on('error', (err) => {
  stderr.write(`relay: ${err.message}\n`);
  exit(1);
});
server.listen(port, '127.0.0.1', () => {
  stderr.write(`relay ready on 127.0.0.1:${(server.address() as net.AddressInfo).port}${flush === 'write' ? '' : ` (flush: ${flush})`}${scan ? ' (scan)' : ''}${storeDir === null ? '' : ` (store: ${storeDir})`}\n`);
});
const stop = (): void => {
  server.close();
  exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
