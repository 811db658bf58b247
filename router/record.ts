/**
 * The record the router stores in a topic's commit log for each PUBLISH.
 * The commit log sees opaque bytes; this file is the only one that knows their layout.
 *
 *   0      1       2              6              10             14             14+P
 *   ┌──────┬───────┬──────────────┬──────────────┬──────────────┬──────────────┬─────────────┐
 *   │ ver  │ flags │ origin u32BE │ expiry u32BE │ propsLen u32 │ properties   │ payload ... │
 *   │ = 1  │       │              │ (seconds)    │ (P bytes)    │ (MQTT 5 raw) │             │
 *   └──────┴───────┴──────────────┴──────────────┴──────────────┴──────────────┴─────────────┘
 *   flags: bits 0-1 QoS as published, bit 2 RETAIN as published, bit 3 has Message Expiry
 *   origin: the publishing session's number (for MQTT 5 No Local); 0 = the broker itself
 *   expiry: Message Expiry Interval as published; counted from the record's append timestamp
 *   properties: the PUBLISH's MQTT 5 properties other than Topic Alias and Message Expiry
 *
 * One copy happens here, on the way in, into the topic log's tail memory (the socket chunk is
 * released rather than pinned by a view); on the way out the payload is a `subarray` of
 * whatever the log returned, shared by every subscriber.
 */
import type { QoS } from './ids.js';

export const RECORD_VERSION = 1;
export const RECORD_HEADER_BYTES = 14;

const FLAG_RETAIN = 0b100;
const FLAG_EXPIRY = 0b1000;

/** Bytes of the record for a PUBLISH with these properties and payload. */
export function recordBytes(properties: Buffer | null, payload: Buffer): number {
  return RECORD_HEADER_BYTES + (properties === null ? 0 : properties.length) + payload.length;
}

/**
 * Encodes the record into `rec`, which is exactly recordBytes() long (the router passes the
 * log's own tail memory, so the payload is copied once, straight to where it is written from).
 * `expiry` is the Message Expiry Interval in seconds, or -1 for none.
 */
export function encodeRecordInto(rec: Buffer, qos: QoS, retain: boolean, origin: number, expiry: number, properties: Buffer | null, payload: Buffer): Buffer {
  const propsLen = properties === null ? 0 : properties.length;
  rec[0] = RECORD_VERSION;
  rec[1] = qos | (retain ? FLAG_RETAIN : 0) | (expiry >= 0 ? FLAG_EXPIRY : 0);
  rec.writeUInt32BE(origin >>> 0, 2);
  rec.writeUInt32BE(expiry >= 0 ? expiry : 0, 6);
  rec.writeUInt32BE(propsLen, 10);
  if (properties !== null) rec.set(properties, RECORD_HEADER_BYTES);
  rec.set(payload, RECORD_HEADER_BYTES + propsLen);
  return rec;
}

/** encodeRecordInto() a fresh buffer. */
export function encodeRecord(qos: QoS, retain: boolean, origin: number, expiry: number, properties: Buffer | null, payload: Buffer): Buffer {
  return encodeRecordInto(Buffer.allocUnsafe(recordBytes(properties, payload)), qos, retain, origin, expiry, properties, payload);
}

/** True when `rec` is long enough and of a version this code reads. */
export function isRecord(rec: Buffer): boolean {
  return rec.length >= RECORD_HEADER_BYTES && rec[0] === RECORD_VERSION && RECORD_HEADER_BYTES + rec.readUInt32BE(10) <= rec.length;
}

export function recordQos(rec: Buffer): QoS {
  return ((rec[1] as number) & 0b11) as QoS;
}

export function recordRetain(rec: Buffer): boolean {
  return ((rec[1] as number) & FLAG_RETAIN) !== 0;
}

export function recordOrigin(rec: Buffer): number {
  return rec.readUInt32BE(2);
}

/** Message Expiry Interval in seconds as published, or -1 when the message never expires. */
export function recordExpiry(rec: Buffer): number {
  return ((rec[1] as number) & FLAG_EXPIRY) === 0 ? -1 : rec.readUInt32BE(6);
}

/** The MQTT 5 properties bytes (a view), or null. */
export function recordProperties(rec: Buffer): Buffer | null {
  const len = rec.readUInt32BE(10);
  return len === 0 ? null : rec.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + len);
}

/** The payload as a view sharing the record's memory — never a copy. */
export function recordPayload(rec: Buffer): Buffer {
  return rec.subarray(RECORD_HEADER_BYTES + rec.readUInt32BE(10));
}
