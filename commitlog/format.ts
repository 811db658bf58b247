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

/** Below this many bytes the JS CRC beats the native call's fixed cost (measured: 64 B 185 vs 281 ns). */
export const JS_CRC_MAX_BYTES = 96;

/** Slicing-by-8 tables of the CRC-32 (IEEE, reflected 0xEDB88320) that zlib.crc32 computes. */
const CRC_TABLE = new Int32Array(256 * 8);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  CRC_TABLE[n] = c;
}
for (let n = 0; n < 256; n++) {
  let c = CRC_TABLE[n] as number;
  for (let t = 1; t < 8; t++) {
    c = (CRC_TABLE[c & 0xff] as number) ^ (c >>> 8);
    CRC_TABLE[t * 256 + n] = c;
  }
}

/** zlib.crc32(buf, seed) in JavaScript, for small buffers. */
export function crc32Js(buf: Uint8Array, seed: number): number {
  const T = CRC_TABLE;
  let c = ~seed;
  let i = 0;
  const n = buf.length;
  const end8 = n - (n & 7);
  for (; i < end8; i += 8) {
    const a = c ^ ((buf[i] as number) | ((buf[i + 1] as number) << 8) | ((buf[i + 2] as number) << 16) | ((buf[i + 3] as number) << 24));
    c =
      (T[1792 + (a & 0xff)] as number) ^
      (T[1536 + ((a >>> 8) & 0xff)] as number) ^
      (T[1280 + ((a >>> 16) & 0xff)] as number) ^
      (T[1024 + (a >>> 24)] as number) ^
      (T[768 + (buf[i + 4] as number)] as number) ^
      (T[512 + (buf[i + 5] as number)] as number) ^
      (T[256 + (buf[i + 6] as number)] as number) ^
      (T[buf[i + 7] as number] as number);
  }
  for (; i < n; i++) c = (T[(c ^ (buf[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * CRC-32 of `record` from register `seed`, identical to zlib.crc32(record, seed). Empty records
 * skip the native call (zlib answers 0 instead of the seed when an empty buffer has no data
 * pointer); small ones use the JS table, which is cheaper than the native call's fixed cost.
 */
export function checksum(record: Uint8Array, seed: number): number {
  const n = record.length;
  if (n === 0) return seed;
  return n < JS_CRC_MAX_BYTES ? crc32Js(record, seed) : crc32(record, seed);
}

/** Size of an index file holding `count` entries. */
export function indexBytes(count: number): number {
  return HEADER_BYTES + count * INDEX_ENTRY_BYTES;
}
