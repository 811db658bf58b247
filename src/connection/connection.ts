/**
 * One client connection: the MQTT state machine between a byte stream and the router.
 *
 *   socket 'data' ─► PacketFramer (whole packets, size judged from the fixed header)
 *        ├─ PUBLISH, PUBACK/REC/REL/COMP, PINGREQ: scanned by hand (the hot path)
 *        └─ everything else: mqtt-packet's parser ─► handlers
 *   router ─► Outlet methods ─► header Buffer + payload view ─► socket (corked per tick: one writev)
 *
 * Owns: protocol validation (CONNECT first and once, client id rules, topic rules, packet size),
 * keepalive bookkeeping (checked by the server's sweep), the Will, and turning every violation
 * into a log line and a closed socket for this client only. Never touches commit logs.
 *
 * Takes any Duplex stream, not only a net.Socket, so TLS, WebSocket and PROXY-protocol wrappers
 * can sit in front of it later.
 */
import { isUtf8 } from 'node:buffer';
import type { Duplex } from 'node:stream';
import mqtt from 'mqtt-packet';
import type { IConnectPacket, ISubscribePacket, IUnsubscribePacket, Packet, Parser } from 'mqtt-packet';
import { isValidTopicFilter, isValidTopicName, type Outlet, type QoS, type Router, type Session } from '../../router/index.js';
import { encodeAck, encodePublishHeader, PINGRESP } from '../protocol/encode.js';
import { MqttProtocolError } from '../protocol/errors.js';
import { PacketFramer } from '../protocol/framer.js';
import { CONNACK_311, REASON } from '../protocol/reason-codes.js';

/** What a connection needs from the server around it. */
export interface ConnectionHost {
  readonly router: Router;
  readonly logger: ConnectionLogger;
  readonly limits: ConnectionLimits;
  /** Registers `conn` under its client id; returns the connection it replaces, if any. */
  claim(clientId: string, conn: Connection): Connection | undefined;
  /** Called once when the connection is gone. */
  released(conn: Connection): void;
  /** Counters shared by every connection (for $SYS). */
  readonly counters: { packetsIn: number; packetsOut: number; bytesIn: number; bytesOut: number };
}

export interface ConnectionLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ConnectionLimits {
  /** Largest packet accepted, in bytes, judged from the fixed header. */
  maxPacketBytes: number;
  /** Highest QoS granted on SUBSCRIBE. */
  maxQos: QoS;
  /** Milliseconds a new connection may take to send CONNECT. */
  connectTimeoutMs: number;
  /** Socket bytes queued before the router stops pulling for this client. */
  writeHighWaterBytes: number;
}

type Phase = 'awaiting-connect' | 'connected' | 'closed';

let nextConnectionNumber = 0;

export class Connection implements Outlet {
  /** Process-local number, for logs. */
  readonly number = ++nextConnectionNumber;
  readonly remote: string;
  readonly #stream: Duplex;
  readonly #host: ConnectionHost;
  readonly #parser: Parser;
  readonly #framer: PacketFramer;
  #phase: Phase = 'awaiting-connect';
  #clientId = '';
  #session: Session | null = null;
  #keepaliveMs = 0;
  /** Date.now() of the last bytes received; the server's sweep compares it with the keepalive. */
  lastReceivedAt: number;
  readonly openedAt: number;
  #will: IConnectPacket['will'] | null = null;
  #corked = false;
  #blocked = false;

  constructor(stream: Duplex, host: ConnectionHost, remote: string) {
    this.#stream = stream;
    this.#host = host;
    this.remote = remote;
    this.openedAt = this.lastReceivedAt = Date.now();
    this.#framer = new PacketFramer(host.limits.maxPacketBytes);
    this.#parser = mqtt.parser({ protocolVersion: 4 });
    this.#parser.on('packet', (packet: Packet) => this.#onPacket(packet));
    this.#parser.on('error', (err: Error) => this.#onParseError(err));
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('drain', () => this.#onDrain());
    stream.on('error', (err: Error) => this.#close('socket error: ' + err.message, true));
    stream.on('close', () => this.#close('socket closed', true));
    stream.on('end', () => this.#close('client closed the connection', true));
  }

  get clientId(): string {
    return this.#clientId;
  }

  get keepaliveMs(): number {
    return this.#keepaliveMs;
  }

  get connected(): boolean {
    return this.#phase === 'connected';
  }

  // ── inbound ──────────────────────────────────────────────────────────────────────────────

  #onData(chunk: Buffer): void {
    if (this.#phase === 'closed') return;
    this.lastReceivedAt = Date.now();
    this.#host.counters.bytesIn += chunk.length;
    const verdict = this.#framer.push(chunk, this.#onFrame);
    if (verdict === 'ok') return;
    this.#fail(
      verdict === 'too-large'
        ? new MqttProtocolError('ERR_MQTT_PACKET_TOO_LARGE', `packet of ${this.#framer.lastDeclaredBytes} bytes exceeds the limit of ${this.#host.limits.maxPacketBytes}`)
        : new MqttProtocolError('ERR_MQTT_MALFORMED', 'remaining length longer than four bytes'),
    );
  }

  /**
   * One whole packet. Once connected, the packets that make up nearly all traffic are decoded
   * here by hand; mqtt-packet gets the rest, one whole packet at a time so its state stays in step.
   */
  readonly #onFrame = (packet: Buffer, at: number): void => {
    if (this.#phase !== 'connected') {
      if (this.#phase === 'awaiting-connect') this.#parser.parse(packet);
      return;
    }
    const first = packet[0] as number;
    const session = this.#session as Session;
    switch (first >> 4) {
      case 3:
        this.#host.counters.packetsIn++;
        this.#scanPublish(packet, at, first, session);
        return;
      case 4:
      case 5:
      case 6:
      case 7: {
        // [MQTT-3.6.1-1] PUBREL's flags are 0b0010; the others' are 0
        const flagsOk = (first & 0x0f) === (first >> 4 === 6 ? 2 : 0);
        if (!flagsOk || packet.length - at !== 2) break; // let the parser name the error
        this.#host.counters.packetsIn++;
        this.#onAck(first >> 4, packet.readUInt16BE(at), session);
        return;
      }
      case 12:
        if (first !== 0xc0 || packet.length !== 2) break;
        this.#host.counters.packetsIn++;
        this.#write(PINGRESP);
        return;
    }
    this.#parser.parse(packet);
  };

  /** PUBLISH, 3.1.1: topic length, topic, packet id when QoS > 0, payload [MQTT-3.3]. */
  #scanPublish(packet: Buffer, at: number, first: number, session: Session): void {
    const qos = (first >> 1) & 3;
    if (qos === 3) {
      this.#fail(new MqttProtocolError('ERR_MQTT_MALFORMED', 'PUBLISH with both QoS bits set [MQTT-3.3.1-4]'));
      return;
    }
    const end = packet.length;
    if (at + 2 > end) {
      this.#fail(new MqttProtocolError('ERR_MQTT_MALFORMED', 'PUBLISH too short for its topic length'));
      return;
    }
    const topicEnd = at + 2 + packet.readUInt16BE(at);
    if (topicEnd + (qos > 0 ? 2 : 0) > end) {
      this.#fail(new MqttProtocolError('ERR_MQTT_MALFORMED', 'PUBLISH topic runs past the packet'));
      return;
    }
    const topicBytes = packet.subarray(at + 2, topicEnd);
    if (!isUtf8(topicBytes)) {
      this.#fail(new MqttProtocolError('ERR_MQTT_TOPIC_INVALID', 'PUBLISH topic is not valid UTF-8 [MQTT-1.5.3-1]'));
      return;
    }
    let pid = 0;
    let pos = topicEnd;
    if (qos > 0) {
      pid = packet.readUInt16BE(pos);
      pos += 2;
      if (pid === 0) {
        this.#fail(new MqttProtocolError('ERR_MQTT_PROTOCOL', 'PUBLISH with packet id 0 [MQTT-2.3.1-1]'));
        return;
      }
    }
    this.#publish(topicBytes.toString('utf8'), qos as QoS, (first & 1) === 1, pid, packet.subarray(pos), session);
  }

  #onAck(type: number, pid: number, session: Session): void {
    const router = this.#host.router;
    switch (type) {
      case 4:
        router.puback(session, pid);
        return;
      case 5:
        // answer PUBREL even for an id we no longer know, so the client can finish [MQTT-4.3.3-1]
        router.pubrec(session, pid);
        this.#write(encodeAck(0x62, pid));
        return;
      case 6:
        router.release(session, pid);
        this.#write(encodeAck(0x70, pid)); // PUBCOMP, always [MQTT-4.3.3-2]
        return;
      case 7:
        router.pubcomp(session, pid);
        return;
    }
  }

  #onParseError(err: Error): void {
    if (this.#phase === 'awaiting-connect' && err.message === 'Invalid protocol version') {
      // mqtt-packet refuses the level before we see the CONNECT; answer it as the spec asks
      this.#sendConnack(CONNACK_311.UNACCEPTABLE_PROTOCOL_VERSION, false); // [MQTT-3.1.2-2]
    }
    this.#fail(new MqttProtocolError('ERR_MQTT_MALFORMED', err.message, { cause: err }));
  }

  #onPacket(packet: Packet): void {
    if (this.#phase === 'closed') return;
    this.#host.counters.packetsIn++;
    if (this.#phase === 'awaiting-connect') {
      if (packet.cmd !== 'connect') {
        this.#fail(new MqttProtocolError('ERR_MQTT_CONNECT_FIRST', `first packet was ${packet.cmd}, not CONNECT [MQTT-3.1.0-1]`));
        return;
      }
      this.#onConnect(packet);
      return;
    }
    const session = this.#session as Session;
    const router = this.#host.router;
    switch (packet.cmd) {
      case 'publish':
      case 'puback':
      case 'pubrec':
      case 'pubrel':
      case 'pubcomp':
      case 'pingreq':
        // reached only through #onFrame's scanners; the parser sees them only when malformed
        this.#fail(new MqttProtocolError('ERR_MQTT_MALFORMED', `malformed ${packet.cmd}`));
        return;
      case 'subscribe':
        this.#onSubscribe(packet, session);
        return;
      case 'unsubscribe':
        this.#onUnsubscribe(packet, session);
        return;
      case 'disconnect':
        this.#will = null; // [MQTT-3.14.4-3] a DISCONNECT discards the Will
        this.#close('client sent DISCONNECT', false);
        return;
      case 'connect':
        this.#fail(new MqttProtocolError('ERR_MQTT_SECOND_CONNECT', 'second CONNECT on one connection [MQTT-3.1.0-2]'));
        return;
      default:
        this.#fail(new MqttProtocolError('ERR_MQTT_PROTOCOL', `unexpected ${packet.cmd} from a client`));
    }
  }

  #onConnect(packet: IConnectPacket): void {
    const version = packet.protocolVersion ?? 4;
    if (version !== 3 && version !== 4) {
      // 5.0 arrives with its own issue; answer in the client's own version so it can tell why
      const connack = mqtt.generate(
        { cmd: 'connack', reasonCode: REASON.UNSUPPORTED_PROTOCOL_VERSION, sessionPresent: false },
        { protocolVersion: version },
      );
      this.#write(connack);
      this.#fail(new MqttProtocolError('ERR_MQTT_PROTOCOL', `protocol level ${version} is not supported yet`));
      return;
    }
    const clean = packet.clean !== false;
    let clientId = packet.clientId;
    if (clientId.length === 0) {
      if (!clean) {
        this.#sendConnack(CONNACK_311.IDENTIFIER_REJECTED, false);
        this.#fail(new MqttProtocolError('ERR_MQTT_PROTOCOL', 'empty client id without clean session [MQTT-3.1.3-8]'));
        return;
      }
      clientId = `mqlog-${process.pid.toString(36)}-${this.number.toString(36)}-${Date.now().toString(36)}`;
    }
    if (clientId.includes('\uFFFD') || clientId.includes('\u0000')) {
      this.#sendConnack(CONNACK_311.IDENTIFIER_REJECTED, false);
      this.#fail(new MqttProtocolError('ERR_MQTT_MALFORMED', 'client id is not valid UTF-8 [MQTT-1.5.3-1]'));
      return;
    }
    if (packet.will) {
      if (!isValidTopicName(packet.will.topic) || packet.will.topic.includes('\uFFFD')) {
        this.#fail(new MqttProtocolError('ERR_MQTT_TOPIC_INVALID', `invalid will topic '${packet.will.topic}'`));
        return;
      }
      this.#will = packet.will;
    }
    this.#clientId = clientId;
    this.#keepaliveMs = (packet.keepalive ?? 0) * 1000;
    const previous = this.#host.claim(clientId, this);
    if (previous !== undefined) previous.takenOver();
    const { session, present } = this.#host.router.attach(clientId, clean, this);
    this.#session = session;
    this.#phase = 'connected';
    this.#sendConnack(CONNACK_311.ACCEPTED, present && !clean); // [MQTT-3.2.2-1], [MQTT-3.2.2-2]
    this.#host.logger.debug({ clientId, remote: this.remote, clean, sessionPresent: present }, 'client connected');
  }

  #sendConnack(returnCode: number, sessionPresent: boolean): void {
    this.#write(Buffer.from([0x20, 0x02, sessionPresent ? 1 : 0, returnCode]));
  }

  #publish(topic: string, qos: QoS, retain: boolean, pid: number, payload: Buffer, session: Session): void {
    if (!isValidTopicName(topic)) {
      this.#fail(new MqttProtocolError('ERR_MQTT_TOPIC_INVALID', `invalid PUBLISH topic '${topic}' [MQTT-3.3.2-2]`));
      return;
    }
    const router = this.#host.router;
    const topicId = router.intern(topic);
    if (qos === 0) {
      router.publish(session, topicId, 0, retain, payload, null, 0, null);
      return;
    }
    if (qos === 2) {
      const state = router.beginQos2(session, pid);
      if (state === 'stored') {
        this.#write(encodeAck(0x50, pid)); // a resend: acknowledge, store nothing [MQTT-4.3.3-2]
        return;
      }
      if (state === 'storing') return; // PUBREC follows when the first copy commits
    }
    router.publish(session, topicId, qos, retain, payload, null, pid, this);
  }

  #onSubscribe(packet: ISubscribePacket, session: Session): void {
    const granted: number[] = [];
    const accepted: Array<[string, QoS]> = [];
    for (const sub of packet.subscriptions) {
      if (!isValidTopicFilter(sub.topic) || sub.topic.includes('\uFFFD')) {
        granted.push(0x80); // failure for this filter [MQTT-3.9.3]
        this.#host.logger.info({ clientId: this.#clientId, filter: sub.topic }, 'invalid topic filter refused');
        continue;
      }
      const qos = (sub.qos < this.#host.limits.maxQos ? sub.qos : this.#host.limits.maxQos) as QoS;
      granted.push(qos);
      accepted.push([sub.topic, qos]);
    }
    // SUBACK first, then retained messages [MQTT-3.8.4-1]
    this.#write(mqtt.generate({ cmd: 'suback', messageId: packet.messageId ?? 0, granted }));
    for (const [filter, qos] of accepted) this.#host.router.subscribe(session, filter, qos);
  }

  #onUnsubscribe(packet: IUnsubscribePacket, session: Session): void {
    for (const filter of packet.unsubscriptions) this.#host.router.unsubscribe(session, filter);
    this.#write(encodeAck(0xb0, packet.messageId ?? 0));
  }

  // ── outbound (the Outlet the router talks to) ────────────────────────────────────────────

  get writable(): boolean {
    return this.#phase === 'connected' && !this.#blocked;
  }

  publish(topic: Buffer, qos: QoS, retain: boolean, dup: boolean, packetId: number, payload: Buffer, _properties: Buffer | null): void {
    if (this.#phase !== 'connected') return;
    this.#write(encodePublishHeader(topic, qos, retain, dup, packetId, payload.length));
    if (payload.length > 0) this.#write(payload);
  }

  pubrel(packetId: number): void {
    if (this.#phase === 'connected') this.#write(encodeAck(0x62, packetId));
  }

  stored(packetId: number, qos: 1 | 2): void {
    if (this.#phase === 'connected') this.#write(encodeAck(qos === 1 ? 0x40 : 0x50, packetId));
  }

  storeFailed(packetId: number, _qos: 1 | 2, error: Error): void {
    // 3.1.1 has no negative PUBACK: close, so the client resends on its next connection
    this.#fail(new MqttProtocolError('ERR_MQTT_STORE_FAILED', `PUBLISH ${packetId} could not be stored: ${error.message}`, { cause: error }));
  }

  /** Queues bytes; the first write in a tick corks the stream and the tick's end uncorks it. */
  #write(buf: Buffer): void {
    const stream = this.#stream;
    if (stream.destroyed) return;
    if (!this.#corked) {
      this.#corked = true;
      stream.cork();
      process.nextTick(this.#uncork);
    }
    this.#host.counters.bytesOut += buf.length;
    if (!stream.write(buf) || stream.writableLength > this.#host.limits.writeHighWaterBytes) this.#blocked = true;
  }

  readonly #uncork = (): void => {
    this.#corked = false;
    this.#stream.uncork();
  };

  #onDrain(): void {
    if (!this.#blocked) return;
    this.#blocked = false;
    if (this.#session !== null && this.#phase === 'connected') this.#host.router.resume(this.#session);
  }

  // ── closing ──────────────────────────────────────────────────────────────────────────────

  /** Called by the server's keepalive/connect-timeout sweep. */
  expire(now: number): boolean {
    if (this.#phase === 'awaiting-connect' && now - this.openedAt > this.#host.limits.connectTimeoutMs) {
      this.#fail(new MqttProtocolError('ERR_MQTT_CONNECT_TIMEOUT', `no CONNECT within ${this.#host.limits.connectTimeoutMs} ms`));
      return true;
    }
    // [MQTT-3.1.2-24] one and a half times the keepalive without a packet
    if (this.#phase === 'connected' && this.#keepaliveMs > 0 && now - this.lastReceivedAt > this.#keepaliveMs * 1.5) {
      this.#fail(new MqttProtocolError('ERR_MQTT_KEEPALIVE_TIMEOUT', `nothing received for ${now - this.lastReceivedAt} ms (keepalive ${this.#keepaliveMs / 1000} s)`));
      return true;
    }
    return false;
  }

  /** Another connection claimed this client id [MQTT-3.1.4-2]: close without the Will. */
  takenOver(): void {
    this.#will = null;
    this.#close('session taken over by a new connection', false);
  }

  /** Server shutdown: close without publishing the Will. */
  shutdown(): void {
    this.#will = null;
    this.#close('server shutting down', false);
  }

  #fail(err: MqttProtocolError): void {
    if (this.#phase === 'closed') return;
    this.#host.logger.warn(
      { clientId: this.#clientId || undefined, remote: this.remote, code: err.code, reasonCode: err.reasonCode },
      `disconnecting client: ${err.message}`,
    );
    this.#close(err.message, true);
  }

  #close(reason: string, abnormal: boolean): void {
    if (this.#phase === 'closed') return;
    const wasConnected = this.#phase === 'connected';
    this.#phase = 'closed';
    this.#parser.removeAllListeners('packet');
    if (this.#corked) {
      this.#corked = false;
      this.#stream.uncork();
    }
    this.#stream.end();
    setTimeout(() => this.#stream.destroy(), 1000).unref();
    const router = this.#host.router;
    if (wasConnected && abnormal && this.#will) {
      const will = this.#will;
      this.#will = null;
      const payload = typeof will.payload === 'string' ? Buffer.from(will.payload) : will.payload;
      try {
        router.publish(null, router.intern(will.topic), (will.qos ?? 0) as QoS, will.retain === true, payload, null, 0, null);
      } catch (err) {
        this.#host.logger.warn({ err, clientId: this.#clientId }, 'will message not published');
      }
    }
    if (this.#session !== null) router.detach(this.#session, this);
    this.#host.released(this);
    if (wasConnected) this.#host.logger.debug({ clientId: this.#clientId, reason }, 'client disconnected');
  }
}
