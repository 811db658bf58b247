/**
 * Hand-built encodings of the packets on the hot path (PUBLISH header, PUBACK, PUBREC, PUBREL,
 * PUBCOMP, PINGRESP) for MQTT 3.1.1. Everything else goes through mqtt-packet's generate().
 * A PUBLISH leaves as two buffers — this header and the payload view from the log — so the
 * payload is never copied per subscriber.
 */
import { varintBytes, writeVarint } from './varint.js';

/**
 * The fixed header, topic and packet id of a 3.1.1 PUBLISH whose payload follows separately.
 * `topic` is the topic name already encoded as UTF-8.
 */
export function encodePublishHeader(topic: Buffer, qos: number, retain: boolean, dup: boolean, packetId: number, payloadBytes: number): Buffer {
  const variable = 2 + topic.length + (qos > 0 ? 2 : 0);
  const remaining = variable + payloadBytes;
  const header = Buffer.allocUnsafe(1 + varintBytes(remaining) + variable);
  header[0] = 0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0);
  let pos = writeVarint(header, 1, remaining);
  header[pos++] = topic.length >> 8;
  header[pos++] = topic.length & 0xff;
  pos += topic.copy(header, pos);
  if (qos > 0) {
    header[pos++] = packetId >> 8;
    header[pos] = packetId & 0xff;
  }
  return header;
}

/** PUBACK 0x40, PUBREC 0x50, PUBREL 0x62, PUBCOMP 0x70, UNSUBACK 0xb0 (3.1.1): four bytes each. */
export function encodeAck(firstByte: 0x40 | 0x50 | 0x62 | 0x70 | 0xb0, packetId: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b[0] = firstByte;
  b[1] = 2;
  b[2] = packetId >> 8;
  b[3] = packetId & 0xff;
  return b;
}

export const PINGRESP = Buffer.from([0xd0, 0x00]);
