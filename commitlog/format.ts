/**
 * The on-disk formats of segment and index files: the only file that knows their byte layout.
 * All integers are little-endian.
 *
 * Segment file (record bytes only; boundaries live in the index):
 *
 *   0        4          8                    16
 *   ┌────────┬──────────┬────────────────────┬──────────┬──────────┬─────┐
 *   │ "MQLS" │ version  │ base offset        │ record 0 │ record 1 │ ... │
 *   │ magic  │ u32 = 1  │ u64 (lo u32,hi u32)│ bytes    │ bytes    │     │
 *   └────────┴──────────┴────────────────────┴──────────┴──────────┴─────┘
 *
 * Index file (one fixed-size entry per record, entry i describes offset base + i):
 *
 *   0        4          8                    16
 *   ┌────────┬──────────┬────────────────────┬─────────┬─────────┬─────┐
 *   │ "MQLI" │ version  │ base offset        │ entry 0 │ entry 1 │ ... │
 *   │ magic  │ u32 = 1  │ u64 (lo u32,hi u32)│ 20 B    │ 20 B    │     │
 *   └────────┴──────────┴────────────────────┴─────────┴─────────┴─────┘
 *
 *   entry (20 bytes):
 *   0          4          8          12                   20
 *   ┌──────────┬──────────┬──────────┬────────────────────┐
 *   │ crc u32  │ pos u32  │ len u32  │ timestamp ms u64   │
 *   │          │ in seg.  │ bytes    │ (lo u32, hi u32)   │
 *   └──────────┴──────────┴──────────┴────────────────────┘
 *
 *   crc = CRC-32 (zlib.crc32) of the record bytes, with the register seeded from pos, len and
 *   timestamp (entrySeed) so one native call covers the entry and the record (an empty record's
 *   crc is the seed itself). A zero-filled
 *   entry can never validate: pos 0 lies inside the header.
 *
 * Invariants of a valid segment: entry 0 has pos = HEADER_BYTES; entry i+1 has
 * pos = pos_i + len_i; the segment's size is pos_last + len_last; every crc matches.
 */
import { crc32 } from 'node:zlib';
import { CommitLogError } from './errors.js';

/** Bytes of the header of both files. */
export const HEADER_BYTES = 16;
/** Bytes of one index entry. */
export const INDEX_ENTRY_BYTES = 20;
/** Current version of both formats. */
export const FORMAT_VERSION = 1;
/** "MQLS" read as a little-endian u32. */
export const SEGMENT_MAGIC = 0x534c514d;
/** "MQLI" read as a little-endian u32. */
export const INDEX_MAGIC = 0x494c514d;

const TWO_32 = 2 ** 32;

/** A fresh header for a segment or index file. */
export function encodeHeader(magic: number, base: number): Buffer {
  const b = Buffer.allocUnsafe(HEADER_BYTES);
  b.writeUInt32LE(magic, 0);
  b.writeUInt32LE(FORMAT_VERSION, 4);
  b.writeUInt32LE(base % TWO_32, 8);
  b.writeUInt32LE(Math.floor(base / TWO_32), 12);
  return b;
}

/** Header check result: 'blank' means all zero (a file created but never written). */
export type HeaderState = 'ok' | 'blank';

/**
 * Checks a header read from `path`. Blank (zero-filled) headers are reported, not thrown:
 * they are what a crash right after creating the file leaves. Anything else that is wrong
 * throws ERR_COMMITLOG_VERSION or ERR_COMMITLOG_CORRUPT.
 */
export function checkHeader(buf: Buffer, magic: number, base: number, path: string): HeaderState {
  if (buf.length < HEADER_BYTES || buf.every((x) => x === 0)) return 'blank';
  if (buf.readUInt32LE(0) !== magic) {
    throw new CommitLogError('ERR_COMMITLOG_CORRUPT', `${path}: bad magic in header`, { path, position: 0 });
  }
  const version = buf.readUInt32LE(4);
  if (version !== FORMAT_VERSION) {
    throw new CommitLogError('ERR_COMMITLOG_VERSION', `${path}: format version ${version}, this build reads ${FORMAT_VERSION}`, {
      path,
      position: 4,
    });
  }
  const fileBase = buf.readUInt32LE(8) + buf.readUInt32LE(12) * TWO_32;
  if (fileBase !== base) {
    throw new CommitLogError('ERR_COMMITLOG_CORRUPT', `${path}: header says base offset ${fileBase}, file name says ${base}`, {
      path,
      position: 8,
    });
  }
  return 'ok';
}

/** Register seed mixing an entry's fields, so the crc covers them too. */
export function entrySeed(pos: number, len: number, tsLo: number, tsHi: number): number {
  return (Math.imul(pos, 0x9e3779b1) ^ Math.imul(len, 0x85ebca6b) ^ Math.imul(tsLo, 0xc2b2ae35) ^ tsHi) >>> 0;
}

/** Writes the entry for `record` at byte `at` of `out`. */
export function writeEntry(out: Buffer, at: number, pos: number, record: Uint8Array, timestampMs: number): void {
  const len = record.length;
  const tsLo = timestampMs % TWO_32;
  const tsHi = Math.floor(timestampMs / TWO_32);
  out.writeUInt32LE(checksum(record, entrySeed(pos, len, tsLo, tsHi)), at);
  out.writeUInt32LE(pos, at + 4);
  out.writeUInt32LE(len, at + 8);
  out.writeUInt32LE(tsLo, at + 12);
  out.writeUInt32LE(tsHi, at + 16);
}

/** One decoded index entry. */
export interface IndexEntry {
  crc: number;
  pos: number;
  len: number;
  timestampMs: number;
}

/** Decodes the entry at byte `at` of `buf`. */
export function readEntry(buf: Buffer, at: number): IndexEntry {
  return {
    crc: buf.readUInt32LE(at),
    pos: buf.readUInt32LE(at + 4),
    len: buf.readUInt32LE(at + 8),
    timestampMs: buf.readUInt32LE(at + 12) + buf.readUInt32LE(at + 16) * TWO_32,
  };
}

/** True when `record` matches the entry at byte `at` of `index`. */
export function entryMatches(index: Buffer, at: number, record: Uint8Array): boolean {
  const pos = index.readUInt32LE(at + 4);
  const len = index.readUInt32LE(at + 8);
  if (record.length !== len) return false;
  const seed = entrySeed(pos, len, index.readUInt32LE(at + 12), index.readUInt32LE(at + 16));
  return checksum(record, seed) === index.readUInt32LE(at);
}

/**
 * crc32 of `record` from register `seed`. Empty records skip the native call: zlib answers 0
 * instead of the seed when the (empty) buffer has no data pointer, so the result would depend on
 * how the empty buffer was made.
 */
function checksum(record: Uint8Array, seed: number): number {
  return record.length === 0 ? seed : crc32(record, seed);
}

/** Size of an index file holding `count` entries. */
export function indexBytes(count: number): number {
  return HEADER_BYTES + count * INDEX_ENTRY_BYTES;
}
