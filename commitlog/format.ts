/**
 * The on-disk formats of segment and index files: the only file that knows their byte layout.
 * All integers are little-endian. Version 2 (version 1 carried one checksum per record).
 *
 * Segment file (record bytes only; boundaries live in the index):
 *
 *   0        4          8                    16
 *   ┌────────┬──────────┬────────────────────┬──────────┬──────────┬─────┐
 *   │ "MQLS" │ version  │ base offset        │ record 0 │ record 1 │ ... │
 *   │ magic  │ u32 = 2  │ u64 (lo u32,hi u32)│ bytes    │ bytes    │     │
 *   └────────┴──────────┴────────────────────┴──────────┴──────────┴─────┘
 *
 * Index file (one fixed-size entry per record, entry i describes offset base + i):
 *
 *   0        4          8                    16
 *   ┌────────┬──────────┬────────────────────┬─────────┬─────────┬─────┐
 *   │ "MQLI" │ version  │ base offset        │ entry 0 │ entry 1 │ ... │
 *   │ magic  │ u32 = 2  │ u64 (lo u32,hi u32)│ 20 B    │ 20 B    │     │
 *   └────────┴──────────┴────────────────────┴─────────┴─────────┴─────┘
 *
 *   entry (20 bytes):
 *   0          4                      8                    16         20
 *   ┌──────────┬──────────────────────┬────────────────────┬──────────┐
 *   │ pos u32  │ len u32: bit 31 set  │ timestamp ms u64   │ crc u32  │
 *   │ in seg.  │ on a chunk's last    │ (lo u32, hi u32)   │ (0 unless│
 *   │          │ record, bit 30 on its│                    │ last)    │
 *   │          │ first, bits 0-29 len │                    │          │
 *   └──────────┴──────────────────────┴────────────────────┴──────────┘
 *
 * Chunks: consecutive records written together are checksummed as one chunk of at most
 * CHUNK_MAX_RECORDS records and (unless one record alone is larger) CHUNK_MAX_BYTES of record
 * bytes, never across segments or batches (one write of the log). The chunk's last entry carries the END flag and
 *
 *   crc = CRC-32 (IEEE, as zlib.crc32) of the chunk's record bytes, with the register seeded by
 *         the CRC-32 of the chunk's index entries from the first entry's first byte up to (not
 *         including) the last entry's crc field
 *
 * so one checksum covers every field of every entry and every record byte of the chunk; the
 * other entries' crc fields are 0 (and covered). A chunk validates as a whole: a record is
 * readable only if its chunk is intact. A zero-filled entry never validates: pos 0 lies inside
 * the header. Both ends of a chunk are flagged, so one damaged entry cannot hide where the next
 * chunk starts (recovery looks for intact chunks after damage).
 *
 * Invariants of a valid segment: entry 0 has pos = HEADER_BYTES; entry i+1 has
 * pos = pos_i + len_i; the segment's size is pos_last + len_last; the last entry ends a chunk;
 * every chunk's crc matches.
 */
import { createRequire } from 'node:module';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { CommitLogError } from './errors.js';

/** Bytes of the header of both files. */
export const HEADER_BYTES = 16;
/** Bytes of one index entry. */
export const INDEX_ENTRY_BYTES = 20;
/** Current version of both formats. */
export const FORMAT_VERSION = 2;
/** "MQLS" read as a little-endian u32. */
export const SEGMENT_MAGIC = 0x534c514d;
/** "MQLI" read as a little-endian u32. */
export const INDEX_MAGIC = 0x494c514d;
/** Most records in one chunk: a reader looks back at most this many entries for a chunk start. */
export const CHUNK_MAX_RECORDS = 512;
/** Most record bytes in one chunk, unless a single record is larger. */
export const CHUNK_MAX_BYTES = 32 * 1024;
/** Set in an entry's len field on the last record of a chunk. */
const END_FLAG = 0x80000000;
/** Set in an entry's len field on the first record of a chunk. */
const START_FLAG = 0x40000000;
/** The len field's record length bits: records are < 1 GiB (MAX_RECORD_BYTES_MAX). */
const LEN_MASK = 0x3fffffff;
/** Byte of an entry where its crc field starts. */
const CRC_AT = 16;

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

/**
 * Writes the entry of a record at byte `at` of `out`, crc 0 and not (yet) ending a chunk;
 * `first` flags the first record of a chunk.
 */
export function writeEntry(out: Buffer, at: number, pos: number, len: number, timestampMs: number, first: boolean): void {
  out.writeUInt32LE(pos, at);
  out.writeUInt32LE(first ? (START_FLAG | len) >>> 0 : len, at + 4);
  out.writeUInt32LE(timestampMs % TWO_32, at + 8);
  out.writeUInt32LE(Math.floor(timestampMs / TWO_32), at + 12);
  out.writeUInt32LE(0, at + CRC_AT);
}

/** Whether this host stores a Uint32Array's elements little-endian, as the format does. */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * A Uint32Array over `index` for writeEntryWords(), or null when the host is big-endian or the
 * buffer is not 4-byte aligned (then use writeEntry()). Five array stores cost a fifth of five
 * writeUInt32LE calls: 256 entries took 31 µs that way (notes/commitlog.md, run 13).
 */
export function entryWords(index: Buffer): Uint32Array | null {
  if (!HOST_LITTLE_ENDIAN || index.byteOffset % 4 !== 0) return null;
  return new Uint32Array(index.buffer, index.byteOffset, index.length >>> 2);
}

/** writeEntry() through entryWords(index); `at` is the entry's byte position (a multiple of 4). */
export function writeEntryWords(words: Uint32Array, at: number, pos: number, len: number, timestampMs: number, first: boolean): void {
  const w = at >>> 2;
  words[w] = pos;
  words[w + 1] = first ? (START_FLAG | len) >>> 0 : len;
  words[w + 2] = timestampMs % TWO_32;
  words[w + 3] = Math.floor(timestampMs / TWO_32);
  words[w + 4] = 0;
}

/** Record position of the entry at byte `at`. */
export function entryPos(index: Buffer, at: number): number {
  return index.readUInt32LE(at);
}

/** Record length of the entry at byte `at`. */
export function entryLen(index: Buffer, at: number): number {
  return index.readUInt32LE(at + 4) & LEN_MASK;
}

/** True when the entry at byte `at` ends its chunk. */
export function entryEndsChunk(index: Buffer, at: number): boolean {
  return (index.readUInt32LE(at + 4) & END_FLAG) !== 0;
}

/** True when the entry at byte `at` starts its chunk. */
export function entryStartsChunk(index: Buffer, at: number): boolean {
  return (index.readUInt32LE(at + 4) & START_FLAG) !== 0;
}

/** Append timestamp (ms since the epoch) of the entry at byte `at`. */
export function entryTimestamp(index: Buffer, at: number): number {
  return index.readUInt32LE(at + 8) + index.readUInt32LE(at + 12) * TWO_32;
}

/** The chunk's checksum: its entries [firstAt, lastAt] of `index`, then its record bytes. */
function chunkCrc(index: Buffer, firstAt: number, lastAt: number, records: Uint8Array): number {
  return checksum(records, checksum(index.subarray(firstAt, lastAt + CRC_AT), 0));
}

/**
 * Ends the chunk whose entries (written by writeEntry) lie at bytes [firstAt, lastAt + 20) of
 * `index` and whose record bytes are the concatenation of `pieces`: flags its last entry and
 * fills in its crc.
 */
export function sealChunk(index: Buffer, firstAt: number, lastAt: number, pieces: readonly Uint8Array[]): void {
  index.writeUInt32LE((index.readUInt32LE(lastAt + 4) | END_FLAG) >>> 0, lastAt + 4);
  let crc = checksum(index.subarray(firstAt, lastAt + CRC_AT), 0);
  for (const p of pieces) crc = checksum(p, crc);
  index.writeUInt32LE(crc, lastAt + CRC_AT);
}

/** True when the chunk at entries [firstAt, lastAt] of `index` matches `records`. */
export function chunkMatches(index: Buffer, firstAt: number, lastAt: number, records: Uint8Array): boolean {
  return entryEndsChunk(index, lastAt) && chunkCrc(index, firstAt, lastAt, records) === index.readUInt32LE(lastAt + CRC_AT);
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

/** A native CRC-32 with zlib.crc32's results: (bytes, seed) → crc. */
type Crc32 = (bytes: Uint8Array, seed: number) => number;

/**
 * @node-rs/crc32 computes the same CRC-32 as zlib with carry-less multiplication (10 GB/s here
 * against zlib's 2.4–3.7 GB/s, notes/commitlog.md run 7); zlib.crc32 stands in when its binary
 * does not load on a platform. Either gives identical files.
 */
function loadNativeCrc32(): { crc32: Crc32; name: string } {
  try {
    const mod = createRequire(import.meta.url)('@node-rs/crc32') as { crc32: (input: Uint8Array, initialState?: number) => number };
    const probe = Buffer.from('123456789');
    if (mod.crc32(probe, 0) === zlibCrc32(probe, 0)) return { crc32: mod.crc32, name: '@node-rs/crc32' };
  } catch {
    // no binary for this platform: zlib's table-driven CRC below
  }
  return { crc32: (b, s) => zlibCrc32(b, s), name: 'zlib' };
}

const native = loadNativeCrc32();

/** Which native CRC-32 this process uses ('@node-rs/crc32' or 'zlib'), for benchmarks and logs. */
export const CRC32_IMPLEMENTATION = native.name;

/**
 * CRC-32 of `bytes` from register `seed`, identical to zlib.crc32(bytes, seed). Empty input
 * skips the native call (zlib answers 0 instead of the seed when an empty buffer has no data
 * pointer); small inputs use the JS table, cheaper than a native call's fixed cost.
 */
export function checksum(bytes: Uint8Array, seed: number): number {
  const n = bytes.length;
  if (n === 0) return seed;
  return n < JS_CRC_MAX_BYTES ? crc32Js(bytes, seed) : native.crc32(bytes, seed);
}

/** Size of an index file holding `count` entries. */
export function indexBytes(count: number): number {
  return HEADER_BYTES + count * INDEX_ENTRY_BYTES;
}
