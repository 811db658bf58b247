/**
 * MQTT 5 PUBLISH properties, read and written as raw bytes on the hot path.
 *
 * Inbound, a PUBLISH's property block is scanned once: Topic Alias and Message Expiry Interval
 * are taken out (the broker acts on them), everything else — Payload Format Indicator, Content
 * Type, Response Topic, Correlation Data, User Properties — is kept as the raw bytes it arrived
 * in, stored with the record and forwarded unchanged to 5.0 subscribers [MQTT-3.3.2-20..22].
 * Outbound, the broker's own properties (Topic Alias, the reduced Message Expiry Interval,
 * Subscription Identifiers) are written in front of those raw bytes.
 *
 *   property block = varint length ‖ (varint id ‖ value)*      (§2.2.2)
 */
import { isUtf8 } from 'node:buffer';
import { REASON, type ReasonCode } from './reason-codes.js';
import { readVarint, varintBytes, writeVarint } from './varint.js';

export const PROP = Object.freeze({
  PAYLOAD_FORMAT_INDICATOR: 0x01,
  MESSAGE_EXPIRY_INTERVAL: 0x02,
  CONTENT_TYPE: 0x03,
  RESPONSE_TOPIC: 0x08,
  CORRELATION_DATA: 0x09,
  SUBSCRIPTION_IDENTIFIER: 0x0b,
  TOPIC_ALIAS: 0x23,
  USER_PROPERTY: 0x26,
});

/** What a scan of a PUBLISH's properties found. Reused per connection: no allocation per packet. */
export interface PublishProperties {
  /** Topic Alias, 0 when absent. */
  topicAlias: number;
  /** Message Expiry Interval in seconds, -1 when absent. */
  messageExpiry: number;
  /** Payload Format Indicator = 1: the payload must be UTF-8. */
  payloadUtf8: boolean;
  /** The properties to store and forward (without Topic Alias and Message Expiry), or null. */
  forward: Buffer | null;
  /** Offset just past the property block (where the payload starts). */
  end: number;
  /** Why the block was refused, or 0. */
  reason: ReasonCode | 0;
  problem: string;
}

export function newPublishProperties(): PublishProperties {
  return { topicAlias: 0, messageExpiry: -1, payloadUtf8: false, forward: null, end: 0, reason: 0, problem: '' };
}

function fail(out: PublishProperties, reason: ReasonCode, problem: string): PublishProperties {
  out.reason = reason;
  out.problem = problem;
  return out;
}

/** Skips a UTF-8 string value at `pos`, checking it; returns the next position or -1. */
function skipString(buf: Buffer, pos: number, end: number, check: (s: Buffer) => boolean): number {
  if (pos + 2 > end) return -1;
  const next = pos + 2 + buf.readUInt16BE(pos);
  if (next > end || !check(buf.subarray(pos + 2, next))) return -1;
  return next;
}

const validUtf8 = (s: Buffer): boolean => isUtf8(s) && !s.includes(0);
/** [MQTT-3.3.2-14] a Response Topic is a topic name: no wildcards. */
const validTopicName = (s: Buffer): boolean => s.length > 0 && validUtf8(s) && !s.includes(0x23) && !s.includes(0x2b);

/**
 * Scans the property block of a client's PUBLISH starting at `pos` (its length varint).
 * Refuses unknown or repeated properties, and properties a client may not send
 * [MQTT-3.3.4-6] (Subscription Identifier), with the spec's reason code.
 */
export function scanPublishProperties(buf: Buffer, pos: number, out: PublishProperties): PublishProperties {
  out.topicAlias = 0;
  out.messageExpiry = -1;
  out.payloadUtf8 = false;
  out.forward = null;
  out.reason = 0;
  out.problem = '';
  const len = readVarint(buf, pos, buf.length);
  if (len === null) return fail(out, REASON.MALFORMED_PACKET, 'malformed property length');
  const start = len[1];
  const end = start + len[0];
  out.end = end;
  if (end > buf.length) return fail(out, REASON.MALFORMED_PACKET, 'properties run past the packet');
  if (start === end) return out;
  // one bit per property id seen (ids are below 0x30): two 32-bit masks, no allocation
  let seenLo = 0;
  let seenHi = 0;
  let cutStart = -1; // the two properties the broker consumes are cut out of `forward`
  let cut2Start = -1;
  let cutEnd = -1;
  let cut2End = -1;
  let p = start;
  while (p < end) {
    const idStart = p;
    const id = buf[p++] as number;
    if (id !== PROP.USER_PROPERTY) {
      const bit = 1 << (id & 31);
      const dup = id < 32 ? (seenLo & bit) !== 0 : (seenHi & bit) !== 0;
      if (dup) return fail(out, REASON.PROTOCOL_ERROR, `property 0x${id.toString(16)} appears twice`);
      if (id < 32) seenLo |= bit;
      else seenHi |= bit;
    }
    switch (id) {
      case PROP.PAYLOAD_FORMAT_INDICATOR: {
        if (p + 1 > end) return fail(out, REASON.MALFORMED_PACKET, 'truncated property');
        const v = buf[p++] as number;
        if (v > 1) return fail(out, REASON.PROTOCOL_ERROR, 'payload format indicator must be 0 or 1');
        out.payloadUtf8 = v === 1;
        break;
      }
      case PROP.MESSAGE_EXPIRY_INTERVAL:
        if (p + 4 > end) return fail(out, REASON.MALFORMED_PACKET, 'truncated property');
        out.messageExpiry = buf.readUInt32BE(p);
        p += 4;
        if (cutStart === -1) [cutStart, cutEnd] = [idStart, p];
        else [cut2Start, cut2End] = [idStart, p];
        break;
      case PROP.CONTENT_TYPE:
        p = skipString(buf, p, end, validUtf8);
        if (p < 0) return fail(out, REASON.MALFORMED_PACKET, 'content type is not valid UTF-8');
        break;
      case PROP.RESPONSE_TOPIC:
        p = skipString(buf, p, end, validTopicName);
        if (p < 0) return fail(out, REASON.PROTOCOL_ERROR, 'response topic is not a valid topic name [MQTT-3.3.2-14]');
        break;
      case PROP.CORRELATION_DATA:
        p = skipString(buf, p, end, () => true);
        if (p < 0) return fail(out, REASON.MALFORMED_PACKET, 'truncated correlation data');
        break;
      case PROP.TOPIC_ALIAS:
        if (p + 2 > end) return fail(out, REASON.MALFORMED_PACKET, 'truncated property');
        out.topicAlias = buf.readUInt16BE(p);
        p += 2;
        if (out.topicAlias === 0) return fail(out, REASON.TOPIC_ALIAS_INVALID, 'topic alias 0 [MQTT-3.3.2-8]');
        if (cutStart === -1) [cutStart, cutEnd] = [idStart, p];
        else [cut2Start, cut2End] = [idStart, p];
        break;
      case PROP.USER_PROPERTY:
        p = skipString(buf, p, end, validUtf8);
        if (p >= 0) p = skipString(buf, p, end, validUtf8);
        if (p < 0) return fail(out, REASON.MALFORMED_PACKET, 'user property is not a valid UTF-8 pair');
        break;
      case PROP.SUBSCRIPTION_IDENTIFIER:
        return fail(out, REASON.PROTOCOL_ERROR, 'a client PUBLISH carries a subscription identifier [MQTT-3.3.4-6]');
      default:
        return fail(out, REASON.PROTOCOL_ERROR, `property 0x${id.toString(16)} is not allowed on PUBLISH`);
    }
  }
  if (p !== end) return fail(out, REASON.MALFORMED_PACKET, 'property runs past its block');
  if (cutStart === -1) {
    out.forward = buf.subarray(start, end);
  } else {
    // at most two cuts (in block order); what is kept is small and copied into one buffer
    const cut = cutEnd - cutStart + (cut2Start === -1 ? 0 : cut2End - cut2Start);
    const kept = end - start - cut;
    if (kept === 0) {
      out.forward = null;
    } else {
      const fwd = Buffer.allocUnsafe(kept);
      let at = buf.copy(fwd, 0, start, cutStart);
      if (cut2Start === -1) {
        buf.copy(fwd, at, cutEnd, end);
      } else {
        at += buf.copy(fwd, at, cutEnd, cut2Start);
        buf.copy(fwd, at, cut2End, end);
      }
      out.forward = fwd;
    }
  }
  if (out.forward !== null && out.forward.length === 0) out.forward = null;
  return out;
}

/**
 * The header of a 5.0 PUBLISH whose payload follows separately: fixed header, topic (may be
 * empty when a topic alias stands for it), packet id, then the property block — the broker's own
 * properties first, then the stored ones.
 */
export function encodePublishHeaderV5(
  topic: Buffer | null,
  qos: number,
  retain: boolean,
  dup: boolean,
  packetId: number,
  payloadBytes: number,
  topicAlias: number,
  messageExpiry: number,
  subscriptionIds: readonly number[] | null,
  stored: Buffer | null,
): Buffer {
  let propsLen = stored === null ? 0 : stored.length;
  if (topicAlias > 0) propsLen += 3;
  if (messageExpiry >= 0) propsLen += 5;
  if (subscriptionIds !== null) for (const id of subscriptionIds) propsLen += 1 + varintBytes(id);
  const topicLen = topic === null ? 0 : topic.length;
  const variable = 2 + topicLen + (qos > 0 ? 2 : 0) + varintBytes(propsLen) + propsLen;
  const remaining = variable + payloadBytes;
  const header = Buffer.allocUnsafe(1 + varintBytes(remaining) + variable);
  header[0] = 0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0);
  let pos = writeVarint(header, 1, remaining);
  header[pos++] = topicLen >> 8;
  header[pos++] = topicLen & 0xff;
  if (topic !== null) pos += topic.copy(header, pos);
  if (qos > 0) {
    header[pos++] = packetId >> 8;
    header[pos++] = packetId & 0xff;
  }
  pos = writeVarint(header, pos, propsLen);
  if (topicAlias > 0) {
    header[pos++] = PROP.TOPIC_ALIAS;
    header[pos++] = topicAlias >> 8;
    header[pos++] = topicAlias & 0xff;
  }
  if (messageExpiry >= 0) {
    header[pos++] = PROP.MESSAGE_EXPIRY_INTERVAL;
    header.writeUInt32BE(messageExpiry, pos);
    pos += 4;
  }
  if (subscriptionIds !== null) {
    for (const id of subscriptionIds) {
      header[pos++] = PROP.SUBSCRIPTION_IDENTIFIER;
      pos = writeVarint(header, pos, id);
    }
  }
  if (stored !== null) stored.copy(header, pos);
  return header;
}

/** The Will properties a client may set, as mqtt-packet parses them. */
export interface WillPropertiesInput {
  payloadFormatIndicator?: boolean;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  userProperties?: Record<string, string | string[]>;
}

/**
 * Encodes a Will's forwardable properties (everything but Will Delay and Message Expiry, which
 * the broker acts on) as raw property bytes, the form records store. Null when there are none.
 */
export function encodeWillProperties(p: WillPropertiesInput): Buffer | null {
  const parts: Buffer[] = [];
  const str = (id: number, value: string | Buffer): Buffer => {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    const b = Buffer.allocUnsafe(3 + bytes.length);
    b[0] = id;
    b.writeUInt16BE(bytes.length, 1);
    bytes.copy(b, 3);
    return b;
  };
  if (p.payloadFormatIndicator !== undefined) parts.push(Buffer.from([PROP.PAYLOAD_FORMAT_INDICATOR, p.payloadFormatIndicator ? 1 : 0]));
  if (p.contentType !== undefined) parts.push(str(PROP.CONTENT_TYPE, p.contentType));
  if (p.responseTopic !== undefined) parts.push(str(PROP.RESPONSE_TOPIC, p.responseTopic));
  if (p.correlationData !== undefined) parts.push(str(PROP.CORRELATION_DATA, p.correlationData));
  for (const [key, values] of Object.entries(p.userProperties ?? {})) {
    for (const value of Array.isArray(values) ? values : [values]) {
      const k = str(PROP.USER_PROPERTY, key);
      const v = str(0, value).subarray(1); // a string pair: the value follows the key without an id
      parts.push(k, v);
    }
  }
  return parts.length === 0 ? null : Buffer.concat(parts);
}
