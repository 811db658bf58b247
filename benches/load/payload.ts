/**
 * The 24-byte header every load message carries, so the receiving side can measure end-to-end
 * latency and count lost, duplicated and reordered messages without any shared state:
 *
 * ```
 *  0        2        4            8             12            16                          24
 *  +--------+--------+------------+-------------+-------------+---------------------------+---...
 *  | 0x4D4C | vers 1 |   run id   | sender index|   sequence  |  send time, ns (u64 BE)   | zero
 *  |  "ML"  |  u16   |    u32     |     u32     |     u32     |  process.hrtime.bigint()  | padding
 *  +--------+--------+------------+-------------+-------------+---------------------------+---...
 * ```
 *
 * The sender index is the publishing client's number; its client id is
 * `<prefix>-p<index>` (or `-l<index>` for ping-pong), so index and run id name the client.
 * Clock: `process.hrtime.bigint()` reads CLOCK_MONOTONIC, which is one clock for every thread
 * and process of the machine, so sender and receiver agree even across worker threads or
 * separate load processes (never across machines — the load is loopback only).
 */

/** Bytes of the header at the start of every payload. */
export const HEADER_BYTES = 24;
const MAGIC = 0x4d4c;
const VERSION = 1;

/** What a receiver learns from one payload. */
export interface PayloadHeader {
  runId: number;
  sender: number;
  seq: number;
  sentNs: bigint;
}

/** A reusable payload: fill the per-message fields in place, then copy it into the packet. */
export function payloadTemplate(bytes: number, runId: number, sender: number): Buffer {
  const buf = Buffer.alloc(bytes);
  buf.writeUInt16BE(MAGIC, 0);
  buf.writeUInt16BE(VERSION, 2);
  buf.writeUInt32BE(runId, 4);
  buf.writeUInt32BE(sender, 8);
  return buf;
}

/** Writes the sequence number and the send time into a payload that starts at `at` in `buf`. */
export function stampPayload(buf: Buffer, at: number, seq: number, sentNs: bigint): void {
  buf.writeUInt32BE(seq, at + 12);
  buf.writeBigUInt64BE(sentNs, at + 16);
}

/** Reads the header, or returns null when the payload is not one of ours (too short, wrong magic). */
export function readPayloadHeader(payload: Buffer): PayloadHeader | null {
  if (payload.length < HEADER_BYTES) return null;
  if (payload.readUInt16BE(0) !== MAGIC || payload.readUInt16BE(2) !== VERSION) return null;
  return {
    runId: payload.readUInt32BE(4),
    sender: payload.readUInt32BE(8),
    seq: payload.readUInt32BE(12),
    sentNs: payload.readBigUInt64BE(16),
  };
}
