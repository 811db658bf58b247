/**
 * Brokers for the load client's tests, on 127.0.0.1 port 0, torn down with the test:
 * - startAedes: the real aedes broker in this process;
 * - startRelay: a deliberately small MQTT 3.1.1/5.0 relay (QoS 0/1/2, `+`/`#` filters) that
 *   can drop, duplicate or swap deliveries on purpose, so loss/duplicate/reorder detection is
 *   tested against a real socket. aedes has no MQTT 5, so 5.0 runs against the relay too.
 */
import type { ExecutionContext } from 'ava';
import { Aedes } from 'aedes';
import mqtt from 'mqtt-packet';
import net from 'node:net';

export interface TestBroker {
  port: number;
  close(): Promise<void>;
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

/** Starts aedes on a free loopback port. */
export async function startAedes(t: ExecutionContext): Promise<TestBroker> {
  const aedes = await Aedes.createBroker();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    aedes.handle(s);
  });
  const port = await listen(server);
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    await new Promise<void>((r) => aedes.close(() => r()));
  };
  t.teardown(close);
  return { port, close };
}

/** What the relay should do wrong, counted over all deliveries. */
export interface RelayFaults {
  /** Drop every n-th delivery. */
  dropEvery?: number;
  /** Send every n-th delivery twice. */
  duplicateEvery?: number;
  /** Hold every n-th delivery back and send it after the next one to the same subscriber. */
  swapEvery?: number;
  /**
   * MQTT 5 Receive Maximum to announce in CONNACK. The relay then acknowledges inbound QoS 1
   * publishes only once that many are outstanding, and drops a client that sends more.
   */
  receiveMaximum?: number;
}

/** MQTT topic filter match with `+` and `#`. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

interface Conn {
  socket: net.Socket;
  unacked: number[];
  version: 4 | 5;
  subs: { filter: string; qos: number }[];
  nextId: number;
  held: Buffer | null;
}

/** Starts the fault-injecting relay. `stats.delivered` counts deliveries actually written. */
export async function startRelay(t: ExecutionContext, faults: RelayFaults = {}): Promise<TestBroker & { stats: { delivered: number; dropped: number; violations: number } }> {
  const conns = new Set<Conn>();
  const stats = { delivered: 0, dropped: 0, violations: 0 };
  let n = 0;
  const deliver = (to: Conn, topic: string, payload: Buffer, qos: number): void => {
    n++;
    if (faults.dropEvery !== undefined && n % faults.dropEvery === 0) {
      stats.dropped++;
      return;
    }
    const messageId = qos > 0 ? to.nextId++ : undefined;
    if (to.nextId > 65_535) to.nextId = 1;
    const packet: mqtt.IPublishPacket = { cmd: 'publish', topic, payload, qos: qos as mqtt.QoS, dup: false, retain: false };
    if (messageId !== undefined) packet.messageId = messageId;
    const bytes = mqtt.generate(packet, { protocolVersion: to.version });
    if (faults.swapEvery !== undefined && n % faults.swapEvery === 0 && to.held === null) {
      to.held = bytes;
      return;
    }
    to.socket.write(bytes);
    stats.delivered++;
    if (faults.duplicateEvery !== undefined && n % faults.duplicateEvery === 0) {
      to.socket.write(bytes);
      stats.delivered++;
    }
    if (to.held !== null) {
      to.socket.write(to.held);
      to.held = null;
      stats.delivered++;
    }
  };
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    const parser = mqtt.parser({ protocolVersion: 4 }) as mqtt.Parser & { settings: { protocolVersion: number } };
    const conn: Conn = { socket, unacked: [], version: 4, subs: [], nextId: 1, held: null };
    const send = (p: mqtt.Packet): void => {
      socket.write(mqtt.generate(p, { protocolVersion: conn.version }));
    };
    parser.on('packet', (p: mqtt.Packet) => {
      switch (p.cmd) {
        case 'connect':
          conn.version = p.protocolVersion === 5 ? 5 : 4;
          parser.settings.protocolVersion = conn.version;
          conns.add(conn);
          if (conn.version === 5) {
            const ack: mqtt.IConnackPacket = { cmd: 'connack', sessionPresent: false, reasonCode: 0 };
            if (faults.receiveMaximum !== undefined) ack.properties = { receiveMaximum: faults.receiveMaximum };
            send(ack);
          } else send({ cmd: 'connack', sessionPresent: false, returnCode: 0 });
          break;
        case 'subscribe':
          for (const s of p.subscriptions) conn.subs.push({ filter: s.topic, qos: s.qos });
          send({ cmd: 'suback', messageId: p.messageId ?? 0, granted: p.subscriptions.map((s) => s.qos) });
          break;
        case 'publish': {
          const payload = typeof p.payload === 'string' ? Buffer.from(p.payload) : p.payload;
          const max = faults.receiveMaximum;
          if (p.qos === 1 && max !== undefined) {
            if (conn.unacked.length >= max) {
              stats.violations++;
              socket.destroy();
              return;
            }
            conn.unacked.push(p.messageId ?? 0);
            // Acknowledge after the rest of this read was parsed: a client that ignores the
            // limit has sent more by then.
            if (conn.unacked.length === max) setImmediate(() => {
              for (const id of conn.unacked.splice(0)) send({ cmd: 'puback', messageId: id });
            });
          } else if (p.qos === 1) send({ cmd: 'puback', messageId: p.messageId ?? 0 });
          if (p.qos === 2) send({ cmd: 'pubrec', messageId: p.messageId ?? 0 });
          for (const c of conns) {
            const sub = c.subs.find((s) => topicMatches(s.filter, p.topic));
            if (sub !== undefined) deliver(c, p.topic, payload, Math.min(sub.qos, p.qos));
          }
          break;
        }
        case 'pubrel':
          send({ cmd: 'pubcomp', messageId: p.messageId ?? 0 });
          break;
        case 'pubrec':
          send({ cmd: 'pubrel', messageId: p.messageId ?? 0 });
          break;
        case 'pingreq':
          send({ cmd: 'pingresp' });
          break;
        case 'disconnect':
          socket.end();
          break;
        default:
          break;
      }
    });
    parser.on('error', () => socket.destroy());
    socket.on('data', (d: Buffer) => parser.parse(d));
    socket.on('error', () => {});
    socket.on('close', () => conns.delete(conn));
  });
  const port = await listen(server);
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const c of conns) c.socket.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  t.teardown(close);
  return { port, close, stats };
}

/** A loopback port with nothing listening (bound, then closed). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  const port = await listen(server);
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}
