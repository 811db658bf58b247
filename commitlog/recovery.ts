/**
 * Opening a log's directory: finds its segments, validates what a crash could have left
 * unfinished and truncates it to the last fully valid record.
 *
 * What is validated (the unit is a chunk, format.ts: the records one write checksummed together):
 * - After an unclean stop (the store's clean-shutdown list does not name the log with its
 *   newest segment's current sizes) every chunk of the newest segment: each entry's position
 *   must follow the previous record, its record must lie inside the segment, the chunk must end (flag) within CHUNK_MAX_RECORDS entries and its crc must match. The first
 *   invalid chunk and everything after it are truncated (index and segment both): its records
 *   were written by one pwritev that never finished, so none of them was acknowledged — unless a
 *   later chunk is intact. A process crash cannot produce that (the page cache keeps every
 *   write, in order), so when the log was last written in this boot of the machine (the
 *   store's boot list names it) the damage is in the middle and opening fails with
 *   ERR_COMMITLOG_CORRUPT naming the file and position. After a reboot a power loss can (the
 *   disk kept a later unsynced write and lost an earlier one): the log then ends at the damage
 *   and the report says so (cutBeforeIntact), as Kafka ends a log at its first invalid batch.
 * - After a clean close in this boot only the newest chunk is checked (a mismatch falls back
 *   to the full check above, and to the check of the segment before it). With durability
 *   'batch' older, sealed segments were fdatasynced with every batch, so only their sizes are
 *   checked on open; their crcs are checked on every read.
 * - With durability 'interval' / 'never' nothing forces sealed segments to disk (only the
 *   interval timer, or nothing), so after a power loss a sealed one may be torn. An unclean
 *   open of such a log also validates the segment before the newest, and any sealed segment
 *   whose sizes disagree; a tear there becomes the end of the log (later segments are dropped).
 * - A newest segment with no valid record (created but never written, or wholly torn) is
 *   deleted, and the one before it becomes the newest (it was synced at the roll).
 *
 * Must not: read sealed segments in full, or ever return a record whose crc did not match.
 */
import { CommitLogError, ioError } from './errors.js';
import type { FileCache, FileRef } from './file-cache.js';
import type { CleanStamp } from './clean-list.js';
import type { FileOps } from './file-ops.js';
import {
  CHUNK_MAX_RECORDS,
  HEADER_BYTES,
  INDEX_ENTRY_BYTES,
  INDEX_MAGIC,
  SEGMENT_MAGIC,
  checkHeader,
  chunkMatches,
  entryEndsChunk,
  entryLen,
  entryPos,
  entryStartsChunk,
  entryTimestamp,
  indexBytes,
} from './format.js';
import { LEGACY_BOOT_MARKER_PREFIX, LEGACY_CLEAN_MARKER, indexFileName, parseFileName, segmentFileName } from './naming.js';
import { join } from 'node:path';

/** Recovery reads the newest segment in windows of this many bytes. */
export const RECOVERY_WINDOW_BYTES = 8 * 1024 * 1024;

/** What the log knows about one segment without reading it. */
export interface SegmentState {
  readonly base: number;
  /** Records in the segment (committed ones only, once the log is running). */
  count: number;
  /** Size of the segment file in bytes, header included. */
  bytes: number;
  /** Timestamp of the newest record, or -1 if not read yet. */
  lastTimestampMs: number;
  readonly segPath: string;
  readonly idxPath: string;
}

/** What opening a log found and did. */
export interface RecoveryReport {
  /** The store's clean-shutdown list named the log, with a stamp its newest segment still matches (clean-list.ts). */
  readonly clean: boolean;
  /** Records dropped because they were torn: the newest segment's, and from a torn sealed segment on. */
  readonly truncatedRecords: number;
  /** Segment bytes dropped because no valid index entry covered them (of segments already sized). */
  readonly truncatedBytes: number;
  /** Segment files deleted because they held no valid record. */
  readonly removedSegments: number;
  /**
   * A sealed segment was torn, so the log now ends inside it and every later segment was dropped.
   * A power loss can do that to records no sync round had committed yet; bit rot in a sealed
   * segment's last chunk looks the same and takes committed records with it. Report it loudly.
   */
  readonly tornSealed: boolean;
  /**
   * The log was last written in this boot of the machine (StoreOptions.bootId): recovery was
   * strict, and damage before an intact chunk would have been ERR_COMMITLOG_CORRUPT.
   */
  readonly sameBoot: boolean;
  /**
   * Recovery after a reboot found damage followed by intact chunks and ended the log at the
   * damage. A power loss that kept a later unsynced write and lost an earlier one leaves exactly
   * that, and takes nothing a sync round had committed; damage on disk looks the same and takes
   * committed records with it. Report it loudly.
   */
  readonly cutBeforeIntact: boolean;
}

/** A segment takes the size recovery validated. */
function sizeFrom(s: SegmentState, check: SegmentCheck): void {
  s.count = check.count;
  s.bytes = check.bytes;
  s.lastTimestampMs = check.lastTimestampMs;
}

export function newSegmentState(dir: string, base: number): SegmentState {
  return { base, count: 0, bytes: 0, lastTimestampMs: -1, segPath: join(dir, segmentFileName(base)), idxPath: join(dir, indexFileName(base)) };
}

async function readExact(ops: FileOps, ref: FileRef, path: string, length: number, position: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  try {
    while (done < length) {
      const n = await ops.read(ref.fd, buf, done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
  } catch (err) {
    throw ioError('read', path, err);
  }
  return done === length ? buf : buf.subarray(0, done);
}

interface SegmentCheck {
  count: number;
  bytes: number;
  lastTimestampMs: number;
  truncatedRecords: number;
  truncatedBytes: number;
  /** Damage was followed by an intact chunk and, recovery not being strict, ended the segment. */
  cutBeforeIntact: boolean;
  /** The clean-shutdown stamp matched the segment's base and file sizes. */
  stampOk: boolean;
  /** Only the newest chunk was checked (a clean close in this boot, and it was intact). */
  quick: boolean;
}

/**
 * Validates (and truncates) one segment + index pair; count 0 means it holds nothing valid.
 * `strict`: damage before an intact chunk is ERR_COMMITLOG_CORRUPT (the log was last written in
 * this boot); otherwise it ends the segment like a tear. With strict and a `stamp` (a clean
 * close's) that matches the files' sizes, only the newest chunk is checked.
 */
async function recoverSegment(ops: FileOps, cache: FileCache, seg: SegmentState, stamp: CleanStamp | null, strict: boolean): Promise<SegmentCheck> {
  const none: SegmentCheck = { count: 0, bytes: 0, lastTimestampMs: -1, truncatedRecords: 0, truncatedBytes: 0, cutBeforeIntact: false, stampOk: false, quick: false };
  // Independent calls go out together: opening 10k logs is bound by these round trips.
  const [segSize, idxSize] = await Promise.all([
    ops.stat(seg.segPath).catch((e: unknown) => Promise.reject(ioError('stat', seg.segPath, e))),
    ops.stat(seg.idxPath).catch((e: unknown) => Promise.reject(ioError('stat', seg.idxPath, e))),
  ]);
  if (segSize === null || idxSize === null || segSize < HEADER_BYTES || idxSize < HEADER_BYTES) return none;
  const [segRef, idxRef] = (await cache.acquire([seg.segPath, seg.idxPath], false)) as [FileRef, FileRef];
  try {
    const n = Math.floor((idxSize - HEADER_BYTES) / INDEX_ENTRY_BYTES);
    const stampOk = stamp !== null && stamp.base === seg.base && stamp.segBytes === segSize && stamp.idxBytes === idxSize;
    // A clean close is only as good as the boot it was written in: under 'never' close does not
    // sync, so after a reboot the files may hold less than the stamp says, or other bytes.
    const fast = strict && stampOk && n > 0 && idxSize === indexBytes(n);
    // one entry more than a chunk can hold, so the newest chunk's start is always in view
    const tailFrom = Math.max(0, n - CHUNK_MAX_RECORDS - 1);
    const [segHeader, idxHeader, tail] = await Promise.all([
      readExact(ops, segRef, seg.segPath, HEADER_BYTES, 0),
      readExact(ops, idxRef, seg.idxPath, HEADER_BYTES, 0),
      fast ? readExact(ops, idxRef, seg.idxPath, (n - tailFrom) * INDEX_ENTRY_BYTES, indexBytes(tailFrom)) : Promise.resolve(null),
    ]);
    if (checkHeader(segHeader, SEGMENT_MAGIC, seg.base, seg.segPath) === 'blank') return none;
    if (checkHeader(idxHeader, INDEX_MAGIC, seg.base, seg.idxPath) === 'blank') return none;

    if (tail !== null && tail.length === (n - tailFrom) * INDEX_ENTRY_BYTES) {
      // A clean close: check the newest chunk only.
      const lastAt = tail.length - INDEX_ENTRY_BYTES;
      let firstAt = lastAt;
      while (firstAt > 0 && !entryEndsChunk(tail, firstAt - INDEX_ENTRY_BYTES)) firstAt -= INDEX_ENTRY_BYTES;
      const pos = entryPos(tail, firstAt);
      const end = entryPos(tail, lastAt) + entryLen(tail, lastAt);
      if (end === segSize && pos >= HEADER_BYTES && (firstAt > 0 || tailFrom === 0)) {
        const data = await readExact(ops, segRef, seg.segPath, end - pos, pos);
        if (data.length === end - pos && chunkMatches(tail, firstAt, lastAt, data)) {
          return { count: n, bytes: segSize, lastTimestampMs: entryTimestamp(tail, lastAt), truncatedRecords: 0, truncatedBytes: 0, cutBeforeIntact: false, stampOk, quick: true };
        }
      }
    }

    const entries = n === 0 ? Buffer.alloc(0) : await readExact(ops, idxRef, seg.idxPath, n * INDEX_ENTRY_BYTES, HEADER_BYTES);
    const usable = Math.floor(entries.length / INDEX_ENTRY_BYTES);
    let winStart = 0;
    let win: Buffer = Buffer.alloc(0);
    // Chunks come from an 8 MiB window of the segment; an await only when it moves.
    const chunkData = async (pos: number, len: number): Promise<Buffer> => {
      if (!(pos >= winStart && pos + len <= winStart + win.length)) {
        winStart = pos;
        win = await readExact(ops, segRef, seg.segPath, Math.min(segSize - pos, Math.max(len, RECOVERY_WINDOW_BYTES)), pos);
      }
      return win.subarray(pos - winStart, pos - winStart + len);
    };
    const plausible = (pos: number, len: number): boolean => pos >= HEADER_BYTES && pos + len <= segSize;
    /**
     * The chunk whose first entry is `j`: its last entry and byte range, if it is flagged as
     * starting there, its entries are contiguous, inside the segment and end within
     * CHUNK_MAX_RECORDS; else null.
     */
    const chunkAt = (j: number, startPos: number): { last: number; end: number } | null => {
      let expect = startPos;
      for (let k = j; k < usable && k < j + CHUNK_MAX_RECORDS; k++) {
        const at = k * INDEX_ENTRY_BYTES;
        const pos = entryPos(entries, at);
        const len = entryLen(entries, at);
        if (pos !== expect || !plausible(pos, len) || entryStartsChunk(entries, at) !== (k === j)) return null;
        expect += len;
        if (entryEndsChunk(entries, at)) return { last: k, end: expect };
      }
      return null;
    };
    const intact = async (j: number, startPos: number): Promise<{ last: number; end: number } | null> => {
      const c = chunkAt(j, startPos);
      if (c === null) return null;
      const data = await chunkData(startPos, c.end - startPos);
      return chunkMatches(entries, j * INDEX_ENTRY_BYTES, c.last * INDEX_ENTRY_BYTES, data) ? c : null;
    };

    let expected = HEADER_BYTES;
    let valid = 0;
    while (valid < usable) {
      const c = await intact(valid, expected);
      if (c === null) break;
      valid = c.last + 1;
      expected = c.end;
    }
    // A torn write leaves only a damaged suffix; an intact chunk after the damage means the
    // damage is in the middle of data that was once complete: when the log was last written in
    // this boot (a process crash keeps the page cache, so the files hold every write in order).
    // After a reboot it may also be a power loss that kept a later unsynced write and lost an
    // earlier one: then the segment ends at the damage, as Kafka's recovery ends a log at its
    // first invalid batch. Candidates: every entry past the damage flagged as a chunk's first
    // or following a chunk's last (one damaged entry cannot clear both marks of a boundary).
    let cutBeforeIntact = false;
    for (let j = valid + 1; j < usable; j++) {
      const at = j * INDEX_ENTRY_BYTES;
      if (!entryStartsChunk(entries, at) && !entryEndsChunk(entries, at - INDEX_ENTRY_BYTES)) continue;
      const startPos = entryPos(entries, at);
      if (!plausible(startPos, 0)) continue;
      if ((await intact(j, startPos)) !== null) {
        if (!strict) {
          cutBeforeIntact = true;
          break;
        }
        throw new CommitLogError(
          'ERR_COMMITLOG_CORRUPT',
          `${seg.segPath}: record ${seg.base + valid} at byte ${expected} is damaged but record ${seg.base + j} after it is intact`,
          { path: seg.segPath, position: expected },
        );
      }
    }
    const truncatedRecords = n - valid + (idxSize > indexBytes(n) ? 1 : 0);
    const truncatedBytes = segSize - expected;
    if (valid > 0 && (idxSize !== indexBytes(valid) || segSize !== expected)) {
      try {
        await ops.ftruncate(idxRef.fd, indexBytes(valid));
        await ops.ftruncate(segRef.fd, expected);
        await Promise.all([ops.fdatasync(idxRef.fd), ops.fdatasync(segRef.fd)]);
      } catch (err) {
        throw ioError('truncate during recovery', seg.segPath, err);
      }
    }
    const lastTs = valid === 0 ? -1 : entryTimestamp(entries, (valid - 1) * INDEX_ENTRY_BYTES);
    return { count: valid, bytes: expected, lastTimestampMs: lastTs, truncatedRecords, truncatedBytes, cutBeforeIntact, stampOk, quick: false };
  } finally {
    cache.release(segRef);
    cache.release(idxRef);
  }
}

/**
 * Reads a log directory and returns its segments, oldest first, after recovery. A missing
 * directory is an empty log. Deletes leftovers: a newest segment with no valid record, and an
 * oldest segment missing one of its two files (a retention delete cut short).
 */
export async function loadSegments(
  ops: FileOps,
  cache: FileCache,
  dir: string,
  sameBoot: boolean,
  cleanStamp: CleanStamp | null,
): Promise<{ segments: SegmentState[]; nextOffset: number; report: RecoveryReport; staleMarkers: string[] }> {
  let names: string[];
  try {
    names = await ops.readdir(dir);
  } catch (err) {
    throw ioError('readdir', dir, err);
  }
  // an older version kept both facts in marker files per log (now the store's two lists)
  const staleMarkers = names.filter((n) => n.startsWith(LEGACY_BOOT_MARKER_PREFIX) || n === LEGACY_CLEAN_MARKER);
  const found = new Map<number, { seg: boolean; idx: boolean }>();
  for (const name of names) {
    const parsed = parseFileName(name);
    if (parsed === null) continue;
    const f = found.get(parsed.base) ?? { seg: false, idx: false };
    if (parsed.kind === 'segment') f.seg = true;
    else f.idx = true;
    found.set(parsed.base, f);
  }
  const bases = [...found.keys()].sort((a, b) => a - b);
  const segments = bases.map((b) => newSegmentState(dir, b));
  let removedSegments = 0;
  const remove = async (s: SegmentState): Promise<void> => {
    cache.forget(s.idxPath);
    cache.forget(s.segPath);
    try {
      await ops.unlink(s.idxPath);
      await ops.unlink(s.segPath);
    } catch (err) {
      throw ioError('unlink', s.segPath, err);
    }
    removedSegments++;
  };

  // The oldest segment may be half deleted by retention.
  const first = segments[0];
  if (first !== undefined && segments.length > 1) {
    const f = found.get(first.base);
    if (f !== undefined && (!f.seg || !f.idx)) {
      await remove(first);
      segments.shift();
    }
  }

  // The newest segment: full validation unless shut down cleanly; drop it if nothing is valid.
  let truncatedRecords = 0;
  let truncatedBytes = 0;
  let nextOffset = 0;
  let tornSealed = false;
  let cutBeforeIntact = false;
  let clean = false;
  let quick = false;
  const settleNewest = async (stamp: CleanStamp | null): Promise<void> => {
    while (segments.length > 0) {
      const last = segments[segments.length - 1] as SegmentState;
      const check = await recoverSegment(ops, cache, last, stamp, sameBoot);
      if (stamp !== null) {
        clean = check.stampOk;
        quick = check.quick;
        stamp = null; // the stamp is the newest segment's; one before it is validated in full
      }
      if (check.cutBeforeIntact) cutBeforeIntact = true;
      truncatedRecords += check.truncatedRecords;
      truncatedBytes += check.truncatedBytes;
      if (check.count > 0) {
        sizeFrom(last, check);
        return;
      }
      await remove(last);
      segments.pop();
      // Offsets are never reused: an emptied newest segment still fixes where the log goes on.
      nextOffset = Math.max(nextOffset, last.base);
    }
  };
  await settleNewest(cleanStamp);

  // Sealed segments: sizes only — except that a sealed segment's tail may never have reached the
  // disk: with 'interval' / 'never' nothing forces it there, with 'batch' and lazyMs records wait
  // unsynced across segment rolls, and even plain 'batch' syncs a round spanning two segments
  // only after both were written. After a power loss the segment before the newest, or any
  // sealed one whose sizes disagree, may be torn: it is then validated in full, and the log ends
  // at its tear (every later segment is dropped: offsets stay dense). Nothing committed is lost
  // that way: a round commits only once every segment it touched is synced.
  const tornAt = async (i: number): Promise<void> => {
    const s = segments[i] as SegmentState;
    const check = await recoverSegment(ops, cache, s, null, sameBoot);
    if (check.cutBeforeIntact) cutBeforeIntact = true;
    if (check.count !== (segments[i + 1] as SegmentState).base - s.base) {
      tornSealed = true;
      // every record from the tear to the end found so far (later sealed segments are not sized yet)
      const newest = segments[segments.length - 1] as SegmentState;
      truncatedRecords += newest.base + newest.count - (s.base + check.count);
      truncatedBytes += check.truncatedBytes;
      while (segments.length > i + 1) {
        const dropped = segments.pop() as SegmentState;
        truncatedBytes += dropped.bytes;
        await remove(dropped);
      }
    }
    if (check.count > 0) {
      sizeFrom(s, check);
      return;
    }
    // Nothing of it is valid: the segment before it is the newest now, validated as such.
    await remove(s);
    segments.pop();
    await settleNewest(null);
  };
  // Skipped only when the quick check of a clean close's newest chunk passed (same boot, stamp
  // matching the files): then the close synced (or, under 'never', the page cache still holds)
  // the segment before it too.
  if (!quick && segments.length >= 2) await tornAt(segments.length - 2);
  for (let i = 0; i < segments.length - 1; i++) {
    const s = segments[i] as SegmentState;
    const next = segments[i + 1] as SegmentState;
    if (s.count > 0) continue; // validated in full above
    const [segSize, idxSize] = await Promise.all([
      ops.stat(s.segPath).catch((e: unknown) => Promise.reject(ioError('stat', s.segPath, e))),
      ops.stat(s.idxPath).catch((e: unknown) => Promise.reject(ioError('stat', s.idxPath, e))),
    ]);
    const count = idxSize === null ? -1 : (idxSize - HEADER_BYTES) / INDEX_ENTRY_BYTES;
    if (segSize === null || !Number.isInteger(count) || count !== next.base - s.base) {
      // torn, not corrupt: validated in full, where damage before an intact chunk is still
      // ERR_COMMITLOG_CORRUPT naming file and position
      await tornAt(i);
      break;
    }
    s.count = count;
    s.bytes = segSize;
  }
  const newest = segments[segments.length - 1];
  if (newest !== undefined) nextOffset = newest.base + newest.count;
  return { segments, nextOffset, report: { clean, sameBoot, truncatedRecords, truncatedBytes, removedSegments, tornSealed, cutBeforeIntact }, staleMarkers };
}
