/**
 * One client connection: the MQTT 3.1.1 / 5.0 state machine between a byte stream and the router.
 *
 *   socket 'data' ─► PacketFramer (whole packets, size judged from the fixed header)
 *        ├─ PUBLISH, PUBACK/REC/REL/COMP, PINGREQ: scanned by hand (the hot path)
 *        └─ everything else: mqtt-packet's parser ─► handlers
 *   router ─► Outlet methods ─► header Buffer + payload view ─► socket (corked per tick: one writev)
 *
 * Owns: protocol validation (CONNECT first and once, client id rules, topic rules, packet size),
 * MQTT 5 negotiation (session expiry, receive maximum and maximum packet size both ways, topic
 * aliases both ways, server keep alive), keepalive bookkeeping (checked by the server's sweep),
 * the Will, and turning every violation into a reason code (a DISCONNECT for 5.0 clients), a log
 * line and a closed socket for this client only. Never touches commit logs.
 *
 * Takes any Duplex stream, not only a net.Socket, so TLS, WebSocket and PROXY-protocol wrappers
 * can sit in front of it later.
 */
import { isUtf8 } from 'node:buffer';
import type { Duplex } from 'node:stream';
import mqtt from 'mqtt-packet';
import type { IAuthPacket, IConnectPacket, IDisconnectPacket, ISubscribePacket, IUnsubscribePacket, Packet, Parser } from 'mqtt-packet';
import {
  isValidTopicFilter,
  isValidTopicName,
  parseShared,
  type Outlet,
  type QoS,
  type Router,
  type Session,
  type SubscriptionOptions,
  type TopicId,
} from '../../router/index.js';
import type { AuthContext, AuthMethod, AuthStep } from '../auth/auth-method.js';
import { encodeAck, encodePublishHeader, PINGRESP } from '../protocol/encode.js';
import { MqttProtocolError, type MqttProtocolErrorCode } from '../protocol/errors.js';
import { PacketFramer } from '../protocol/framer.js';
import { LastTopic } from '../protocol/last-topic.js';
import { encodePublishHeaderV5, encodeWillProperties, newPublishProperties, scanPublishProperties } from '../protocol/properties.js';
import { CONNACK_311, REASON, type ReasonCode } from '../protocol/reason-codes.js';

/** What a connection needs from the server around it. */
export interface ConnectionHost {
  readonly router: Router;
  readonly logger: ConnectionLogger;
  readonly limits: ConnectionLimits;
  /** Registers `conn` under its client id; returns the connection it replaces, if any. */
  claim(clientId: string, conn: Connection): Connection | undefined;
  /** Called once when the connection is gone. */
  released(conn: Connection): void;
  /** A Will to publish now, or after its delay unless the session comes back first. */
  will(clientId: string, will: PendingWill, delaySec: number, sessionExpirySec: number): void;
  /** A connection resumed `clientId`'s session: a delayed Will for it is cancelled [MQTT-3.1.3-9]. */
  resumed(clientId: string): void;
  /** Counters shared by every connection (for $SYS). */
  readonly counters: { packetsIn: number; packetsOut: number; bytesIn: number; bytesOut: number };
  /** MQTT 5 enhanced authentication methods, by name. */
  readonly authMethods: ReadonlyMap<string, AuthMethod>;
}

/** Everything CONNECT decided, held while an enhanced authentication exchange runs. */
interface ConnectPlan {
  clientId: string;
  assigned: boolean;
  clean: boolean;
  sessionExpiry: number;
  receiveMaximum: number;
  keepalive: number;
  serverKeepAlive: boolean;
  responseInformation: boolean;
}

/** An authentication exchange in progress. */
interface AuthExchange {
  method: AuthMethod;
  ctx: AuthContext;
  state: unknown;
  /** Before CONNACK: the CONNECT being completed; null for a re-authentication. */
  plan: ConnectPlan | null;
}

/** A Will Message ready for the router. */
export interface PendingWill {
  topic: string;
  qos: QoS;
  retain: boolean;
  payload: Buffer;
  properties: Buffer | null;
  expiry: number;
}

export interface ConnectionLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ConnectionLimits {
  /** Largest packet accepted, in bytes, judged from the fixed header. */
  maxPacketBytes: number;
  /** Highest QoS granted on SUBSCRIBE and accepted on PUBLISH (advertised to 5.0 clients). */
  maxQos: QoS;
  /** Milliseconds a new connection may take to send CONNECT. */
  connectTimeoutMs: number;
  /** Socket bytes queued before the router stops pulling for this client. */
  writeHighWaterBytes: number;
  /** Inbound QoS 1/2 messages a 5.0 client may have unacknowledged (advertised Receive Maximum). */
  receiveMaximum: number;
  /** Inbound topic aliases a 5.0 client may use (advertised Topic Alias Maximum). */
  topicAliasMaximum: number;
  /** Longest keepalive granted, in seconds; 0 = whatever the client asks (Server Keep Alive). */
  maxKeepaliveSec: number;
}

type Phase = 'awaiting-connect' | 'authenticating' | 'connected' | 'closed';

let nextConnectionNumber = 0;

/** Room for 64 four-byte acknowledgements (one publisher's default window) in one chunk. */
const ACK_RUN_BYTES = 256;

export class Connection implements Outlet {
  /** Process-local number, for logs. */
  readonly number = ++nextConnectionNumber;
  readonly remote: string;
  readonly #stream: Duplex;
  readonly #host: ConnectionHost;
  readonly #parser: Parser;
  readonly #framer: PacketFramer;
  #phase: Phase = 'awaiting-connect';
  #version: 3 | 4 | 5 = 4;
  #clientId = '';
  #session: Session | null = null;
  #keepaliveMs = 0;
  /** Date.now() of the last bytes received; the server's sweep compares it with the keepalive. */
  lastReceivedAt: number;
  readonly openedAt: number;
  #will: PendingWill | null = null;
  #willDelaySec = 0;
  #corked = false;
  #blocked = false;
  /**
   * Four-byte acknowledgements (PUBACK, PUBREC, PUBREL, PUBCOMP) written since the last other
   * write, packed into one buffer: a group commit acknowledges a publisher's whole window at
   * once, and 64 separate 4-byte chunks cost the stream 64 writes and the writev 64 iovecs.
   * `#ackRun` is null when nothing is pending; it goes out before any other write (so bytes
   * leave in the order they were written) and at the tick's uncork.
   */
  #ackRun: Buffer | null = null;
  #ackRunBytes = 0;
  // MQTT 5 negotiation
  /** Largest packet the client accepts (its Maximum Packet Size). */
  #clientMaxPacket = Number.MAX_SAFE_INTEGER;
  /** How many topic aliases the client accepts from us. */
  #clientAliasMax = 0;
  readonly #outAliases = new Map<TopicId, number>();
  /** Inbound alias → the topic it stands for, with its interned id (an alias-only PUBLISH skips the name check and the intern). */
  readonly #inAliases = new Map<number, { readonly name: string; readonly id: TopicId }>();
  #requestProblemInfo = true;
  /** Inbound QoS 1/2 PUBLISHes not yet answered with PUBACK/PUBCOMP (Receive Maximum). */
  #inboundPending = 0;
  readonly #props = newPublishProperties();
  /** The topic of the last PUBLISH that named one (protocol/last-topic.ts). */
  readonly #lastTopic = new LastTopic<TopicId>(0 as TopicId);
  #auth: AuthExchange | null = null;
  /** The method this connection authenticated with (re-authentication must use the same). */
  #authMethod: AuthMethod | null = null;
  #authCtx: AuthContext | null = null;

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

  get protocolVersion(): 3 | 4 | 5 {
    return this.#version;
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
      if (this.#phase !== 'closed') this.#parser.parse(packet);
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
        // [MQTT-3.6.1-1] PUBREL's flags are 0b0010; the others' are 0. With a reason code
        // (5.0, longer than 2 bytes) they go through the parser.
        const flagsOk = (first & 0x0f) === (first >> 4 === 6 ? 2 : 0);
        if (!flagsOk || packet.length - at !== 2) break;
        this.#host.counters.packetsIn++;
        this.#onAck(first >> 4, packet.readUInt16BE(at), 0, session);
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

  /** PUBLISH [MQTT-3.3]: topic length, topic, packet id when QoS > 0, (5.0) properties, payload. */
  #scanPublish(packet: Buffer, at: number, first: number, session: Session): void {
    const qos = (first >> 1) & 3;
    if (qos === 3) return this.#fail(new MqttProtocolError('ERR_MQTT_MALFORMED', 'PUBLISH with both QoS bits set [MQTT-3.3.1-4]'));
    if (qos > this.#host.limits.maxQos) {
      return this.#fail(new MqttProtocolError('ERR_MQTT_QOS_NOT_SUPPORTED', `PUBLISH at QoS ${qos} above the maximum ${this.#host.limits.maxQos} [MQTT-3.2.2-11]`));
    }
    const end = packet.length;
    if (at + 2 > end) return this.#fail(new MqttProtocolError('ERR_MQTT_MALFORMED', 'PUBLISH too short for its topic length'));
    const topicEnd = at + 2 + packet.readUInt16BE(at);
    if (topicEnd + (qos > 0 ? 2 : 0) > end) return this.#fail(new MqttProtocolError('ERR_MQTT_MALFORMED', 'PUBLISH topic runs past the packet'));
    const cached = this.#lastTopic.matches(packet, at + 2, topicEnd);
    if (!cached && !isUtf8(packet.subarray(at + 2, topicEnd))) {
      return this.#fail(new MqttProtocolError('ERR_MQTT_TOPIC_INVALID', 'PUBLISH topic is not valid UTF-8 [MQTT-1.5.3-1]'));
    }
    let pid = 0;
    let pos = topicEnd;
    if (qos > 0) {
      pid = packet.readUInt16BE(pos);
      pos += 2;
      if (pid === 0) return this.#fail(new MqttProtocolError('ERR_MQTT_PROTOCOL', 'PUBLISH with packet id 0 [MQTT-2.3.1-1]'));
    }
    let topic = cached ? this.#lastTopic.name : packet.toString('utf8', at + 2, topicEnd);
    let properties: Buffer | null = null;
    let expiry = -1;
    let aliased: { readonly name: string; readonly id: TopicId } | null = null;
    let setAlias = 0;
    let payloadUtf8 = false;
    if (this.#version === 5) {
      const p = scanPublishProperties(packet, pos, this.#props);
      if (p.reason !== 0) return this.#fail(new MqttProtocolError(p.reason === REASON.TOPIC_ALIAS_INVALID ? 'ERR_MQTT_TOPIC_ALIAS' : 'ERR_MQTT_PROTOCOL', p.problem, { reasonCode: p.reason }));
      pos = p.end;
      properties = p.forward;
      expiry = p.messageExpiry;
      if (p.topicAlias > 0) {
        if (p.topicAlias > this.#host.limits.topicAliasMaximum) {
          return this.#fail(new MqttProtocolError('ERR_MQTT_TOPIC_ALIAS', `topic alias ${p.topicAlias} above the maximum ${this.#host.limits.topicAliasMaximum} [MQTT-3.3.2-9]`));
        }
        if (topic.length > 0) {
          setAlias = p.topicAlias; // bound below, once the name has passed its check
        } else {
          aliased = this.#inAliases.get(p.topicAlias) ?? null;
          if (aliased === null) return this.#fail(new MqttProtocolError('ERR_MQTT_PROTOCOL', `topic alias ${p.topicAlias} was never set`));
          topic = aliased.name;
        }
      }
      payloadUtf8 = p.payloadUtf8;
    }
    let topicId: TopicId;
    if (cached) topicId = this.#lastTopic.id;
    else if (aliased !== null) topicId = aliased.id; // checked and interned when the alias was set
    else {
      if (!isValidTopicName(topic)) return this.#fail(new MqttProtocolError('ERR_MQTT_TOPIC_INVALID', `invalid PUBLISH topic '${topic}' [MQTT-3.3.2-2]`));
      topicId = this.#host.router.intern(topic);
      this.#lastTopic.remember(packet, at + 2, topicEnd, topic, topicId);
    }
    // a client that names the topic with its alias on every PUBLISH re-binds it to the same id: no new entry
    if (setAlias > 0 && this.#inAliases.get(setAlias)?.id !== topicId) this.#inAliases.set(setAlias, { name: topic, id: topicId });
    // after the alias is bound: the packet is well formed, only its payload is refused
    if (payloadUtf8 && !isUtf8(packet.subarray(pos))) {
      this.#host.logger.info({ clientId: this.#clientId, topic }, 'payload is not the UTF-8 its format indicator declares; not stored');
      if (qos > 0) this.#write(this.#ackV5(qos === 1 ? 0x40 : 0x50, pid, REASON.PAYLOAD_FORMAT_INVALID, 'payload is not valid UTF-8'));
      return;
    }
    this.#publish(topicId, qos as QoS, (first & 1) === 1, pid, packet.subarray(pos), properties, expiry, session);
  }

  #publish(topicId: TopicId, qos: QoS, retain: boolean, pid: number, payload: Buffer, properties: Buffer | null, expiry: number, session: Session): void {
    const router = this.#host.router;
    if (qos === 0) {
      router.publish(session, topicId, 0, retain, payload, properties, expiry, 0, null);
      return;
    }
    if (qos === 2) {
      const state = router.qos2State(session, pid);
      if (state === 'stored') {
        this.#writeAck(0x50, pid); // a resend: acknowledge, store nothing [MQTT-4.3.3-2]
        return;
      }
      if (state === 'storing') return; // PUBREC follows when the first copy commits
    }
    // checked before any state is taken for the packet id, so a refusal leaves none behind
    if (this.#version === 5 && ++this.#inboundPending > this.#host.limits.receiveMaximum) {
      return this.#fail(new MqttProtocolError('ERR_MQTT_RECEIVE_MAXIMUM', `more than ${this.#host.limits.receiveMaximum} unacknowledged QoS 1/2 PUBLISHes [MQTT-3.3.4-9]`));
    }
    if (qos === 2) router.beginQos2(session, pid);
    router.publish(session, topicId, qos, retain, payload, properties, expiry, pid, this);
  }

  /** PUBACK 4, PUBREC 5, PUBREL 6, PUBCOMP 7 from the client. */
  #onAck(type: number, pid: number, reasonCode: number, session: Session): void {
    const router = this.#host.router;
    switch (type) {
      case 4:
        router.puback(session, pid);
        return;
      case 5:
        if (reasonCode >= 0x80) {
          router.pubcomp(session, pid, true); // the client refused it: the exchange ends here
          return;
        }
        // answer PUBREL even for an id we no longer know, so the client can finish [MQTT-4.3.3-1]
        if (router.pubrec(session, pid) || this.#version !== 5) this.#writeAck(0x62, pid);
        else this.#write(this.#ackV5(0x62, pid, REASON.PACKET_IDENTIFIER_NOT_FOUND, null));
        return;
      case 6: {
        // PUBCOMP, always [MQTT-4.3.3-2]; for a persistent session once the release is durable
        const known = router.release(session, pid, () => {
          if (this.#phase === 'connected') this.#writeAck(0x70, pid);
        });
        if (known && this.#version === 5 && this.#inboundPending > 0) this.#inboundPending--;
        if (!known) {
          if (this.#version === 5) this.#write(this.#ackV5(0x70, pid, REASON.PACKET_IDENTIFIER_NOT_FOUND, null));
          else this.#writeAck(0x70, pid);
        }
        return;
      }
      case 7:
        router.pubcomp(session, pid);
        return;
    }
  }

  #onParseError(err: Error): void {
    if (this.#phase === 'awaiting-connect' && err.message === 'Invalid protocol version') {
      // mqtt-packet refuses the level before we see the CONNECT; answer it as the spec asks
      this.#write(Buffer.from([0x20, 0x02, 0, CONNACK_311.UNACCEPTABLE_PROTOCOL_VERSION])); // [MQTT-3.1.2-2]
    }
    const code: MqttProtocolErrorCode = /Unknown property|property|Invalid .* reason code/i.test(err.message) ? 'ERR_MQTT_PROTOCOL' : 'ERR_MQTT_MALFORMED';
    this.#fail(new MqttProtocolError(code, err.message, { cause: err }));
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
    if (this.#phase === 'authenticating') {
      if (packet.cmd === 'auth') this.#onAuth(packet);
      else this.#fail(new MqttProtocolError('ERR_MQTT_PROTOCOL', `${packet.cmd} during authentication [MQTT-4.12.0-4]`));
      return;
    }
    const session = this.#session as Session;
    switch (packet.cmd) {
      case 'puback':
        this.#onAck(4, packet.messageId ?? 0, packet.reasonCode ?? 0, session);
        return;
      case 'pubrec':
        this.#onAck(5, packet.messageId ?? 0, packet.reasonCode ?? 0, session);
        return;
      case 'pubrel':
        this.#onAck(6, packet.messageId ?? 0, packet.reasonCode ?? 0, session);
        return;
      case 'pubcomp':
        this.#onAck(7, packet.messageId ?? 0, packet.reasonCode ?? 0, session);
        return;
      case 'subscribe':
        this.#onSubscribe(packet, session);
        return;
      case 'unsubscribe':
        this.#onUnsubscribe(packet, session);
        return;
      case 'disconnect':
        this.#onDisconnect(packet, session);
        return;
      case 'connect':
        this.#fail(new MqttProtocolError('ERR_MQTT_SECOND_CONNECT', 'second CONNECT on one connection [MQTT-3.1.0-2]'));
        return;
      case 'auth':
        this.#onAuth(packet);
        return;
      case 'publish':
      case 'pingreq':
        // reached only through #onFrame's scanners; the parser sees them only when malformed
        this.#fail(new MqttProtocolError('ERR_MQTT_MALFORMED', `malformed ${packet.cmd}`));
        return;
      default:
        this.#fail(new MqttProtocolError('ERR_MQTT_PROTOCOL', `unexpected ${packet.cmd} from a client`));
    }
  }

  #onConnect(packet: IConnectPacket): void {
    const version = packet.protocolVersion ?? 4;
    this.#version = version === 5 ? 5 : version === 3 ? 3 : 4;
    const props = packet.properties ?? {};
    const clean = packet.clean !== false;
    let method: AuthMethod | undefined;
    if (version === 5 && props.authenticationMethod !== undefined) {
      method = this.#host.authMethods.get(props.authenticationMethod);
      if (method === undefined) {
        this.#refuseConnect(REASON.BAD_AUTHENTICATION_METHOD, CONNACK_311.NOT_AUTHORIZED, `authentication method '${props.authenticationMethod}' is not supported`);
        return;
      }
    }
    let clientId = packet.clientId;
    let assigned = false;
    if (clientId.length === 0) {
      if (!clean && version !== 5) {
        this.#refuseConnect(REASON.CLIENT_IDENTIFIER_NOT_VALID, CONNACK_311.IDENTIFIER_REJECTED, 'empty client id without clean session [MQTT-3.1.3-8]');
        return;
      }
      clientId = `mqlog-${process.pid.toString(36)}-${this.number.toString(36)}-${Date.now().toString(36)}`;
      assigned = true;
    }
    if (clientId.includes('\uFFFD') || clientId.includes('\u0000')) {
      this.#refuseConnect(REASON.CLIENT_IDENTIFIER_NOT_VALID, CONNACK_311.IDENTIFIER_REJECTED, 'client id is not valid UTF-8 [MQTT-1.5.3-1]');
      return;
    }
    if (packet.will) {
      const w = packet.will;
      if (!isValidTopicName(w.topic) || w.topic.includes('\uFFFD')) {
        this.#refuseConnect(REASON.TOPIC_NAME_INVALID, CONNACK_311.SERVER_UNAVAILABLE, `invalid will topic '${w.topic}'`);
        return;
      }
      if ((w.qos ?? 0) > this.#host.limits.maxQos) {
        this.#refuseConnect(REASON.QOS_NOT_SUPPORTED, CONNACK_311.SERVER_UNAVAILABLE, `will QoS ${w.qos} above the maximum [MQTT-3.2.2-12]`);
        return;
      }
      const wp = w.properties ?? {};
      this.#will = {
        topic: w.topic,
        qos: (w.qos ?? 0) as QoS,
        retain: w.retain === true,
        payload: typeof w.payload === 'string' ? Buffer.from(w.payload) : w.payload,
        properties: version === 5 ? encodeWillProperties(wp) : null,
        expiry: wp.messageExpiryInterval ?? -1,
      };
      this.#willDelaySec = wp.willDelayInterval ?? 0;
    }
    // MQTT 5 negotiation [MQTT-3.1.2-11..] and 3.1.1 defaults
    let sessionExpiry = clean ? 0 : -1;
    let receiveMaximum = 65535;
    if (version === 5) {
      sessionExpiry = props.sessionExpiryInterval ?? 0;
      if (sessionExpiry === 0xffffffff) sessionExpiry = -1; // never expires
      receiveMaximum = props.receiveMaximum ?? 65535;
      if (receiveMaximum === 0) {
        this.#fail(new MqttProtocolError('ERR_MQTT_PROTOCOL', 'receive maximum 0 [MQTT-3.1.2-11]'));
        return;
      }
      if (props.maximumPacketSize !== undefined) this.#clientMaxPacket = props.maximumPacketSize;
      this.#clientAliasMax = props.topicAliasMaximum ?? 0;
      this.#requestProblemInfo = props.requestProblemInformation !== false;
    }
    let keepalive = packet.keepalive ?? 0;
    const maxKeepalive = this.#host.limits.maxKeepaliveSec;
    const serverKeepAlive = version === 5 && maxKeepalive > 0 && (keepalive === 0 || keepalive > maxKeepalive);
    if (serverKeepAlive) keepalive = maxKeepalive;
    const plan: ConnectPlan = {
      clientId,
      assigned,
      clean,
      sessionExpiry,
      receiveMaximum,
      keepalive,
      serverKeepAlive,
      responseInformation: props.requestResponseInformation === true,
    };
    if (method === undefined) {
      this.#completeConnect(plan, null);
      return;
    }
    const ctx: AuthContext = { clientId, username: packet.username };
    this.#auth = { method, ctx, state: undefined, plan };
    this.#phase = 'authenticating';
    this.#authStep(method.start(ctx, props.authenticationData));
  }

  /** Takes the next step of an authentication exchange (at CONNECT or re-authentication). */
  #authStep(step: AuthStep): void {
    const auth = this.#auth as AuthExchange;
    const method = auth.method.name;
    if (step.kind === 'continue') {
      auth.state = step.state;
      this.#write(mqtt.generate({ cmd: 'auth', reasonCode: REASON.CONTINUE_AUTHENTICATION, properties: { authenticationMethod: method, authenticationData: step.data } }, { protocolVersion: 5 }));
      return;
    }
    this.#auth = null;
    if (step.kind === 'failure') {
      this.#host.logger.info({ clientId: auth.ctx.clientId, method, reason: step.reason }, 'authentication failed');
      if (auth.plan !== null) this.#refuseConnect(REASON.NOT_AUTHORIZED, CONNACK_311.NOT_AUTHORIZED, `authentication failed: ${step.reason}`);
      else this.#fail(new MqttProtocolError('ERR_MQTT_NOT_AUTHORIZED', `re-authentication failed: ${step.reason}`));
      return;
    }
    this.#authMethod = auth.method;
    this.#authCtx = auth.ctx;
    const data = step.data === undefined ? {} : { authenticationData: step.data };
    if (auth.plan !== null) {
      this.#completeConnect(auth.plan, { authenticationMethod: method, ...data });
    } else {
      this.#write(mqtt.generate({ cmd: 'auth', reasonCode: REASON.SUCCESS, properties: { authenticationMethod: method, ...data } }, { protocolVersion: 5 }));
    }
  }

  /** AUTH from the client: the next answer of an exchange, or 0x19 to re-authenticate [MQTT-4.12.1]. */
  #onAuth(packet: IAuthPacket): void {
    const method = packet.properties?.authenticationMethod;
    const data = packet.properties?.authenticationData;
    if (this.#auth !== null) {
      if (packet.reasonCode !== REASON.CONTINUE_AUTHENTICATION || method !== this.#auth.method.name) {
        this.#fail(new MqttProtocolError('ERR_MQTT_PROTOCOL', 'AUTH does not continue the exchange in progress [MQTT-4.12.0-5]'));
        return;
      }
      this.#authStep(this.#auth.method.continue(this.#auth.ctx, this.#auth.state, data));
      return;
    }
    if (this.#authMethod === null || this.#authCtx === null) {
      this.#fail(new MqttProtocolError('ERR_MQTT_PROTOCOL', 'AUTH without an authentication method in CONNECT [MQTT-4.12.0-1]'));
      return;
    }
    if (packet.reasonCode !== REASON.RE_AUTHENTICATE || method !== this.#authMethod.name) {
      this.#fail(new MqttProtocolError('ERR_MQTT_PROTOCOL', 'AUTH must re-authenticate with the CONNECT method [MQTT-4.12.1-1]'));
      return;
    }
    this.#auth = { method: this.#authMethod, ctx: this.#authCtx, state: undefined, plan: null };
    this.#authStep(this.#authMethod.start(this.#authCtx, data));
  }

  #completeConnect(plan: ConnectPlan, authProps: { authenticationMethod: string; authenticationData?: Buffer } | null): void {
    const { clientId, clean } = plan;
    const version = this.#version;
    this.#clientId = clientId;
    this.#keepaliveMs = plan.keepalive * 1000;
    const previous = this.#host.claim(clientId, this);
    if (previous !== undefined) previous.takenOver();
    const { session, present } = this.#host.router.attach(clientId, clean, this, plan.sessionExpiry, plan.receiveMaximum);
    if (present) this.#host.resumed(clientId);
    this.#session = session;
    this.#phase = 'connected';
    const sessionPresent = present && !clean; // [MQTT-3.2.2-1], [MQTT-3.2.2-2]
    if (version === 5) {
      const limits = this.#host.limits;
      const connack: Packet = {
        cmd: 'connack',
        reasonCode: REASON.SUCCESS,
        sessionPresent,
        properties: {
          receiveMaximum: limits.receiveMaximum,
          maximumPacketSize: limits.maxPacketBytes,
          topicAliasMaximum: limits.topicAliasMaximum,
          retainAvailable: true,
          wildcardSubscriptionAvailable: true,
          subscriptionIdentifiersAvailable: true,
          sharedSubscriptionAvailable: true,
          ...(limits.maxQos < 2 ? { maximumQoS: limits.maxQos } : {}),
          ...(plan.assigned ? { assignedClientIdentifier: clientId } : {}),
          ...(plan.serverKeepAlive ? { serverKeepAlive: plan.keepalive } : {}),
          ...(plan.responseInformation ? { responseInformation: `mqlog/response/${clientId}` } : {}),
          ...(authProps ?? {}),
        },
      };
      this.#write(mqtt.generate(connack, { protocolVersion: 5 }));
    } else {
      this.#write(Buffer.from([0x20, 0x02, sessionPresent ? 1 : 0, CONNACK_311.ACCEPTED]));
    }
    this.#host.logger.debug({ clientId, remote: this.remote, version, clean, sessionPresent }, 'client connected');
  }

  /** Refuses a CONNECT: CONNACK with the version's code, then close [MQTT-3.2.2-6]. */
  #refuseConnect(reason5: ReasonCode, code311: number, message: string): void {
    if (this.#version === 5) {
      this.#write(mqtt.generate({ cmd: 'connack', reasonCode: reason5, sessionPresent: false, properties: { reasonString: message } }, { protocolVersion: 5 }));
    } else {
      this.#write(Buffer.from([0x20, 0x02, 0, code311]));
    }
    this.#fail(new MqttProtocolError('ERR_MQTT_CONNECT_REFUSED', message, { reasonCode: reason5, silent: true }));
  }

  #onSubscribe(packet: ISubscribePacket, session: Session): void {
    const v5 = this.#version === 5;
    const idProp = packet.properties?.subscriptionIdentifier;
    const id = typeof idProp === 'number' ? idProp : 0;
    if (v5 && idProp !== undefined && id === 0) {
      this.#fail(new MqttProtocolError('ERR_MQTT_PROTOCOL', 'subscription identifier 0 [MQTT-3.8.2-1]'));
      return;
    }
    const granted: number[] = [];
    const accepted: Array<[string, SubscriptionOptions]> = [];
    for (const sub of packet.subscriptions) {
      const filter = sub.topic;
      const shared = filter.startsWith('$share/') ? parseShared(filter) : undefined;
      if (shared !== undefined && v5 && sub.nl === true) {
        this.#fail(new MqttProtocolError('ERR_MQTT_PROTOCOL', 'No Local on a shared subscription [MQTT-3.8.3-4]'));
        return;
      }
      const valid = shared === undefined ? isValidTopicFilter(filter) : shared !== null && isValidTopicFilter(shared.filter);
      if (!valid || filter.includes('\uFFFD')) {
        granted.push(v5 ? REASON.TOPIC_FILTER_INVALID : 0x80); // failure for this filter [MQTT-3.9.3]
        this.#host.logger.info({ clientId: this.#clientId, filter }, 'invalid topic filter refused');
        continue;
      }
      const qos = (sub.qos < this.#host.limits.maxQos ? sub.qos : this.#host.limits.maxQos) as QoS;
      granted.push(qos);
      accepted.push([
        filter,
        { qos, noLocal: v5 && sub.nl === true, retainAsPublished: v5 && sub.rap === true, retainHandling: v5 ? ((sub.rh ?? 0) as 0 | 1 | 2) : 0, id },
      ]);
    }
    // SUBACK first, then retained messages [MQTT-3.8.4-1]
    this.#write(mqtt.generate({ cmd: 'suback', messageId: packet.messageId ?? 0, granted }, { protocolVersion: this.#version }));
    for (const [filter, opts] of accepted) this.#host.router.subscribe(session, filter, opts);
  }

  #onUnsubscribe(packet: IUnsubscribePacket, session: Session): void {
    const codes = packet.unsubscriptions.map((filter) => (this.#host.router.unsubscribe(session, filter) ? REASON.SUCCESS : REASON.NO_SUBSCRIPTION_EXISTED));
    if (this.#version === 5) {
      this.#write(mqtt.generate({ cmd: 'unsuback', messageId: packet.messageId ?? 0, granted: codes }, { protocolVersion: 5 }));
    } else {
      this.#write(encodeAck(0xb0, packet.messageId ?? 0));
    }
  }

  #onDisconnect(packet: IDisconnectPacket, session: Session): void {
    const expiry = packet.properties?.sessionExpiryInterval;
    if (this.#version === 5 && expiry !== undefined) {
      if (session.expirySec === 0 && expiry !== 0) {
        this.#fail(new MqttProtocolError('ERR_MQTT_PROTOCOL', 'DISCONNECT sets a session expiry on a session that had none [MQTT-3.14.2-2]'));
        return;
      }
      this.#host.router.setSessionExpiry(session, expiry === 0xffffffff ? -1 : expiry);
    }
    // [MQTT-3.14.4-3] a normal DISCONNECT discards the Will; 0x04 asks for it to be published
    if (packet.reasonCode !== REASON.DISCONNECT_WITH_WILL) this.#will = null;
    this.#close('client sent DISCONNECT', packet.reasonCode === REASON.DISCONNECT_WITH_WILL);
  }

  // ── outbound (the Outlet the router talks to) ────────────────────────────────────────────

  get writable(): boolean {
    return this.#phase === 'connected' && !this.#blocked;
  }

  publish(
    topic: Buffer,
    topicId: TopicId,
    qos: QoS,
    retain: boolean,
    dup: boolean,
    packetId: number,
    payload: Buffer,
    properties: Buffer | null,
    expiry: number,
    subscriptionIds: readonly number[] | null,
  ): boolean {
    if (this.#phase !== 'connected') return true;
    let header: Buffer;
    if (this.#version === 5) {
      let alias = 0;
      let name: Buffer | null = topic;
      let newAlias = false;
      if (this.#clientAliasMax > 0) {
        const known = this.#outAliases.get(topicId);
        if (known !== undefined) {
          alias = known;
          name = null; // the alias stands for the topic
        } else if (this.#outAliases.size < this.#clientAliasMax) {
          alias = this.#outAliases.size + 1; // aliases are never removed, so size + 1 is free
          newAlias = true;
        }
      }
      header = encodePublishHeaderV5(name, qos, retain, dup, packetId, payload.length, alias, expiry, subscriptionIds, properties);
      if (header.length + payload.length > this.#clientMaxPacket) {
        // never send more than the client allows; drop rather than truncate [MQTT-3.1.2-25].
        // A new alias is not taken (the client never saw it); an established one stays.
        this.#host.logger.debug({ clientId: this.#clientId, bytes: header.length + payload.length }, 'message larger than the client accepts; dropped');
        return false;
      }
      if (newAlias) this.#outAliases.set(topicId, alias);
    } else {
      header = encodePublishHeader(topic, qos, retain, dup, packetId, payload.length);
    }
    this.#host.counters.packetsOut++;
    this.#write(header);
    if (payload.length > 0) this.#write(payload);
    return true;
  }

  pubrel(packetId: number): void {
    if (this.#phase === 'connected') this.#writeAck(0x62, packetId);
  }

  stored(packetId: number, qos: 1 | 2): void {
    if (this.#phase !== 'connected') return;
    if (qos === 1 && this.#version === 5 && this.#inboundPending > 0) this.#inboundPending--;
    this.#writeAck(qos === 1 ? 0x40 : 0x50, packetId);
  }

  storeFailed(packetId: number, qos: 1 | 2, error: Error): void {
    if (this.#version === 5) {
      // 5.0 can say so per message; the client decides whether to retry
      if (this.#inboundPending > 0) this.#inboundPending--;
      this.#host.logger.warn({ clientId: this.#clientId, packetId, err: error }, 'PUBLISH not stored');
      // a full disk is a quota the client can understand; anything else is the broker's problem
      const reason = (error as { code?: string }).code === 'ERR_COMMITLOG_NO_SPACE' ? REASON.QUOTA_EXCEEDED : REASON.IMPLEMENTATION_SPECIFIC_ERROR;
      this.#write(this.#ackV5(qos === 1 ? 0x40 : 0x50, packetId, reason, `not stored: ${error.message}`));
      return;
    }
    // 3.1.1 has no negative PUBACK: close, so the client resends on its next connection
    this.#fail(new MqttProtocolError('ERR_MQTT_STORE_FAILED', `PUBLISH ${packetId} could not be stored: ${error.message}`, { cause: error }));
  }

  /** A 5.0 PUBACK/PUBREC/PUBREL/PUBCOMP with a reason code (and a reason string if the client wants them). */
  #ackV5(firstByte: 0x40 | 0x50 | 0x62 | 0x70, packetId: number, reasonCode: number, reasonString: string | null): Buffer {
    const cmd = firstByte === 0x40 ? 'puback' : firstByte === 0x50 ? 'pubrec' : firstByte === 0x62 ? 'pubrel' : 'pubcomp';
    const properties = reasonString !== null && this.#requestProblemInfo ? { reasonString } : undefined;
    return mqtt.generate({ cmd, messageId: packetId, reasonCode, ...(properties ? { properties } : {}) } as Packet, { protocolVersion: 5 });
  }

  /** Queues bytes; the first write in a tick corks the stream and the tick's end uncorks it. */
  #write(buf: Buffer): void {
    if (this.#stream.destroyed) return;
    if (!this.#corked) this.#cork();
    else if (this.#ackRun !== null) this.#flushAcks();
    this.#push(buf);
  }

  /** Corks the stream until the end of this tick. */
  #cork(): void {
    this.#corked = true;
    this.#stream.cork();
    process.nextTick(this.#uncork);
  }

  /** Hands bytes to the (corked) stream; past the high-water mark the connection counts as blocked. */
  #push(buf: Buffer): void {
    const stream = this.#stream;
    this.#host.counters.bytesOut += buf.length;
    if (!stream.write(buf) || stream.writableLength > this.#host.limits.writeHighWaterBytes) this.#blocked = true;
  }

  /** A 3.1.1-form PUBACK 0x40, PUBREC 0x50, PUBREL 0x62 or PUBCOMP 0x70, added to the pending run. */
  #writeAck(firstByte: 0x40 | 0x50 | 0x62 | 0x70, packetId: number): void {
    if (this.#stream.destroyed) return;
    if (!this.#corked) this.#cork();
    let run = this.#ackRun;
    if (run === null) {
      run = this.#ackRun = Buffer.allocUnsafe(ACK_RUN_BYTES);
      this.#ackRunBytes = 0;
    }
    const at = this.#ackRunBytes;
    run[at] = firstByte;
    run[at + 1] = 2;
    run[at + 2] = packetId >> 8;
    run[at + 3] = packetId & 0xff;
    this.#ackRunBytes = at + 4;
    if (at + 4 === ACK_RUN_BYTES) this.#flushAcks();
  }

  /** Hands the pending acknowledgements to the stream as one chunk (a view of the run's buffer). */
  #flushAcks(): void {
    const run = this.#ackRun as Buffer;
    this.#ackRun = null;
    this.#push(run.subarray(0, this.#ackRunBytes));
  }

  readonly #uncork = (): void => {
    this.#corked = false;
    if (this.#ackRun !== null) {
      if (this.#stream.destroyed) this.#ackRun = null;
      else this.#flushAcks();
    }
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
    if ((this.#phase === 'awaiting-connect' || this.#phase === 'authenticating') && now - this.openedAt > this.#host.limits.connectTimeoutMs) {
      this.#fail(new MqttProtocolError('ERR_MQTT_CONNECT_TIMEOUT', `not connected within ${this.#host.limits.connectTimeoutMs} ms`));
      return true;
    }
    // [MQTT-3.1.2-24] one and a half times the keepalive without a packet
    if (this.#phase === 'connected' && this.#keepaliveMs > 0 && now - this.lastReceivedAt > this.#keepaliveMs * 1.5) {
      this.#fail(new MqttProtocolError('ERR_MQTT_KEEPALIVE_TIMEOUT', `nothing received for ${now - this.lastReceivedAt} ms (keepalive ${this.#keepaliveMs / 1000} s)`));
      return true;
    }
    return false;
  }

  /** Another connection claimed this client id [MQTT-3.1.4-2]. */
  takenOver(): void {
    this.#disconnectWith(REASON.SESSION_TAKEN_OVER, 'another connection took over this client id');
    // 5.0: the Will follows its delay rules (the new connection cancels a delayed one);
    // 3.1.1 lists no Will for a takeover
    if (this.#version !== 5) this.#will = null;
    this.#close('session taken over by a new connection', this.#version === 5);
  }

  /** Server shutdown: tell 5.0 clients why, close without publishing the Will. */
  shutdown(): void {
    this.#will = null;
    this.#disconnectWith(REASON.SERVER_SHUTTING_DOWN, 'server shutting down');
    this.#close('server shutting down', false);
  }

  /** A server DISCONNECT with a reason, for 5.0 clients that are past CONNACK [MQTT-4.13.2-1]. */
  #disconnectWith(reasonCode: number, reasonString: string): void {
    if (this.#version !== 5 || this.#phase !== 'connected') return;
    this.#write(mqtt.generate({ cmd: 'disconnect', reasonCode, properties: { reasonString } }, { protocolVersion: 5 }));
  }

  #fail(err: MqttProtocolError): void {
    if (this.#phase === 'closed') return;
    if (!err.silent) {
      this.#host.logger.warn(
        { clientId: this.#clientId || undefined, remote: this.remote, code: err.code, reasonCode: err.reasonCode },
        `disconnecting client: ${err.message}`,
      );
    }
    this.#disconnectWith(err.reasonCode, err.message);
    this.#close(err.message, true);
  }

  #close(reason: string, abnormal: boolean): void {
    if (this.#phase === 'closed') return;
    const wasConnected = this.#phase === 'connected';
    this.#phase = 'closed';
    this.#parser.removeAllListeners('packet');
    if (this.#corked) this.#uncork();
    this.#stream.end();
    setTimeout(() => this.#stream.destroy(), 1000).unref();
    const session = this.#session;
    if (wasConnected && abnormal && this.#will !== null) {
      this.#host.will(this.#clientId, this.#will, this.#willDelaySec, session === null ? 0 : session.expirySec);
    }
    this.#will = null;
    if (session !== null) this.#host.router.detach(session, this);
    this.#host.released(this);
    if (wasConnected) this.#host.logger.debug({ clientId: this.#clientId, reason }, 'client disconnected');
  }
}

