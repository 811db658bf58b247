/**
 * One MQTT client connection of the load: a raw TCP socket, CONNECT/SUBSCRIBE built by
 * mqtt-packet, PUBLISH and acks built by hand (framing.ts), QoS 1/2 flows in both directions,
 * and writes batched per tick into one socket write. It does no accounting itself: it reports
 * deliveries, acks, drains and its end through the callbacks its owner sets.
 *
 * Must not: retry, reconnect, or throw from socket callbacks — every fault ends the
 * connection and is reported once through `onClose(err)`.
 */
import net from 'node:net';
import mqtt from 'mqtt-packet';
import { LoadClientError } from './errors.js';
import { buildAck, buildPublish, decodePublish, DISCONNECT, FrameReader, PACKET_TYPE_PUBLISH, PINGREQ } from './framing.js';
import type { ParserKind, ProtocolLevel, QoS } from './options.js';

/**
 * Typical 5.0 PUBLISH properties, encoded once: Content Type 'application/json', Message
 * Expiry Interval 3600 s, User Property ('trace', 'abc123'). Brokers must store and forward them.
 */
const PUBLISH_PROPERTIES = Buffer.concat([
  Buffer.from([0x03, 0, 16]),
  Buffer.from('application/json'),
  Buffer.from([0x02, 0, 0, 0x0e, 0x10]),
  Buffer.from([0x26, 0, 5]),
  Buffer.from('trace'),
  Buffer.from([0, 6]),
  Buffer.from('abc123'),
]);

/** Session expiry asked for by a persistent MQTT 5 session, in seconds. */
const PERSISTENT_SESSION_EXPIRY_S = 3600;

/** What a connection needs to know to connect. */
export interface ConnectionConfig {
  host: string;
  port: number;
  clientId: string;
  protocolVersion: ProtocolLevel;
  /** 5.0: send PUBLISH_PROPERTIES on every PUBLISH. */
  properties?: boolean;
  clean: boolean;
  keepaliveS: number;
  connectTimeoutMs: number;
  parser: ParserKind;
}

/** Timings of a successful connect, in ms. */
export interface ConnectTiming {
  /** TCP handshake done. */
  tcpMs: number;
  /** CONNACK received: the setup time reported per client. */
  setupMs: number;
}

export class LoadConnection {
  readonly config: ConnectionConfig;
  /** A PUBLISH arrived (already acknowledged as its QoS requires). */
  onPublish: (payload: Buffer, nowNs: bigint) => void = () => {};
  /** One of our QoS 1/2 publishes completed (PUBACK / PUBCOMP). */
  onAcked: () => void = () => {};
  /** The socket drained after a write returned false. */
  onDrain: () => void = () => {};
  /** The connection ended; `err` is null for an orderly close we asked for. */
  onClose: (err: Error | null) => void = () => {};
  /** PINGRESP received. */
  onPingResp: () => void = () => {};

  #socket: net.Socket | null = null;
  readonly #v5: boolean;
  readonly #parser: mqtt.Parser;
  readonly #frames: FrameReader | null;
  #out: Buffer[] = [];
  #flushQueued = false;
  #blocked = false;
  #closed = false;
  #closing = false;
  #nextId = 1;
  #inflight = 0;
  #waiter: { cmd: string; resolve: (p: mqtt.Packet) => void; reject: (e: Error) => void } | null = null;
  #lastSendMs = 0;
  #keepaliveTimer: NodeJS.Timeout | null = null;
  bytesIn = 0;
  bytesOut = 0;
  /**
   * QoS 1/2 publishes the broker accepts unacknowledged: CONNACK's Receive Maximum (MQTT 5),
   * 65535 when it sent none or under 3.1.1 (which has no way to say it).
   */
  receiveMaximum = 65_535;
  /** PINGREQ sent / PINGRESP received. */
  pings = 0;
  pongs = 0;

  constructor(config: ConnectionConfig) {
    this.config = config;
    this.#v5 = config.protocolVersion === 5;
    this.#parser = mqtt.parser({ protocolVersion: config.protocolVersion });
    this.#parser.on('packet', (p: mqtt.Packet) => this.#onPacket(p));
    this.#parser.on('error', (e: unknown) => this.#fail(new LoadClientError('ERR_LOAD_PROTOCOL', String(e), { cause: e })));
    this.#frames =
      config.parser === 'scan'
        ? new FrameReader((buf, start, end) => {
            if ((buf[start] ?? 0) >> 4 === PACKET_TYPE_PUBLISH) this.#onRawPublish(buf, start, end);
            else this.#parser.parse(buf.subarray(start, end));
          })
        : null;
  }

  /** QoS 1/2 publishes sent and not yet completed. */
  get inflight(): number {
    return this.#inflight;
  }

  /** True after a socket write returned false, until it drains. */
  get blocked(): boolean {
    return this.#blocked;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Opens TCP, sends CONNECT, waits for a successful CONNACK. Rejects with a coded error. */
  connect(): Promise<ConnectTiming> {
    const t0 = performance.now();
    let tcpMs = 0;
    return new Promise<ConnectTiming>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        fail(new LoadClientError('ERR_LOAD_CONNECT_TIMEOUT', `no CONNACK within ${this.config.connectTimeoutMs} ms`));
      }, this.config.connectTimeoutMs);
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#waiter = null;
        this.#closing = true;
        this.#socket?.destroy();
        this.#closed = true;
        reject(err);
      };
      let socket: net.Socket;
      try {
        socket = net.connect({ host: this.config.host, port: this.config.port, noDelay: true });
      } catch (err) {
        fail(err as Error);
        return;
      }
      this.#socket = socket;
      socket.on('error', (err) => (settled ? this.#fail(err) : fail(err)));
      socket.on('close', () => (settled ? this.#fail(new LoadClientError('ERR_LOAD_CLOSED', 'connection closed by peer')) : fail(Object.assign(new Error('connection closed before CONNACK'), { code: 'ECONNRESET' }))));
      socket.on('drain', () => {
        this.#blocked = false;
        this.onDrain();
      });
      socket.on('data', (chunk: Buffer) => {
        this.bytesIn += chunk.length;
        try {
          if (this.#frames !== null) this.#frames.push(chunk);
          else this.#parser.parse(chunk);
        } catch (err) {
          this.#fail(err as Error);
        }
      });
      socket.once('connect', () => {
        tcpMs = performance.now() - t0;
        const connect: mqtt.IConnectPacket = {
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: this.config.protocolVersion,
          clientId: this.config.clientId,
          clean: this.config.clean,
          keepalive: this.config.keepaliveS,
        };
        if (this.#v5 && !this.config.clean) connect.properties = { sessionExpiryInterval: PERSISTENT_SESSION_EXPIRY_S };
        this.#expect('connack').then((p) => {
          const ack = p as mqtt.IConnackPacket;
          const code = ack.reasonCode ?? ack.returnCode ?? 0;
          if (ack.properties?.receiveMaximum !== undefined) this.receiveMaximum = ack.properties.receiveMaximum;
          if (code !== 0) fail(new LoadClientError('ERR_LOAD_CONNACK_REFUSED', `CONNACK refused with code ${code}`));
          else if (!settled) {
            settled = true;
            clearTimeout(timer);
            this.#startKeepalive();
            resolve({ tcpMs, setupMs: performance.now() - t0 });
          }
        }, fail);
        this.#write(mqtt.generate(connect, { protocolVersion: this.config.protocolVersion }));
      });
    });
  }

  /** Subscribes to `filters` at `qos`; rejects when the broker refuses any of them. */
  async subscribe(filters: string[], qos: QoS): Promise<void> {
    const messageId = this.#allocId();
    const wait = this.#expect('suback');
    this.#write(
      mqtt.generate(
        { cmd: 'subscribe', messageId, subscriptions: filters.map((topic) => ({ topic, qos })) },
        { protocolVersion: this.config.protocolVersion },
      ),
    );
    const ack = (await wait) as mqtt.ISubackPacket;
    const granted = ack.granted as number[];
    if (granted.some((g) => g >= 0x80)) {
      throw new LoadClientError('ERR_LOAD_SUBACK_REFUSED', `SUBACK refused: ${granted.join(',')}`);
    }
  }

  /**
   * Sends one PUBLISH. `stamp(packet, payloadAt)` fills the per-message payload fields right
   * before the packet is queued. QoS 1/2 publishes count as inflight until acknowledged.
   */
  publish(topic: Buffer, payload: Buffer, qos: QoS, stamp: (packet: Buffer, payloadAt: number) => void): void {
    const id = qos > 0 ? this.#allocId() : 0;
    const { packet, payloadAt } = buildPublish(topic, payload, qos, id, this.#v5, this.config.properties === true ? PUBLISH_PROPERTIES : null);
    stamp(packet, payloadAt);
    if (qos > 0) this.#inflight++;
    this.#write(packet);
  }

  /**
   * Keeps the connection alive: a PINGREQ whenever nothing was sent for half the keepalive
   * (a QoS 0 subscriber never sends anything else, and brokers close at 1.5 × keepalive).
   */
  #startKeepalive(): void {
    const ks = this.config.keepaliveS;
    if (ks === 0) return;
    const halfMs = (ks * 1000) / 2;
    this.#lastSendMs = performance.now();
    // Checked twice per half keepalive, so a ping goes out at the latest 3/4 into the keepalive.
    this.#keepaliveTimer = setInterval(() => {
      if (this.#closed) return;
      if (performance.now() - this.#lastSendMs >= halfMs) {
        this.pings++;
        this.#write(PINGREQ);
      }
    }, halfMs / 2);
    this.#keepaliveTimer.unref();
  }

  #stopKeepalive(): void {
    if (this.#keepaliveTimer !== null) clearInterval(this.#keepaliveTimer);
    this.#keepaliveTimer = null;
  }

  /** Sends DISCONNECT (when still open) and closes the socket. */
  close(): Promise<void> {
    this.#stopKeepalive();
    if (this.#closed || this.#socket === null) return Promise.resolve();
    this.#closing = true;
    const socket = this.#socket;
    return new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      this.#flush();
      socket.end(DISCONNECT);
      setTimeout(() => socket.destroy(), 1000).unref();
    });
  }

  /** Destroys the socket at once (hard stop). */
  destroy(): void {
    this.#stopKeepalive();
    this.#closing = true;
    this.#socket?.destroy();
    this.#closed = true;
  }

  #allocId(): number {
    const id = this.#nextId;
    this.#nextId = id === 65_535 ? 1 : id + 1;
    return id;
  }

  #expect(cmd: string): Promise<mqtt.Packet> {
    return new Promise((resolve, reject) => {
      this.#waiter = { cmd, resolve, reject };
    });
  }

  #write(buf: Buffer): void {
    if (this.#closed) return;
    this.#out.push(buf);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushQueued = false;
    const socket = this.#socket;
    if (socket === null || this.#out.length === 0 || this.#closed) return;
    const data = this.#out.length === 1 ? (this.#out[0] as Buffer) : Buffer.concat(this.#out);
    this.#out = [];
    this.bytesOut += data.length;
    this.#lastSendMs = performance.now();
    if (!socket.write(data)) this.#blocked = true;
  }

  #onRawPublish(buf: Buffer, start: number, end: number): void {
    const view = decodePublish(buf, start, end, this.#v5);
    if (view === null) {
      this.#fail(new LoadClientError('ERR_LOAD_PROTOCOL', 'malformed PUBLISH'));
      return;
    }
    this.#delivered(view.payload, view.qos, view.messageId);
  }

  #delivered(payload: Buffer, qos: number, messageId: number): void {
    if (qos === 1) this.#write(buildAck(0x40, messageId));
    else if (qos === 2) this.#write(buildAck(0x50, messageId));
    this.onPublish(payload, process.hrtime.bigint());
  }

  #onPacket(p: mqtt.Packet): void {
    switch (p.cmd) {
      case 'publish': {
        const payload = typeof p.payload === 'string' ? Buffer.from(p.payload) : p.payload;
        this.#delivered(payload, p.qos, p.messageId ?? 0);
        return;
      }
      case 'puback':
      case 'pubcomp':
        this.#inflight--;
        this.onAcked();
        return;
      case 'pubrec':
        this.#write(buildAck(0x62, p.messageId ?? 0));
        return;
      case 'pubrel':
        this.#write(buildAck(0x70, p.messageId ?? 0));
        return;
      case 'pingresp':
        this.pongs++;
        this.onPingResp();
        return;
      case 'disconnect':
        this.#fail(new LoadClientError('ERR_LOAD_CLOSED', `broker sent DISCONNECT (reason ${p.reasonCode ?? 0})`));
        return;
      default: {
        const w = this.#waiter;
        if (w !== null && w.cmd === p.cmd) {
          this.#waiter = null;
          w.resolve(p);
        }
      }
    }
  }

  #fail(err: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopKeepalive();
    this.#socket?.destroy();
    const w = this.#waiter;
    this.#waiter = null;
    w?.reject(err);
    this.onClose(this.#closing ? null : err);
  }
}
