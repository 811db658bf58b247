/**
 * The store-wide journal (StoreOptions.journal; the broker's default): under durability
 * 'batch', a sync round of a log writes its records and index entries to the log's own files
 * as always, but instead of fdatasyncing those two files it appends one frame per segment it
 * touched to the journal, and commits once the journal's fdatasync covers the frame. Every
 * log's round in one turn shares that fdatasync (group commit across logs), so the number of
 * fdatasyncs no longer grows with the number of topics written at once: with 200 topics at
 * QoS 1, per-log rounds held the publish-to-PUBACK p50 at 17-516 ms, one shared sync at under
 * 1 ms (notes/2026-11-23-fd-budget.md §4).
 *
 * Files: `<root>/.journal-<n>` (n = 1, 2, ... in decimal), each an 8-byte header ('MQLJ', u32
 * version) and frames. A frame is a physical redo record:
 *
 *   u32 magic 'MQJF' | u32 frame bytes | u32 log name bytes | u32 segment bytes | u32 index bytes
 *   | f64 segment base | f64 position in the segment file | f64 position in the index file
 *   | name | segment bytes | index bytes | u32 CRC-32 of everything before it
 *
 * Invariants:
 * - a frame is appended only after its bytes were written to the log's files, and the round
 *   commits only after the journal's fdatasync: a committed record is in a synced journal until
 *   a checkpoint has fdatasynced the files that frame wrote.
 * - checkpoint: once the current file passes its size bound (and at close), new frames go to
 *   the next file; every file a frame of the old one touched is fdatasynced (the directories of
 *   those deleted since are fsynced, so a deleted segment cannot come back empty), then the old
 *   file is deleted. Commits do not wait for it. A checkpoint that cannot open a file leaves its
 *   journal file to the next checkpoint; a failed fdatasync of a log file, in a checkpoint or
 *   anywhere else (Journal.fileSyncFailed), keeps every journal file until the store reopens.
 * - a failed journal write or fdatasync fails every round it carried (those logs roll back and
 *   repair their files as after a failed fdatasync of their own) and the file is cut back to
 *   its last committed frame and synced, so a later recovery cannot bring the failed records
 *   back. If that cut fails too, the journal refuses every later round until the store is
 *   reopened (the disk is failing; a crash in that state may bring the failed records back).
 * - a round fsyncs the directory entries it created (a new segment's files, a new log's
 *   directory) before it hands its frames to the journal: a committed frame's files exist
 *   after any crash unless someone deleted them since.
 * - commit delay (StoreOptions.commitDelayMs): a round whose commits nobody is waiting on to
 *   write again starts no sooner than the delay after the previous round started, so the
 *   commits arriving meanwhile share its fdatasync. A commit is urgent (its round starts in the
 *   next check phase, as without a delay) when its log wrote it less than the delay after its
 *   previous commit: a writer that waits for each commit before the next one, which a delay
 *   would slow to one write per delay. A log that wrote while its previous round was in
 *   flight, or that was idle for longer than the delay, is not waiting on us. A writer that
 *   shares its log with others may say how long after its own previous commit it wrote
 *   (CommitLog.requestSync): a lock-step writer then stays urgent though the others' rounds
 *   make its log look pipelined, and hurry() starts a waiting round that its records queue behind.
 * - a log's round of StoreOptions.journalDirectBytes or more does not come here: it fdatasyncs
 *   its own files, as without a journal. Its frames of earlier rounds stay valid (a replay
 *   writes bytes those files hold), and a failed fdatasync of its files keeps every journal
 *   file until the store reopens (fileSyncFailed), as for any log file.
 * - recovery (replay(), at LogStore.open before anything else): every valid frame of every
 *   journal file, oldest file first, is written again at its positions, in files that exist.
 *   Replay stops at the first torn or damaged frame of a file (a crash mid-append; those rounds
 *   never committed). A frame whose segment or index file is missing is skipped: it was deleted
 *   on purpose after the frame committed (retention, a repair, an operator), and writing it
 *   would resurrect it, or, for a half-deleted segment, give it a blank index that recovery
 *   would read as a tear. Every file written is then fdatasynced, the journal files deleted and
 *   the root fsynced. Replaying a committed frame writes the bytes the file already holds
 *   wherever the page cache survived, so it is idempotent; the log's own recovery then
 *   validates the result as usual.
 */
import { dirname, join } from 'node:path';
import { readWhole } from './boot-list.js';
import { CommitLogError, ioError, systemCode } from './errors.js';
import type { FileCache } from './file-cache.js';
import type { FileOps } from './file-ops.js';
import { checksum } from './format.js';
import { indexFileName, parseFileName, segmentFileName } from './naming.js';

/** Journal file names start with this (log names cannot start with '.'). */
export const JOURNAL_PREFIX = '.journal-';
const FILE_MAGIC = 0x4a4c514d; // 'MQLJ' little-endian
const FRAME_MAGIC = 0x464a514d; // 'MQJF'
const FILE_VERSION = 1;
const FILE_HEADER_BYTES = 8;
const FRAME_FIXED_BYTES = 4 * 5 + 8 * 3;
const CRC_BYTES = 4;

/** What one log's sync round asks the journal to make durable, per segment it wrote. */
export interface JournalFrame {
  /** The log's name (its directory under the store root). */
  log: string;
  segmentBase: number;
  segmentPos: number;
  /** The bytes written at segmentPos (views, not copied). */
  segment: readonly Buffer[];
  indexPos: number;
  index: Buffer;
}

/** What replay() found and did. */
export interface JournalReplay {
  files: number;
  frames: number;
  /** Frames skipped because retention had deleted their segment. */
  skipped: number;
  /** Bytes of torn or damaged frames at the ends of files (never committed). */
  tornBytes: number;
}

interface Pending {
  bufs: Buffer[];
  bytes: number;
  paths: readonly string[];
  resolve: () => void;
  reject: (err: CommitLogError) => void;
}

/** Encodes a frame's header, the CRC covering header and payload, into two buffers. */
function encodeFrame(f: JournalFrame): { head: Buffer; tail: Buffer; bytes: number } {
  const name = Buffer.from(f.log, 'utf8');
  let segBytes = 0;
  for (const b of f.segment) segBytes += b.length;
  const bytes = FRAME_FIXED_BYTES + name.length + segBytes + f.index.length + CRC_BYTES;
  const head = Buffer.allocUnsafe(FRAME_FIXED_BYTES + name.length);
  head.writeUInt32LE(FRAME_MAGIC, 0);
  head.writeUInt32LE(bytes, 4);
  head.writeUInt32LE(name.length, 8);
  head.writeUInt32LE(segBytes, 12);
  head.writeUInt32LE(f.index.length, 16);
  head.writeDoubleLE(f.segmentBase, 20);
  head.writeDoubleLE(f.segmentPos, 28);
  head.writeDoubleLE(f.indexPos, 36);
  name.copy(head, FRAME_FIXED_BYTES);
  let crc = checksum(head, 0);
  for (const b of f.segment) crc = checksum(b, crc);
  crc = checksum(f.index, crc);
  const tail = Buffer.allocUnsafe(CRC_BYTES);
  tail.writeUInt32LE(crc >>> 0, 0);
  return { head, tail, bytes };
}

/** A frame decoded from a journal file (views into the file's buffer). */
interface DecodedFrame {
  log: string;
  segmentBase: number;
  segmentPos: number;
  segment: Buffer;
  indexPos: number;
  index: Buffer;
}

/** Decodes the frames of one journal file up to the first torn or damaged one. */
export function decodeFrames(file: Buffer): { frames: DecodedFrame[]; tornBytes: number } {
  const frames: DecodedFrame[] = [];
  if (file.length < FILE_HEADER_BYTES || file.readUInt32LE(0) !== FILE_MAGIC || file.readUInt32LE(4) !== FILE_VERSION) {
    return { frames, tornBytes: file.length };
  }
  let at = FILE_HEADER_BYTES;
  while (at + FRAME_FIXED_BYTES + CRC_BYTES <= file.length) {
    if (file.readUInt32LE(at) !== FRAME_MAGIC) break;
    const bytes = file.readUInt32LE(at + 4);
    const nameLen = file.readUInt32LE(at + 8);
    const segLen = file.readUInt32LE(at + 12);
    const idxLen = file.readUInt32LE(at + 16);
    if (bytes !== FRAME_FIXED_BYTES + nameLen + segLen + idxLen + CRC_BYTES || at + bytes > file.length) break;
    const crcAt = at + bytes - CRC_BYTES;
    if ((checksum(file.subarray(at, crcAt), 0) >>> 0) !== file.readUInt32LE(crcAt)) break;
    const nameAt = at + FRAME_FIXED_BYTES;
    const segAt = nameAt + nameLen;
    const idxAt = segAt + segLen;
    frames.push({
      log: file.toString('utf8', nameAt, segAt),
      segmentBase: file.readDoubleLE(at + 20),
      segmentPos: file.readDoubleLE(at + 28),
      indexPos: file.readDoubleLE(at + 36),
      segment: file.subarray(segAt, idxAt),
      index: file.subarray(idxAt, crcAt),
    });
    at += bytes;
  }
  return { frames, tornBytes: file.length - at };
}

function journalNumber(name: string): number | null {
  if (!name.startsWith(JOURNAL_PREFIX)) return null;
  const digits = name.slice(JOURNAL_PREFIX.length);
  return /^[1-9][0-9]{0,14}$/.test(digits) ? Number(digits) : null;
}

/** Writes of one file in frame order; adjacent ones merged into one pwritev. */
interface Run {
  pos: number;
  end: number;
  bufs: Buffer[];
}

function addWrite(writes: Map<string, Run[]>, path: string, pos: number, buf: Buffer): void {
  let runs = writes.get(path);
  if (runs === undefined) writes.set(path, (runs = []));
  const last = runs[runs.length - 1];
  if (last !== undefined && last.end === pos) {
    last.bufs.push(buf);
    last.end += buf.length;
  } else runs.push({ pos, end: pos + buf.length, bufs: [buf] });
}

/** Files replay writes at once, each opened, written, fdatasynced and closed in turn. */
const REPLAY_PARALLEL_FILES = 8;

/** Applies `writes`, at most REPLAY_PARALLEL_FILES files open at once; rejects with the first failure. */
async function applyWrites(ops: FileOps, writes: Map<string, Run[]>): Promise<void> {
  const queue = [...writes];
  let failed: unknown = null;
  const worker = async (): Promise<void> => {
    for (let next = queue.pop(); next !== undefined && failed === null; next = queue.pop()) {
      const [path, runs] = next;
      try {
        const fd = await ops.open(path, false).catch((e: unknown) => Promise.reject(ioError('open', path, e)));
        try {
          for (const r of runs) await ops.writev(fd, r.bufs, r.pos).catch((e: unknown) => Promise.reject(ioError('write', path, e)));
          await ops.fdatasync(fd).catch((e: unknown) => Promise.reject(ioError('fdatasync', path, e)));
        } finally {
          await ops.close(fd).catch(() => undefined);
        }
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(REPLAY_PARALLEL_FILES, queue.length) }, worker));
  if (failed !== null) throw failed;
}

/**
 * Writes every committed frame of the journal files in `rootFiles` (the root's file names) back
 * into the logs' files, syncs them, and deletes the journal files. Returns what it did and the
 * next journal number to use. A journal file's frames are grouped per log file first, so each
 * file is opened and fdatasynced once per journal file, however its frames interleave with
 * other logs' (one open and sync per frame took 48 s for a 63 MiB journal of 200 logs).
 */
export async function replay(ops: FileOps, root: string, rootFiles: readonly string[]): Promise<{ report: JournalReplay; next: number }> {
  const numbers = rootFiles.map(journalNumber).filter((n): n is number => n !== null).sort((a, b) => a - b);
  const report: JournalReplay = { files: numbers.length, frames: 0, skipped: 0, tornBytes: 0 };
  if (numbers.length === 0) return { report, next: 1 };
  /** Per log: the bases whose segment and index files both exist as replay starts. */
  const present = new Map<string, Set<number>>();
  for (const n of numbers) {
    const path = join(root, `${JOURNAL_PREFIX}${n}`);
    const { frames, tornBytes } = decodeFrames(await readWhole(ops, path));
    report.tornBytes += tornBytes;
    const writes = new Map<string, Run[]>();
    for (const f of frames) {
      const dir = join(root, f.log);
      let bases = present.get(f.log);
      if (bases === undefined) {
        const kinds = new Map<number, number>();
        for (const name of await ops.readdir(dir).catch((e: unknown) => Promise.reject(ioError('readdir', dir, e)))) {
          const parsed = parseFileName(name);
          if (parsed !== null) kinds.set(parsed.base, (kinds.get(parsed.base) ?? 0) + 1);
        }
        bases = new Set([...kinds].filter(([, k]) => k === 2).map(([b]) => b));
        present.set(f.log, bases);
      }
      // A committed frame's files were created, and their directory entries synced, before
      // its round committed: a missing one was deleted on purpose since (retention, a repair,
      // an operator), and writing it back would resurrect what was deleted.
      if (!bases.has(f.segmentBase)) {
        report.skipped++;
        continue;
      }
      addWrite(writes, join(dir, segmentFileName(f.segmentBase)), f.segmentPos, f.segment);
      addWrite(writes, join(dir, indexFileName(f.segmentBase)), f.indexPos, f.index);
      report.frames++;
    }
    await applyWrites(ops, writes);
  }
  for (const n of numbers) await ops.unlink(join(root, `${JOURNAL_PREFIX}${n}`)).catch((e: unknown) => Promise.reject(ioError('unlink', root, e)));
  // a power loss must not bring replayed files back (replaying them again is safe, just slow)
  await ops.fsyncDir(root).catch((e: unknown) => Promise.reject(ioError('fsync', root, e)));
  return { report, next: (numbers[numbers.length - 1] as number) + 1 };
}

/** The store's journal: one file written at a time, one write and one fdatasync in flight. */
export class Journal {
  readonly #ops: FileOps;
  readonly #files: FileCache;
  readonly #root: string;
  readonly #maxBytes: number;
  /** Writes up to this many bytes go out on the calling thread (StoreOptions.syncWriteMaxBytes). */
  readonly #syncWriteMaxBytes: number;
  /** StoreOptions.commitDelayMs (0 = every round starts as soon as it can). */
  readonly #delayMs: number;
  /** performance.now() when the latest round started. */
  #lastStart = -Infinity;
  /** Some queued commit is urgent: the next round does not wait. */
  #urgentQueued = false;
  /** Ends a commit delay's wait early (an urgent commit arrived, or close()). */
  #wake: (() => void) | null = null;
  #number: number;
  #fd: number | null = null;
  /** Bytes of the current file that are committed (synced). */
  #committedBytes = 0;
  /** Files frames of the current file wrote to (fdatasynced by its checkpoint). */
  #dirty = new Set<string>();
  #queue: Pending[] = [];
  #inFlight: Promise<void> | null = null;
  #checkpoints: Promise<void>[] = [];
  #broken: CommitLogError | null = null;
  /**
   * A log file's fdatasync failed (here or anywhere else, fileSyncFailed): journal files are
   * kept until the store reopens and replays them. The failed call may have dropped dirty pages
   * (Linux marks them clean), so a later fdatasync of the same file succeeding proves nothing.
   */
  #keepFiles = false;
  /** Journal files whose checkpoint stopped short of its fdatasyncs (a file did not open): the next checkpoint deletes them too. */
  #carriedJournals: string[] = [];
  /** The files those journal files' frames wrote: the next checkpoint syncs them too. */
  #carriedFiles = new Set<string>();
  #closed = false;

  constructor(ops: FileOps, files: FileCache, root: string, next: number, maxBytes: number, syncWriteMaxBytes: number, commitDelayMs = 0) {
    this.#ops = ops;
    this.#delayMs = commitDelayMs;
    this.#files = files;
    this.#root = root;
    this.#number = next;
    this.#maxBytes = maxBytes;
    this.#syncWriteMaxBytes = syncWriteMaxBytes;
  }

  /**
   * Resolves once every frame is in a synced journal file; rejects if that failed. `paths` (the
   * files the frames wrote, for the checkpoint) is kept as given. `gapMs`: how long after its
   * previous commit resolved the log wrote the first of these frames (negative: while that
   * commit was in flight; Infinity: it has none); see the commit delay above.
   */
  commit(frames: readonly JournalFrame[], paths: readonly string[], gapMs = Infinity): Promise<void> {
    if (this.#broken !== null) return Promise.reject(this.#broken);
    if (this.#closed) return Promise.reject(new CommitLogError('ERR_COMMITLOG_CLOSED', `journal of ${this.#root} is closed`));
    return new Promise((resolve, reject) => {
      const bufs: Buffer[] = [];
      let bytes = 0;
      for (const f of frames) {
        const { head, tail, bytes: n } = encodeFrame(f);
        bufs.push(head, ...f.segment, f.index, tail);
        bytes += n;
      }
      this.#queue.push({ bufs, bytes, paths, resolve, reject });
      this.#urge(gapMs);
      if (this.#inFlight === null) this.#inFlight = this.#run();
    });
  }

  /**
   * A writer waits on records its log will commit only after that log's round queued here
   * resolves (CommitLog.requestSync's writer gap): if `gapMs` makes them urgent (as in commit()),
   * a round waiting out the delay starts now.
   */
  hurry(gapMs: number): void {
    if (this.#queue.length > 0) this.#urge(gapMs);
  }

  /**
   * Urgent (0 <= gapMs < delay): the writer wrote right after its previous commit, so it waits
   * on this one; the next round does not wait out the delay, and one waiting starts now.
   */
  #urge(gapMs: number): void {
    if (gapMs < 0 || gapMs >= this.#delayMs) return;
    this.#urgentQueued = true;
    this.#wake?.();
  }

  /**
   * Waits until the next round may start: with a commit delay and no urgent commit queued, the
   * delay after the previous round's start; otherwise, for the first round of a #run, the next
   * check phase, so every log whose round this turn started (each after its own nextTick, once
   * its write settled) shares the write and the fdatasync. Null: start now.
   */
  #gate(first: boolean): Promise<void> | null {
    const wait = this.#urgentQueued || this.#closed ? 0 : this.#lastStart + this.#delayMs - performance.now();
    if (wait <= 0) return first ? new Promise<void>((r) => setImmediate(r)) : null;
    return new Promise<void>((r) => {
      const timer = setTimeout(() => {
        this.#wake = null;
        r();
      }, wait);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = null;
        setImmediate(r);
      };
    });
  }

  async #run(): Promise<void> {
    for (let first = true; this.#queue.length > 0; first = false) {
      const gate = this.#gate(first);
      if (gate !== null) await gate;
      this.#lastStart = performance.now();
      this.#urgentQueued = false;
      const batch = this.#queue.splice(0);
      try {
        await this.#write(batch);
        for (const p of batch) for (const path of p.paths) this.#dirty.add(path);
        for (const p of batch) p.resolve();
      } catch (err) {
        const error = err instanceof CommitLogError ? err : ioError('journal', this.#root, err);
        for (const p of batch) p.reject(error);
        await this.#cutBack();
      }
      if (this.#committedBytes >= this.#maxBytes) this.#rotate();
    }
    this.#inFlight = null;
  }

  #path(n: number): string {
    return join(this.#root, `${JOURNAL_PREFIX}${n}`);
  }

  async #write(batch: Pending[]): Promise<void> {
    if (this.#broken !== null) throw this.#broken;
    const ops = this.#ops;
    const path = this.#path(this.#number);
    if (this.#fd === null) {
      // the file is in use only once its header is written and its name synced; a failure on
      // the way closes it, and the next round starts the same file again from its header
      const fd = await ops.open(path, true).catch((e: unknown) => Promise.reject(ioError('open', path, e)));
      try {
        const header = Buffer.allocUnsafe(FILE_HEADER_BYTES);
        header.writeUInt32LE(FILE_MAGIC, 0);
        header.writeUInt32LE(FILE_VERSION, 4);
        await ops.writev(fd, [header], 0).catch((e: unknown) => Promise.reject(ioError('write', path, e)));
        // the header on its own: a failed first round's fdatasync must not take it along
        await ops.fdatasync(fd).catch((e: unknown) => Promise.reject(ioError('fdatasync', path, e)));
        await ops.fsyncDir(this.#root).catch((e: unknown) => Promise.reject(ioError('fsync', this.#root, e)));
      } catch (err) {
        await ops.close(fd).catch(() => undefined);
        throw err;
      }
      this.#fd = fd;
      this.#committedBytes = FILE_HEADER_BYTES;
    }
    const fd = this.#fd;
    const bufs: Buffer[] = [];
    let bytes = 0;
    for (const p of batch) {
      for (const b of p.bufs) bufs.push(b);
      bytes += p.bytes;
    }
    try {
      if (ops.writevSync !== undefined && bytes <= this.#syncWriteMaxBytes) ops.writevSync(fd, bufs, this.#committedBytes);
      else await ops.writev(fd, bufs, this.#committedBytes);
    } catch (e) {
      throw ioError('write', path, e);
    }
    await ops.fdatasync(fd).catch((e: unknown) => Promise.reject(ioError('fdatasync', path, e)));
    this.#committedBytes += bytes;
  }

  /** After a failed write or sync: the file back to its committed frames, synced. */
  async #cutBack(): Promise<void> {
    const fd = this.#fd;
    if (fd === null) return; // nothing was written: the file does not exist or holds no frame
    try {
      await this.#ops.ftruncate(fd, this.#committedBytes);
      await this.#ops.fdatasync(fd);
    } catch (err) {
      this.#broken = new CommitLogError('ERR_COMMITLOG_IO', `journal ${this.#path(this.#number)} could not be cut back after a failed write; refusing every sync until the store reopens`, { cause: err });
    }
  }

  /** New frames go to the next file; the old one is deleted once its files are synced. */
  #rotate(): void {
    const fd = this.#fd;
    const dirty = this.#dirty;
    const old = this.#path(this.#number);
    this.#number++;
    this.#fd = null;
    this.#committedBytes = 0;
    this.#dirty = new Set();
    const done = this.#checkpoint(old, fd, dirty);
    this.#checkpoints.push(done);
    void done.finally(() => this.#checkpoints.splice(this.#checkpoints.indexOf(done), 1));
  }

  async #checkpoint(path: string, fd: number | null, dirty: Set<string>): Promise<void> {
    if (fd !== null) await this.#ops.close(fd).catch(() => undefined); // no frame goes to it any more
    const journals = [...this.#carriedJournals, path];
    const files = this.#carriedFiles.size === 0 ? dirty : new Set([...this.#carriedFiles, ...dirty]);
    this.#carriedJournals = [];
    this.#carriedFiles = new Set();
    /** Directories of files deleted since their frames committed. */
    const gone = new Set<string>();
    try {
      for (const file of files) {
        let ref;
        try {
          ref = await this.#files.acquireOne(file, false);
        } catch (err) {
          // deleted since (retention, or a repair): nothing of it to keep
          if (systemCode(err instanceof CommitLogError ? err.cause : err) === 'ENOENT') {
            gone.add(dirname(file));
            continue;
          }
          throw err;
        }
        try {
          await this.#ops.fdatasync(ref.fd);
        } catch (err) {
          this.#keepFiles = true;
          throw err;
        } finally {
          this.#files.release(ref);
        }
      }
      // A deleted file's bytes may exist nowhere but in this journal: unless its deletion is
      // durable, a power loss could bring its directory entry back with none of its bytes, and
      // recovery would read that as a tear and cut the log there. (A deleted file the cache
      // still held open was fdatasynced above: an entry that comes back has its bytes.)
      for (const dir of gone) await this.#fsyncDirOrRoot(dir);
      if (!this.#keepFiles) {
        for (const j of journals) {
          await this.#ops.unlink(j).catch((e: unknown) => (systemCode(e) === 'ENOENT' ? undefined : Promise.reject(e)));
        }
      }
    } catch {
      // The journal files stay: the next checkpoint tries their files again and deletes them,
      // or (after a failed fdatasync) the next open replays them, which is safe (frames are
      // idempotent). Only a failed fdatasync keeps every later journal file too.
      if (!this.#keepFiles) {
        this.#carriedJournals.push(...journals);
        for (const f of files) this.#carriedFiles.add(f);
      }
    }
  }

  /** Fsyncs `dir`; if it is gone too (its log was deleted), the root that held it. */
  async #fsyncDirOrRoot(dir: string): Promise<void> {
    try {
      await this.#ops.fsyncDir(dir);
    } catch (err) {
      if (systemCode(err) !== 'ENOENT' || dir === this.#root) throw err;
      await this.#ops.fsyncDir(this.#root);
    }
  }

  /**
   * A log file's fdatasync failed outside a checkpoint (a repair, a recovery, an 'interval'
   * flush): its committed bytes may now exist only in journal files, which are kept until the
   * store reopens.
   */
  fileSyncFailed(): void {
    this.#keepFiles = true;
  }

  /**
   * Waits for the rounds in flight, then checkpoints the current file: nothing left to replay.
   * The root is fsynced last, so a deleted journal file cannot come back after a power loss
   * (for a broken journal, one holding frames of failed rounds).
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    while (this.#inFlight !== null) await this.#inFlight;
    if (this.#fd !== null || this.#dirty.size > 0 || this.#carriedJournals.length > 0) this.#rotate();
    await Promise.all(this.#checkpoints);
    await this.#ops.fsyncDir(this.#root).catch(() => undefined);
  }
}
