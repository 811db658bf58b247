/**
 * MQTT framing for the receive hot path, and the handful of fixed-size packets the client
 * builds by hand. `FrameReader` cuts the byte stream into whole packets by the fixed header
 * alone; `decodePublish` reads a PUBLISH in place (payload is a view, topic is not decoded).
 * Every other packet type is handed whole to mqtt-packet's parser by the caller, so only
 * PUBLISH framing is hand-written (issue 3: keep the parser for everything else).
 *
 * Fixed header: byte 0 = type << 4 | flags; then the remaining length as a 1-4 byte varint
 * (7 bits per byte, low group first, high bit = more).
 */

import { LoadClientError } from './errors.js';

/** Largest remaining length MQTT can encode (4 varint bytes). */
export const MAX_REMAINING_LENGTH = 268_435_455;
export const PACKET_TYPE_PUBLISH = 3;


/** Cuts a byte stream into whole MQTT packets; calls `onPacket(buf, start, end)` for each. */
export class FrameReader {
  #pending: Buffer | null = null;
  readonly #onPacket: (buf: Buffer, start: number, end: number) => void;

  constructor(onPacket: (buf: Buffer, start: number, end: number) => void) {
    this.#onPacket = onPacket;
  }

  /** Feeds one chunk; whole packets are delivered synchronously, a partial tail is kept. */
  push(chunk: Buffer): void {
    const buf = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk]);
    this.#pending = null;
    let pos = 0;
    const n = buf.length;
    while (pos + 2 <= n) {
      let len = 0;
      let mul = 1;
      let i = pos + 1;
      let done = false;
      for (let k = 0; k < 4 && i < n; k++, i++) {
        const b = buf[i] ?? 0;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) {
          done = true;
          i++;
          break;
        }
      }
      if (!done) {
        if (i - pos - 1 >= 4) throw new LoadClientError('ERR_LOAD_PROTOCOL', 'remaining length longer than 4 bytes');
        break;
      }
      const end = i + len;
      if (end > n) break;
      this.#onPacket(buf, pos, end);
      pos = end;
    }
    if (pos < n) this.#pending = Buffer.from(buf.subarray(pos));
  }
}

/** Where the parts of a PUBLISH packet lie in its buffer. */
export interface PublishView {
  qos: 0 | 1 | 2;
  dup: boolean;
  retain: boolean;
  messageId: number;
  topicStart: number;
  topicEnd: number;
  payload: Buffer;
}

/**
 * Decodes the PUBLISH in `buf[start, end)`. With `v5`, skips the property block.
 * Returns null when the packet is malformed.
 */
export function decodePublish(buf: Buffer, start: number, end: number, v5: boolean): PublishView | null {
  const b0 = buf[start] ?? 0;
  const qos = (b0 >> 1) & 3;
  if (qos === 3) return null;
  let i = start + 1;
  while (((buf[i] ?? 0) & 0x80) !== 0) i++;
  i++;
  if (i + 2 > end) return null;
  const topicLen = buf.readUInt16BE(i);
  const topicStart = i + 2;
  const topicEnd = topicStart + topicLen;
  i = topicEnd;
  let messageId = 0;
  if (qos > 0) {
    if (i + 2 > end) return null;
    messageId = buf.readUInt16BE(i);
    i += 2;
  }
  if (v5) {
    let propLen = 0;
    let mul = 1;
    for (let k = 0; k < 4; k++) {
      const b = buf[i++];
      if (b === undefined) return null;
      propLen += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) break;
    }
    i += propLen;
  }
  if (i > end) return null;
  return {
    qos: qos as 0 | 1 | 2,
    dup: (b0 & 8) !== 0,
    retain: (b0 & 1) !== 0,
    messageId,
    topicStart,
    topicEnd,
    payload: buf.subarray(i, end),
  };
}

/** Bytes of the remaining-length varint for `len`. */
export function varintBytes(len: number): number {
  return len < 128 ? 1 : len < 16_384 ? 2 : len < 2_097_152 ? 3 : 4;
}

/** Writes the remaining-length varint at `at`; returns the offset after it. */
export function writeVarint(buf: Buffer, at: number, len: number): number {
  let v = len;
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    buf[at++] = b;
  } while (v > 0);
  return at;
}

/**
 * Builds a PUBLISH packet around a copy of `payload`. Returns the packet and the offset of the
 * payload inside it, so the caller can stamp the sequence number and send time in place.
 */
export function buildPublish(
  topic: Buffer,
  payload: Buffer,
  qos: 0 | 1 | 2,
  messageId: number,
  v5: boolean,
  properties: Buffer | null = null,
): { packet: Buffer; payloadAt: number } {
  const props = v5 && properties !== null ? properties : null;
  const propsLen = props === null ? 0 : props.length;
  const remaining = 2 + topic.length + (qos > 0 ? 2 : 0) + (v5 ? varintBytes(propsLen) + propsLen : 0) + payload.length;
  const packet = Buffer.allocUnsafe(1 + varintBytes(remaining) + remaining);
  packet[0] = 0x30 | (qos << 1);
  let at = writeVarint(packet, 1, remaining);
  packet.writeUInt16BE(topic.length, at);
  at += 2;
  topic.copy(packet, at);
  at += topic.length;
  if (qos > 0) {
    packet.writeUInt16BE(messageId, at);
    at += 2;
  }
  if (v5) {
    at = writeVarint(packet, at, propsLen);
    if (props !== null) at += props.copy(packet, at);
  }
  payload.copy(packet, at);
  return { packet, payloadAt: at };
}

/** PUBACK (0x40), PUBREC (0x50), PUBREL (0x62), PUBCOMP (0x70) with a packet id: 4 bytes. */
export function buildAck(firstByte: 0x40 | 0x50 | 0x62 | 0x70, messageId: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b[0] = firstByte;
  b[1] = 2;
  b.writeUInt16BE(messageId, 2);
  return b;
}

export const PINGREQ = Buffer.from([0xc0, 0]);
export const DISCONNECT = Buffer.from([0xe0, 0]);
