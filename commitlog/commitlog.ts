/**
 * One log: an append-only sequence of records with dense offsets, split into segments
 * (format.ts), with an in-memory tail, group commit, retention and a durability policy.
 *
 * Offsets and watermarks (always start ≤ memStart ≤ committed ≤ written ≤ end):
 *
 *   start           memStart          committed        written          end
 *     │  on disk only  │ on disk + memory │ being written  │ appended, not │
 *     ▼                ▼                  ▼  (in flight)   ▼ yet flushed   ▼
 *     ├────────────────┼──────────────────┼────────────────┼───────────────┤
 *                      └─────────── the tail (records in slabs) ───────────┘
 *
 * Invariants:
 * - append() copies the record once, into the tail's current slab (reserve() lets the caller
 *   encode it there instead), and never blocks. A log's slabs start at 4 KiB and double up to
 *   a quarter of tailBytes (64 KiB .. 1 MiB); records appended one after another are contiguous
 *   in memory, so a batch leaves as a few large iovecs and is checksummed in chunks
 *   (format.ts) with one CRC call per chunk instead of one per record.
 * - Everything appended in one turn of the event loop leaves in one flush (in the check phase,
 *   one setImmediate for all the store's logs, so the appends of every socket read in that turn
 *   go together and their readers are woken together, not one flush per read): per
 *   segment touched, one pwritev of the records and one pwrite of their index entries, then
 *   (durability 'batch') one fdatasync of each. While a flush is in flight new appends gather
 *   for the next one (group commit).
 * - Only records below `committed` are ever readable (visibility = acknowledgement).
 * - The in-memory segment metadata changes only after a batch is fully written; after a failed
 *   batch the files are truncated back to it before anything else is written.
 * - The tail only ever drops committed records, oldest first.
 */
import { EventEmitter } from 'node:events';
import { dirname, join } from 'node:path';
import { emptyNumberArray, emptyObjectArray } from './elements.js';
import { CommitLogError, ioError } from './errors.js';
import type { FileCache, FileRef } from './file-cache.js';
import type { FileOps } from './file-ops.js';
import {
  HEADER_BYTES,
  INDEX_ENTRY_BYTES,
  INDEX_MAGIC,
  SEGMENT_MAGIC,
  CHUNK_MAX_BYTES,
  CHUNK_MAX_RECORDS,
  chunkMatches,
  encodeHeader,
  entryEndsChunk,
  entryLen,
  entryPos,
  entryTimestamp,
  entryWords,
  indexBytes,
  sealChunk,
  writeEntry,
  writeEntryWords,
} from './format.js';
import { LAZY_SYNC_MAX_BYTES, type ResolvedLogOptions } from './options.js';
import type { CleanStamp } from './clean-list.js';
import type { Journal, JournalFrame } from './journal.js';
import { loadSegments, newSegmentState, type RecoveryReport, type SegmentState } from './recovery.js';

/** Dense, 0-based, per-log record number; safe up to 2^53. */
export type Offset = number;

/** The answer to a read. */
export interface ReadBatch {
  /**
   * 'records': records.length ≥ 1 records from `from`; 'caughtUp': nothing committed at `from`
   * yet; 'belowStart': `from` was deleted by retention; 'beyondEnd': `from` > end.
   */
  status: 'records' | 'caughtUp' | 'belowStart' | 'beyondEnd';
  /** Views into one buffer (disk) or into the tail's slabs: never copies. */
  records: Buffer[];
  /** Append time per record, ms since the epoch. */
  timestamps: number[];
  /** Where to read next; for 'belowStart' the earliest retained offset; for 'beyondEnd' `committed`. */
  next: Offset;
}

/** Events of a CommitLog. */
export interface CommitLogEvents {
  /** Records below `committed` now meet the durability policy and are readable. */
  commit: [committed: Offset];
  /**
   * Records below `flushed` may be read unsynced (readTail(..., true)). As a rule they are in
   * the operating system's hands (they survive a kill -9, not yet a power loss under 'batch');
   * under 'batch' with lazyMs, records nobody asked to sync become flushed before they are
   * written, so a kill -9 can take those back too. Under 'interval' and 'never' it fires just
   * before the matching 'commit'. Each offset is announced once.
   */
  flushed: [flushed: Offset];
  /**
   * The records [from, to) were not stored; `end` (and `flushed`) are back at `from`. Records
   * already read through `flushed` may be among them: their offsets will be reused.
   */
  failed: [err: CommitLogError, from: Offset, to: Offset];
}

/** What a LogStore hands each log (internal wiring, not for applications). */
export interface LogContext {
  readonly name: string;
  readonly dir: string;
  readonly options: ResolvedLogOptions;
  readonly ops: FileOps;
  readonly files: FileCache;
  /** Batches up to this many bytes are written synchronously when ops.writevSync exists. */
  readonly syncWriteMaxBytes: number;
  /** The store's boot list names this log: it was last written in this boot of the machine (boot-list.ts). */
  readonly writtenThisBoot: boolean;
  /** Adds this log to the store's boot list; resolves once it is in the file. */
  markWritten(): Promise<void>;
  /** The store's clean-shutdown list named this log (and nothing has opened it since): its newest segment as that close left it (clean-list.ts). */
  readonly cleanStamp: CleanStamp | null;
  /** The log's directory exists. */
  readonly exists: boolean;
  /** The log's in-memory tail now holds `bytes`; the store may call dropTail() on any log. */
  tailChanged(log: CommitLog, bytes: number): void;
  /** The log's directory now exists on disk. */
  created(log: CommitLog): void;
  /**
   * Waits for one of the store's turns to create files (StoreOptions.createConcurrency), first
   * come first served; resolves to the function that gives the turn back.
   */
  createTurn(): Promise<() => void>;
  /** The store's journal ('batch' rounds commit through it), or null: each round syncs its own files (journal.ts). */
  readonly journal: Journal | null;
  /** StoreOptions.journalDirectBytes: a round with this many segment bytes syncs its own files instead. */
  readonly journalDirectBytes: number;
  /** The log has closed: with its newest segment's stamp when it closed cleanly (flushed, synced as promised, nothing to repair). */
  closed(log: CommitLog, stamp: CleanStamp | null): void;
  /**
   * Runs `flush` once in this event-loop turn's check phase, together with the flushes every
   * other log of the store scheduled in this turn (one setImmediate for all of them).
   */
  schedule(flush: () => void): void;
}

/** Most index entries one disk read looks at (80 KiB of index). */
export const READ_MAX_ENTRIES = 4096;
/** Tail slots are compacted once this many evicted ones lead the arrays. */
const TAIL_COMPACT_SLOTS = 1024;
/** A log's first slab, and its first again once its tail has emptied; each next one doubles. */
const SLAB_MIN_BYTES = 4096;
/** A log's largest slab is a quarter of its tailBytes, within these bounds. */
const SLAB_MAX_FLOOR = 64 * 1024;
const SLAB_MAX_CEIL = 1024 * 1024;

/** A block of tail memory that records are placed in back to back. */
interface Slab {
  readonly buf: Buffer;
  /** Tail records still placed in it. */
  records: number;
  /**
   * A view of it went out (reserve(), a tail read) and may be held anywhere: never reused.
   * A slab whose records were only written and trimmed is reused, so a log nobody reads from
   * its tail (a write-ahead log, a replica) copies into warm memory instead of fresh pages.
   */
  escaped: boolean;
}

/** A written batch waiting for its fdatasync ('batch' mode). */
interface UnsyncedBatch {
  to: Offset;
  groups: Group[];
}

interface Group {
  seg: SegmentState;
  isNew: boolean;
  /** The segment's metadata before this group moved it (for #unmove). */
  prevCount: number;
  prevBytes: number;
  prevLastTs: number;
  /** Tail index of its first record (tail indices may shift across an await; use the copies). */
  first: number;
  n: number;
  /** Byte position in the segment / index where the group's data goes. */
  segPos: number;
  idxPos: number;
  endPos: number;
  /** Slab, position there, length and timestamp of each of its records. */
  slabs: Slab[];
  pos: number[];
  lens: number[];
  timestamps: number[];
  /** The iovecs: the segment header if new, then one view per contiguous run of a slab. */
  segBufs: Buffer[];
  /** The index bytes written at idxPos (the header if new, then the entries), once written. */
  idxBuf: Buffer | null;
  lastTs: number;
}

interface Waiter {
  target: Offset;
  resolve: () => void;
  reject: (err: CommitLogError) => void;
}

function empty(status: ReadBatch['status'], next: Offset): ReadBatch {
  return { status, records: [], timestamps: [], next };
}

/** A segmented, crash-safe commit log. Obtain one from LogStore.open(). */
export class CommitLog extends EventEmitter<CommitLogEvents> {
  /** The log's name (its directory under the store root). */
  readonly name: string;
  /** What opening this log found on disk and repaired. */
  readonly recovery: RecoveryReport;

  readonly #ctx: LogContext;
  readonly #opts: ResolvedLogOptions;
  readonly #segments: SegmentState[];
  #start: Offset;
  #end: Offset;
  #committed: Offset;
  /**
   * committed ≤ flushed ≤ end: readable unsynced. Written to the OS as a rule (flushed ≤ written);
   * deferred records (lazyMs) are flushed before they are written (written < flushed).
   */
  #flushed: Offset;
  #written: Offset;
  #totalBytes = 0;

  /**
   * The tail, from index #head on (offset #memStart): each record's slab, position in it,
   * length and timestamp (plain arrays of numbers stay unboxed), and its view once a read made
   * one, which the readers after it share (a fanout's subscribers) until the log's next append
   * or a read elsewhere (#sweepViews). Views kept for the record's whole life in the tail
   * survived young-generation collections into the old one: a 4 MiB tail (the old default)
   * of 64 B records held 50,000 of them per log for the major GC to mark.
   */
  readonly #recSlab: (Slab | null)[] = emptyObjectArray<Slab | null>();
  readonly #recView: (Buffer | undefined)[] = emptyObjectArray<Buffer | undefined>();
  readonly #recPos: number[] = [];
  readonly #recLen: number[] = [];
  readonly #memTs: number[] = emptyNumberArray();
  /** Offsets [#viewsFrom, #viewsTo) cover every cached view; #viewsFrom -1: none is cached. */
  #viewsFrom = -1;
  #viewsTo = 0;
  #head = 0;
  #memStart: Offset;
  /** Record bytes in the tail (slab space around them is not counted). */
  #memBytes = 0;
  /** The slab appends go into, and how much of it is taken. */
  #slab: Slab | null = null;
  /** The slab the latest append went into (the current one, or a large record's own). */
  #placed: Slab | null = null;
  /** Slabs of #slabMax bytes whose records are gone and whose memory never escaped. */
  #spare: Buffer[] = [];
  #slabsAllocated = 0;
  #slabUsed = 0;
  /** Size of the next slab, and the most it grows to. */
  #slabNext = SLAB_MIN_BYTES;
  readonly #slabMax: number;

  #flushScheduled = false;
  /** The default timestamp of this tick's appends, read at its first append. */
  #tickTs = 0;
  #tickTsFresh = false;
  #flushing: Promise<void> | null = null;
  #waiters: Waiter[] = emptyObjectArray<Waiter>();
  #closing: Promise<void> | null = null;
  #closed = false;
  #dirReady: boolean;
  /**
   * Directory entries not yet synced: a segment file created in the log's directory, and the
   * log's directory created in the store's root. Set once the entry exists, so the next sync
   * round (whichever started after that) fsyncs the directory beside its fdatasyncs.
   */
  #logDirUnsynced = false;
  #rootUnsynced = false;
  /** The store's boot list names this log (found so at open, or added with this boot's first write). */
  #bootMarked: boolean;
  /** Marker files an older version left in the log's directory, removed with this boot's first write. */
  #staleMarkers: string[];
  #needsRepair = false;
  /** New segments a failed batch created on disk; repair deletes them. */
  #orphans: SegmentState[] = emptyObjectArray<SegmentState>();
  /** 'batch': batches written (and flushed) but not yet fdatasynced, oldest first. */
  #unsynced: UnsyncedBatch[] = emptyObjectArray<UnsyncedBatch>();
  /** performance.now() when the first batch of #unsynced was written, and when the latest sync round committed (the journal's commit delay, journal.ts). */
  #firstUnsyncedAt = 0;
  #lastCommitAt = -Infinity;
  /**
   * The smallest writer gap requestSync() was given for records no round has carried yet, and
   * the end it covers: the next round that reaches that end passes it to the journal.
   */
  #hintGapMs = Infinity;
  #hintEnd: Offset = 0;
  /** 'batch': the fdatasync round in flight, if any. */
  #syncInFlight: Promise<void> | null = null;
  /** 'batch': a #kickSync() waits in process.nextTick (#kickSyncAfterTick). */
  #kickQueued = false;
  /** 'batch': records below it are to be synced as soon as they are written (see lazyMs). */
  #syncWanted: Offset = 0;
  /** 'batch' with lazyMs: bytes of the written batches in #unsynced, and the timer that bounds their wait. */
  #unsyncedBytes = 0;
  /** durability.lazyMs ('batch' only), or 0: every batch is written and synced. */
  readonly #lazyMs: number;
  /** Record bytes appended since the writer last took a batch (deferred ones included). */
  #unwrittenBytes = 0;
  #lazyTimer: NodeJS.Timeout | null = null;
  /** A sync round failed; the writer (or the syncer, if the writer is idle) rolls back. */
  #syncError: CommitLogError | null = null;
  /** The writer loop is running (set and cleared synchronously, unlike #flushing). */
  #writerActive = false;
  /** A write of #writeInline() failed; the writer loop it starts rolls the batch back. */
  #writeFailure: CommitLogError | null = null;
  /** Segments written but not yet fdatasynced (durability 'interval' only). */
  readonly #dirty = new Set<SegmentState>();
  #syncing: Promise<void> | null = null;
  #retaining: Promise<number> | null = null;
  /** trimBefore(): segments wholly below it are deleted. */
  #trimFloor: Offset = 0;
  #timer: NodeJS.Timeout | null = null;

  /** @internal Use LogStore.open(). */
  static async open(ctx: LogContext): Promise<CommitLog> {
    const { segments, nextOffset, report, staleMarkers } = await loadSegments(ctx.ops, ctx.files, ctx.dir, ctx.writtenThisBoot, ctx.cleanStamp);
    const log = new CommitLog(ctx, segments, nextOffset, report, staleMarkers);
    if (segments.length > 1) await log.enforceRetention().catch(() => undefined);
    return log;
  }

  private constructor(ctx: LogContext, segments: SegmentState[], nextOffset: Offset, report: RecoveryReport, staleMarkers: string[]) {
    super();
    this.name = ctx.name;
    this.recovery = report;
    this.#ctx = ctx;
    this.#opts = ctx.options;
    this.#slabMax = Math.min(SLAB_MAX_CEIL, Math.max(SLAB_MAX_FLOOR, 2 ** Math.ceil(Math.log2(Math.max(1, ctx.options.tailBytes / 4)))));
    this.#segments = emptyObjectArray<SegmentState>();
    for (const seg of segments) this.#segments.push(seg);
    this.#start = segments[0]?.base ?? nextOffset;
    this.#end = this.#committed = this.#flushed = this.#written = this.#memStart = nextOffset;
    for (const s of segments) this.#totalBytes += s.bytes;
    this.#dirReady = ctx.exists || segments.length > 0;
    this.#bootMarked = report.sameBoot;
    this.#staleMarkers = staleMarkers;
    const d = this.#opts.durability;
    this.#lazyMs = d.mode === 'batch' ? (d.lazyMs ?? 0) : 0;
    if (d.mode === 'interval') {
      this.#timer = setInterval(() => void this.#syncDirty().catch(() => undefined), d.intervalMs);
      this.#timer.unref();
    }
  }

  /** Earliest retained offset. */
  get start(): Offset {
    return this.#start;
  }

  /** Next offset append() will assign. */
  get end(): Offset {
    return this.#end;
  }

  /** Records below it meet the durability policy and are readable. */
  get committed(): Offset {
    return this.#committed;
  }

  /**
   * Records below it have been written to the operating system (committed ≤ flushed ≤ end).
   * Under 'batch' they wait for their fdatasync; a failed sync takes them back ('failed').
   * Under 'batch' with lazyMs, records nobody asked to sync are flushed (readable as unsynced)
   * without being written yet: they are written with the next batch someone asks for, at
   * LAZY_SYNC_MAX_BYTES, or after lazyMs, so a kill -9 can take them back too.
   */
  get flushed(): Offset {
    return this.#flushed;
  }

  /** Bytes of records currently held in memory (tail plus not yet committed). */
  get memoryBytes(): number {
    return this.#memBytes;
  }

  /** Tail slabs allocated so far (not counting reused ones or large records' own buffers): a diagnostic. */
  get slabsAllocated(): number {
    return this.#slabsAllocated;
  }

  /** Bytes of all segment files (headers included). */
  get diskBytes(): number {
    return this.#totalBytes;
  }

  /**
   * Appends a copy of `record` and returns its offset; the caller may reuse the buffer. The
   * record goes out with everything else appended this tick; it is readable once `committed`
   * passes it ('commit' event), or `flushed` for unsynced readers. `timestampMs` defaults to
   * the clock read once per tick, at the tick's first append (a clock read costs 70-120 ns here).
   * @throws ERR_COMMITLOG_CLOSED, ERR_COMMITLOG_RECORD_TOO_LARGE, ERR_COMMITLOG_INVALID_ARGUMENT
   *   (timestampMs not an integer ≥ 0)
   */
  append(record: Uint8Array, timestampMs?: number): Offset {
    const at = this.#admit(record.length, timestampMs);
    (this.#placed as Slab).buf.set(record, at);
    return this.#end++;
  }

  /**
   * Appends a record of `length` bytes and returns the tail's memory for it, for the caller to
   * encode the record into before it yields to the event loop (the flush runs in the loop's
   * check phase, after this turn's I/O callbacks).
   * The record's offset is `end - 1` afterwards. The view stays valid (and pins its slab) for as
   * long as the caller keeps it; its bytes must not change once the call that reserved it returns.
   * @throws as append(), and ERR_COMMITLOG_INVALID_ARGUMENT (length not an integer ≥ 0)
   */
  reserve(length: number, timestampMs?: number): Buffer {
    if (!(length >= 0 && Number.isInteger(length))) {
      throw new CommitLogError('ERR_COMMITLOG_INVALID_ARGUMENT', `length must be an integer ≥ 0, got ${String(length)}`);
    }
    const at = this.#admit(length, timestampMs);
    const slab = this.#placed as Slab;
    slab.escaped = true;
    this.#end++;
    // not cached in #recView: readers read the record once it is flushed, in a later turn
    return slab.buf.subarray(at, at + length);
  }

  /**
   * Checks an append, places its record in a slab (the tail's last slot; the slab is left in
   * #placed) and schedules the flush. Returns the record's position in the slab.
   */
  #admit(len: number, ts: number | undefined): number {
    if (this.#closing !== null) throw new CommitLogError('ERR_COMMITLOG_CLOSED', `log ${this.name} is closed`);
    if (ts !== undefined && !(ts >= 0 && ts <= Number.MAX_SAFE_INTEGER && Number.isInteger(ts))) {
      throw new CommitLogError('ERR_COMMITLOG_INVALID_ARGUMENT', `timestampMs must be an integer in 0 .. 2^53-1, got ${String(ts)}`);
    }
    if (len > this.#opts.maxRecordBytes) {
      throw new CommitLogError(
        'ERR_COMMITLOG_RECORD_TOO_LARGE',
        `record of ${len} bytes exceeds maxRecordBytes ${this.#opts.maxRecordBytes} of log ${this.name}`,
      );
    }
    // The tick's clock is read only once the append is certain to go ahead: a refused first
    // append would leave it marked fresh with no flush scheduled to clear it.
    let timestampMs: number;
    if (ts !== undefined) timestampMs = ts;
    else {
      if (!this.#tickTsFresh) {
        this.#tickTs = Date.now();
        this.#tickTsFresh = true;
      }
      timestampMs = this.#tickTs;
    }
    let slab = this.#slab;
    let at: number;
    if (len > this.#slabMax >>> 2) {
      // A large record gets a buffer of its own; the current slab carries on after it.
      slab = { buf: Buffer.allocUnsafeSlow(len), records: 0, escaped: true };
      at = 0;
    } else {
      if (slab === null || this.#slabUsed + len > slab.buf.length) {
        const old = slab;
        let size = this.#slabNext;
        while (size < len) size *= 2;
        const spare = size === this.#slabMax ? this.#spare.pop() : undefined;
        if (spare === undefined) this.#slabsAllocated++;
        slab = this.#slab = { buf: spare ?? Buffer.allocUnsafeSlow(size), records: 0, escaped: false };
        this.#slabUsed = 0;
        this.#slabNext = Math.min(size * 2, this.#slabMax);
        if (old !== null && old.records === 0) this.#release(old);
      }
      at = this.#slabUsed;
      this.#slabUsed += len;
    }
    slab.records++;
    this.#placed = slab;
    if (this.#viewsFrom >= 0) this.#sweepViews();
    this.#recSlab.push(slab);
    this.#recView.push(undefined);
    this.#recPos.push(at);
    this.#recLen.push(len);
    this.#memTs.push(timestampMs);
    this.#memBytes += len;
    this.#unwrittenBytes += len;
    this.#scheduleFlush();
    return at;
  }

  /**
   * Reads committed records from memory only: no syscall, no flush. Returns null when `from` is
   * committed but no longer in memory (use read()). With `unsynced`, records up to `flushed`
   * count too (always in memory until committed): for readers that accept seeing a record
   * a failed sync may still take back.
   * @throws ERR_COMMITLOG_CLOSED, ERR_COMMITLOG_INVALID_ARGUMENT (from not an integer)
   */
  readTail(from: Offset, maxRecords: number, maxBytes: number, unsynced = false): ReadBatch | null {
    if (this.#closed) throw new CommitLogError('ERR_COMMITLOG_CLOSED', `log ${this.name} is closed`);
    if (!Number.isSafeInteger(from)) {
      throw new CommitLogError('ERR_COMMITLOG_INVALID_ARGUMENT', `from must be an integer offset, got ${String(from)}`);
    }
    if (from < this.#start) return empty('belowStart', this.#start);
    const visible = unsynced ? this.#flushed : this.#committed;
    if (from >= visible) return from <= this.#end ? empty('caughtUp', from) : empty('beyondEnd', visible);
    if (from < this.#memStart) return null;
    const i0 = this.#head + (from - this.#memStart);
    const limit = Math.min(visible - from, maxRecords >= 1 ? maxRecords : 1);
    const lens = this.#recLen;
    let n = 0;
    let bytes = 0;
    while (n < limit) {
      const len = lens[i0 + n] as number;
      if (n > 0 && bytes + len > maxBytes) break;
      bytes += len;
      n++;
    }
    // a read past the cached views (a reader catching up alone) drops them first
    if (this.#viewsFrom >= 0 && (from >= this.#viewsTo || from + n <= this.#viewsFrom)) this.#sweepViews();
    const views = this.#recView;
    for (let i = i0; i < i0 + n; i++) {
      if (views[i] === undefined) {
        const at = this.#recPos[i] as number;
        const slab = this.#recSlab[i] as Slab;
        slab.escaped = true;
        views[i] = slab.buf.subarray(at, at + (lens[i] as number));
      }
    }
    this.#viewMade(from, from + n);
    return { status: 'records', records: views.slice(i0, i0 + n) as Buffer[], timestamps: this.#memTs.slice(i0, i0 + n), next: from + n };
  }

  /**
   * Reads committed records from `from`: from the tail when there, else with one positional
   * read of the index and one of the segment (records of one segment per call). At least one
   * record comes back even if it alone exceeds maxBytes. `unsynced` as for readTail().
   * @throws ERR_COMMITLOG_CLOSED, ERR_COMMITLOG_CORRUPT (crc mismatch), ERR_COMMITLOG_IO
   */
  async read(from: Offset, maxRecords: number, maxBytes: number, unsynced = false): Promise<ReadBatch> {
    const tail = this.readTail(from, maxRecords, maxBytes, unsynced);
    if (tail !== null) return tail;
    return this.#readDisk(from, Math.max(1, maxRecords), maxBytes);
  }

  /**
   * Sends everything appended so far and resolves once it is committed.
   * @throws (rejects) the batch's CommitLogError if it failed; ERR_COMMITLOG_CLOSED after close
   */
  flush(): Promise<void> {
    if (this.#closed) return Promise.reject(new CommitLogError('ERR_COMMITLOG_CLOSED', `log ${this.name} is closed`));
    if (this.#committed >= this.#end) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiters.push({ target: this.#end, resolve, reject });
      this.requestSync();
      if (this.#flushing === null) this.#scheduleFlush();
    });
  }

  /**
   * 'batch' with lazyMs: the records appended so far are to be committed without waiting out
   * lazyMs (a broker calls it for a message whose acknowledgement waits on the commit). Their
   * sync round starts once they are written; records appended in the same turn without it go
   * with them. Costs a comparison or two; changes nothing under the other policies, which sync
   * (or not) every batch anyway.
   *
   * `writerGapMs`, with a commit delay (StoreOptions.commitDelayMs): how long after *its own*
   * previous commit the writer that waits on these records wrote them (negative or omitted:
   * unknown, or it did not wait for that commit). The log measures only its own gap, and when
   * several writers share it, one that waits for each commit writes while another's round is in
   * flight and looks pipelined; its hint makes its round urgent, and hurries a round of this log
   * that is waiting out the delay ahead of it.
   */
  requestSync(writerGapMs = -1): void {
    if (writerGapMs >= 0 && writerGapMs !== Infinity && this.#ctx.journal !== null) {
      if (writerGapMs < this.#hintGapMs) this.#hintGapMs = writerGapMs;
      this.#hintEnd = this.#end;
      if (this.#syncInFlight !== null) this.#ctx.journal.hurry(writerGapMs);
    }
    if (this.#end <= this.#syncWanted) return;
    this.#syncWanted = this.#end;
    if (this.#writerActive) return; // it writes them and starts their round
    // all written already: start their round now; records deferred unwritten: write them first
    if (this.#written >= this.#end) this.#kickSync();
    else this.#scheduleFlush();
  }

  /** Has the writer run in this turn's check phase (if it is not already due). */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    this.#ctx.schedule(this.#onTick);
  }

  /**
   * Drops every committed record from the in-memory tail (readers then go to disk). The store
   * calls it to keep the sum of all tails within its budget. Returns the bytes still held.
   */
  dropTail(): number {
    this.#trimTail(0);
    if (this.#memStart === this.#end) {
      // nothing left in memory: an idle log holds no slab either
      this.#slab = this.#placed = null;
      this.#spare = [];
      this.#slabNext = SLAB_MIN_BYTES;
    }
    return this.#memBytes;
  }

  /**
   * Deletes whole oldest segments (never the active one) past retentionBytes or retentionMs.
   * Runs after commits that cross retentionBytes and on the store's timer; callable any time.
   * Resolves to the number of segments deleted.
   */
  enforceRetention(): Promise<number> {
    if (this.#retaining !== null) return this.#retaining;
    this.#retaining = this.#retain().finally(() => {
      this.#retaining = null;
    });
    return this.#retaining;
  }

  /**
   * Deletes the whole oldest segments whose records all lie below `offset` (never the active
   * segment), like Kafka's log-start offset: `start` moves to the first remaining segment, so
   * afterwards start ≤ offset. Records at and above `offset` are never deleted. Resolves to the
   * number of segments deleted. The floor persists only through the deleted files.
   */
  async trimBefore(offset: Offset): Promise<number> {
    if (this.#closing !== null) throw new CommitLogError('ERR_COMMITLOG_CLOSED', `log ${this.name} is closed`);
    this.#trimFloor = Math.max(this.#trimFloor, Math.min(offset, this.#committed));
    if (this.#retaining !== null) await this.#retaining.catch(() => undefined);
    return this.enforceRetention();
  }

  /**
   * Flushes, syncs every file (not with durability 'never'), tells the store whether it closed
   * cleanly (its clean-shutdown list lets the next open skip the full check) and releases the
   * log's file descriptors. Further appends throw ERR_COMMITLOG_CLOSED.
   */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    this.#closing = this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    let ok = true;
    if (this.#committed < this.#end) await this.flush().catch(() => (ok = false));
    if (this.#flushing !== null) await this.#flushing;
    await this.#syncSettled().catch(() => undefined);
    if (this.#syncError !== null) ok = false;
    if (this.#retaining !== null) await this.#retaining.catch(() => undefined);
    // Records a failure took back stay in the files until a repair truncates them: the writer
    // repairs at once, but that repair may have failed, or a round failed during close. Closing
    // unrepaired would let the next open find them intact and bring them back.
    if (this.#needsRepair && this.#dirReady) await this.#repair().catch(() => (ok = false));
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#lazyTimer !== null) clearTimeout(this.#lazyTimer);
    this.#lazyTimer = null;
    try {
      // 'never' promises nothing across power loss, so close does not sync either; the store's
      // clean-shutdown list is then only a hint, and the open-time check of the newest record
      // catches a lost tail.
      if (this.#opts.durability.mode !== 'never') await this.#syncDirty();
    } catch {
      // not clean: the next open runs the full check, and nothing is lost
      ok = false;
    }
    this.#closed = true;
    this.#recSlab.length = this.#recView.length = this.#recPos.length = this.#recLen.length = this.#memTs.length = 0;
    this.#slab = this.#placed = null;
    this.#spare = [];
    this.#memBytes = 0;
    for (const s of this.#segments) {
      this.#ctx.files.forget(s.segPath);
      this.#ctx.files.forget(s.idxPath);
    }
    const newest = this.#segments[this.#segments.length - 1];
    const clean = ok && this.#dirReady && !this.#needsRepair && newest !== undefined;
    this.#ctx.closed(this, clean ? { base: newest.base, segBytes: newest.bytes, idxBytes: indexBytes(newest.count) } : null);
  }

  readonly #onTick = (): void => {
    this.#flushScheduled = false;
    this.#tickTsFresh = false;
    if (this.#flushing === null && this.#written < this.#end) {
      // nobody asked for what is unwritten: it may stay so (deferred already, or now)
      if (this.#syncWanted <= this.#written && (this.#flushed >= this.#end || this.#deferWrite())) return;
      if (!this.#writeInline()) this.#startWriter();
    }
  };

  /**
   * The writer's common case without the writer loop: while the records appended so far fit
   * one synchronous write of the active segment (no new segment, no boot-list line, both files
   * open, nothing to repair), writes them here and returns true. Anything else is left to the
   * loop (false); so is a failed write, which the loop handles as its own (#writeFailure). One
   * record per batch (a ping-pong, a device on its own topic) paid the loop's promises and
   * microtask hops per record: ~15 µs of a QoS 1 ping-pong round trip.
   */
  #writeInline(): boolean {
    this.#writerActive = true;
    while (this.#written < this.#end) {
      if (this.#syncError !== null || this.#needsRepair || !this.#bootMarked || this.#staleMarkers.length > 0) break;
      const to = this.#end;
      let written: Group[] | null = null;
      try {
        written = this.#writeSmall(this.#written, to);
        if (written === null) break;
      } catch (err) {
        this.#writeFailure = err as CommitLogError;
      }
      // written or failed, as the loop counts it: a failure rolls back from `committed`
      this.#written = to;
      this.#unwrittenBytes = 0;
      if (written === null) break;
      this.#afterWrite(to, written);
    }
    this.#writerActive = false;
    return this.#written >= this.#end && this.#writeFailure === null;
  }

  /**
   * #writeBatch for a batch that fits one synchronous write of the active segment's files (both
   * already open): returns the group written, or null with nothing done when the batch does not
   * qualify. Throws what #writeBatch throws when a write fails (the metadata has not moved).
   */
  #writeSmall(from: Offset, to: Offset): Group[] | null {
    const { ops, files } = this.#ctx;
    const active = this.#segments[this.#segments.length - 1];
    if (ops.writevSync === undefined || active === undefined) return null;
    const indexAdded = (to - from) * INDEX_ENTRY_BYTES;
    if (this.#unwrittenBytes + indexAdded > this.#ctx.syncWriteMaxBytes || active.bytes + this.#unwrittenBytes > this.#opts.segmentBytes) return null;
    const groups = this.#plan(from, to);
    const g = groups[0] as Group;
    if (groups.length !== 1 || g.isNew) return null;
    const refs = files.tryAcquire([g.seg.segPath, g.seg.idxPath]);
    if (refs === null) return null;
    const segRef = refs[0] as FileRef;
    const idxRef = refs[1] as FileRef;
    try {
      this.#writeGroupSync(g, segRef, idxRef);
    } finally {
      files.release(segRef);
      files.release(idxRef);
    }
    this.#moveMetadata(groups);
    return groups;
  }

  /** A group's segment and index writes within syncWriteMaxBytes, on the calling thread (two pwritevs, no threadpool round trip). */
  #writeGroupSync(g: Group, segRef: FileRef, idxRef: FileRef): void {
    const ops = this.#ctx.ops as Required<Pick<FileOps, 'writevSync'>>; // callers checked that it exists
    const idxBuf = this.#indexEntries(g);
    g.idxBuf = idxBuf;
    try {
      ops.writevSync(segRef.fd, g.segBufs, g.segPos);
    } catch (e) {
      throw ioError('write', g.seg.segPath, e);
    }
    try {
      ops.writevSync(idxRef.fd, [idxBuf], g.idxPos);
    } catch (e) {
      throw ioError('write', g.seg.idxPath, e);
    }
  }

  /** Runs the writer loop; `#flushing` is its promise until it ends (a newer run's is left alone). */
  #startWriter(): void {
    this.#writerActive = true;
    const run: Promise<void> = this.#flushLoop().finally(() => {
      if (this.#flushing === run) this.#flushing = null;
    });
    this.#flushing = run;
  }

  /**
   * The writer: writes whatever was appended, batch after batch, without waiting for the
   * previous batch's fdatasync ('batch' mode hands each written batch to #kickSync, which
   * syncs everything written so far in one go while the next batch is being written: group
   * commit). A failure of either rolls everything uncommitted back.
   */
  async #flushLoop(): Promise<void> {
    for (;;) {
      if (this.#writeFailure !== null) {
        // a batch #writeInline() wrote and failed: handled as the catch below handles one
        const err = this.#writeFailure;
        this.#writeFailure = null;
        this.#needsRepair = true;
        await this.#syncSettled();
        this.#rollBackUncommitted(ioError('append', this.#ctx.dir, err));
        continue;
      }
      if (this.#syncError !== null) {
        await this.#syncSettled();
        this.#rollBackUncommitted(this.#syncError);
      }
      // Records a failure took back stay in the files until the repair truncates them: repair at
      // once, not at the next write, or a kill -9 meanwhile brings them back.
      if (this.#needsRepair) {
        await this.#syncSettled();
        // records waiting when this attempt starts fail with it; later ones get an attempt of their own
        const waiting = this.#end > this.#written;
        try {
          await this.#repair();
        } catch (err) {
          if (!waiting && this.#syncError === null) {
            if (this.#written < this.#end) continue;
            // nothing waits on it: the next write (or close) tries again
            this.#writerActive = false;
            return;
          }
          this.#rollBackUncommitted(ioError('repair after a failed write', this.#ctx.dir, err));
          continue;
        }
      }
      if (this.#written >= this.#end && this.#syncError === null) {
        // decided synchronously with the check: a sync failing from now on rolls back by itself
        this.#writerActive = false;
        return;
      }
      if (this.#written >= this.#end) continue;
      const from = this.#written;
      const to = this.#end;
      this.#written = to;
      this.#unwrittenBytes = 0;
      let written: Group[];
      try {
        written = await this.#writeBatch(from, to);
      } catch (err) {
        this.#needsRepair = true;
        await this.#syncSettled();
        this.#rollBackUncommitted(ioError('append', this.#ctx.dir, err));
        continue;
      }
      this.#afterWrite(to, written);
    }
  }

  /** A batch ending at `to` is written: it becomes readable unsynced, and is synced or committed per the policy. */
  #afterWrite(to: Offset, written: Group[]): void {
    const mode = this.#opts.durability.mode;
    if (mode === 'batch') {
      if (this.#unsynced.length === 0) this.#firstUnsyncedAt = performance.now();
      this.#unsynced.push({ to, groups: written });
      if (this.#syncError !== null) return; // a sync failed meanwhile: this batch goes too
      const grew = to > this.#flushed; // deferred records were announced already
      this.#flushed = to;
      this.#wantSync(to, written);
      if (grew) this.emit('flushed', to);
      this.#kickSyncAfterTick();
    } else {
      this.#flushed = to;
      this.emit('flushed', to);
      if (mode === 'interval') for (const g of written) this.#dirty.add(g.seg);
      this.#commitThrough(to);
    }
  }

  /**
   * 'batch': decides whether the batch just written (ending at `to`) is to be synced now: always
   * without lazyMs; with it, when asked for (requestSync, flush) or when the unsynced bytes reach
   * LAZY_SYNC_MAX_BYTES; else the lazy timer bounds the wait.
   */
  #wantSync(to: Offset, groups: Group[]): void {
    if (this.#lazyMs === 0) {
      this.#syncWanted = to;
      return;
    }
    for (const g of groups) this.#unsyncedBytes += g.endPos - g.segPos;
    if (this.#unsyncedBytes >= LAZY_SYNC_MAX_BYTES) this.#syncWanted = Math.max(this.#syncWanted, to);
    else if (this.#syncWanted < to) this.#armLazyTimer();
  }

  /** Bounds the wait of records nobody asked to sync: the timer asks for them lazyMs from now. */
  #armLazyTimer(): void {
    if (this.#lazyTimer !== null) return;
    this.#lazyTimer = setTimeout(this.#onLazyTimer, this.#lazyMs);
    this.#lazyTimer.unref();
  }

  readonly #onLazyTimer = (): void => {
    this.#lazyTimer = null;
    if (this.#closed) return;
    this.#syncWanted = Math.max(this.#syncWanted, this.#flushed);
    if (this.#written < this.#flushed && !this.#writerActive) this.#scheduleFlush();
    else this.#kickSync();
  };

  /**
   * 'batch' with lazyMs, writer idle: true when the records appended since the last write can
   * stay unwritten for now — nobody asked to sync them and they are under LAZY_SYNC_MAX_BYTES.
   * They become `flushed` (readable as unsynced) at once and are written with the next batch
   * someone asks for, or when the lazy timer fires. Saves a segment and an index write per
   * batch for records a power loss or a kill -9 may take (a broker's QoS 0 messages).
   */
  #deferWrite(): boolean {
    if (this.#lazyMs === 0 || this.#syncWanted > this.#written || this.#syncError !== null || this.#needsRepair) return false;
    if (this.#unwrittenBytes + this.#unsyncedBytes >= LAZY_SYNC_MAX_BYTES) return false;
    const to = this.#end;
    this.#flushed = to;
    this.#armLazyTimer();
    this.emit('flushed', to);
    return true;
  }

  /**
   * #kickSync() once the nextTicks queued so far have run, among them those the 'flushed'
   * handlers queued (a broker's connections uncork the sockets they wrote the new records to in
   * one). The fdatasync wakes threadpool threads; where they share a core with this one, the
   * scheduler may run them first, and the subscriber's message waits until this thread gets
   * the core back (a profile of a QoS 1 ping-pong showed the broker's main thread inside the
   * fdatasync submissions for ~65 µs per round trip, before its socket write).
   */
  #kickSyncAfterTick(): void {
    if (this.#kickQueued) return;
    this.#kickQueued = true;
    process.nextTick(this.#onKickQueued);
  }

  readonly #onKickQueued = (): void => {
    this.#kickQueued = false;
    this.#kickSync();
  };

  /**
   * The syncer ('batch' mode): fdatasyncs every file the written-but-unsynced batches touched,
   * at most one round in flight; what is written meanwhile waits for the next round. A round
   * starts only when some record not yet committed is wanted synced (#wantSync).
   */
  #kickSync(): void {
    if (this.#syncInFlight !== null || this.#unsynced.length === 0 || this.#syncError !== null) return;
    if (this.#syncWanted <= this.#committed) return;
    const batches = this.#unsynced.splice(0);
    this.#unsyncedBytes = 0;
    const target = (batches[batches.length - 1] as UnsyncedBatch).to;
    const gapMs = this.#withHint(this.#firstUnsyncedAt - this.#lastCommitAt);
    if (target >= this.#hintEnd) this.#hintGapMs = Infinity;
    this.#syncInFlight = this.#syncBatches(batches, gapMs).then(
      () => {
        this.#syncInFlight = null;
        this.#lastCommitAt = performance.now();
        this.#commitThrough(target);
        this.#kickSync();
      },
      (err: unknown) => {
        this.#syncInFlight = null;
        // put them back: the failure path reverts their metadata
        this.#unsynced.unshift(...batches);
        const error = err instanceof CommitLogError ? err : ioError('fdatasync', this.#ctx.dir, err);
        this.#needsRepair = true;
        this.#syncError = error;
        // an active writer handles it at its next step; otherwise it happens here, and the
        // writer runs to repair the files (close() repairs by itself)
        if (!this.#writerActive) {
          this.#rollBackUncommitted(error);
          if (this.#closing === null) this.#startWriter();
        }
      },
    );
  }

  /**
   * The gap to hand the journal: urgent (Journal.commit: 0 <= gap < delay) if the log's own gap
   * or a writer's hint for records not yet carried says so.
   */
  #withHint(gapMs: number): number {
    const hint = this.#hintGapMs;
    return hint !== Infinity && (gapMs < 0 || hint < gapMs) ? hint : gapMs;
  }

  /** `gapMs`: from the previous round's commit to the first of these batches' writes (Journal.commit). */
  async #syncBatches(batches: UnsyncedBatch[], gapMs: number): Promise<void> {
    const { ops, files, journal } = this.#ctx;
    if (journal !== null && !this.#syncsOwnFiles(batches)) {
      // the store's journal holds the bytes durably; its checkpoint syncs the files later
      const frames: JournalFrame[] = [];
      const paths = new Set<string>();
      for (const b of batches) {
        for (const g of b.groups) {
          frames.push({ log: this.name, segmentBase: g.seg.base, segmentPos: g.segPos, segment: g.segBufs, indexPos: g.idxPos, index: g.idxBuf as Buffer });
          paths.add(g.seg.segPath).add(g.seg.idxPath);
        }
      }
      // New directory entries first: once the journal holds a frame, its round must not fail
      // (the failure's repair would delete files a replay then writes the frame back into), and
      // replay writes only into files that exist.
      await this.#syncDirs();
      // a writer that came meanwhile waits on records queued behind this round: it is urgent too
      await journal.commit(frames, [...paths], this.#withHint(gapMs));
      return;
    }
    const segs = new Set<SegmentState>();
    for (const b of batches) for (const g of b.groups) segs.add(g.seg);
    await this.#besideDirSyncs(async () => {
      // One segment at a time, its pins released before the next acquire: holding one segment's
      // fds while waiting for another's slots deadlocks once a round (or two logs' rounds) needs
      // more than the cache's maxOpenFiles (FileCache: all of an operation's slots in one call).
      for (const seg of segs) {
        const paths = [seg.segPath, seg.idxPath];
        const [segRef, idxRef] = (files.tryAcquire(paths) ?? (await files.acquire(paths, false))) as [FileRef, FileRef];
        try {
          const [segDone, idxDone] = await Promise.allSettled([ops.fdatasync(segRef.fd), ops.fdatasync(idxRef.fd)]);
          if (segDone.status === 'rejected') throw ioError('fdatasync', seg.segPath, segDone.reason);
          if (idxDone.status === 'rejected') throw ioError('fdatasync', seg.idxPath, idxDone.reason);
        } finally {
          files.release(segRef);
          files.release(idxRef);
        }
      }
    });
  }

  /**
   * With the journal: true when this round is large enough (StoreOptions.journalDirectBytes)
   * that fdatasyncing the log's own files costs less than writing its bytes a second time. The
   * journal's frames of earlier rounds stay valid: replay writes the bytes those files hold.
   */
  #syncsOwnFiles(batches: UnsyncedBatch[]): boolean {
    let bytes = 0;
    for (const b of batches) for (const g of b.groups) bytes += g.endPos - g.segPos;
    return bytes >= this.#ctx.journalDirectBytes;
  }

  /** Runs `fileSyncs` beside #syncDirs(); settles only once both have, failing if either did. */
  async #besideDirSyncs(fileSyncs: () => Promise<void>): Promise<void> {
    const dirs = this.#syncDirs();
    try {
      await fileSyncs();
    } catch (err) {
      await dirs.catch(() => undefined);
      throw err;
    }
    await dirs;
  }

  /**
   * Fsyncs the directories whose new entries no round has synced yet (a new segment's files in
   * the log's directory, a new log's directory in the store's root); see #besideDirSyncs. A
   * failure puts the entries back for the next round and rejects.
   */
  #syncDirs(): Promise<void> {
    const { ops, dir } = this.#ctx;
    const paths: string[] = [];
    if (this.#logDirUnsynced) paths.push(dir);
    if (this.#rootUnsynced) paths.push(dirname(dir));
    if (paths.length === 0) return Promise.resolve();
    const log = this.#logDirUnsynced;
    const root = this.#rootUnsynced;
    this.#logDirUnsynced = this.#rootUnsynced = false;
    const done = Promise.all(paths.map((path) => ops.fsyncDir(path).catch((e: unknown) => Promise.reject(ioError('fsync', path, e))))).then(
      () => undefined,
      (err: unknown) => {
        if (log) this.#logDirUnsynced = true;
        if (root) this.#rootUnsynced = true;
        throw err;
      },
    );
    done.catch(() => undefined); // awaited by the round; a file sync failing first must not leave it unhandled
    return done;
  }

  /** Resolves once no fdatasync round is in flight. */
  async #syncSettled(): Promise<void> {
    while (this.#syncInFlight !== null) await this.#syncInFlight;
  }

  /** Records below `to` meet the durability policy: readers, waiters and listeners learn it. */
  #commitThrough(to: Offset): void {
    if (to <= this.#committed) return;
    this.#committed = to;
    while (this.#waiters.length > 0 && (this.#waiters[0] as Waiter).target <= to) (this.#waiters.shift() as Waiter).resolve();
    this.#trimTail(this.#opts.tailBytes);
    this.#ctx.tailChanged(this, this.#memBytes);
    if (this.#totalBytes > this.#opts.retentionBytes && this.#segments.length > 1) void this.enforceRetention().catch(() => undefined);
    this.emit('commit', to);
  }

  /**
   * Everything beyond `committed` is lost: reverts the segment metadata of the batches written
   * but not synced and rolls the records back (#failPending); the next write repairs the files
   * first. Callers make sure no sync round is in flight (it could still commit some of them).
   */
  #rollBackUncommitted(err: CommitLogError): void {
    for (let b = this.#unsynced.length - 1; b >= 0; b--) {
      const groups = (this.#unsynced[b] as UnsyncedBatch).groups;
      for (let k = groups.length - 1; k >= 0; k--) this.#unmove(groups[k] as Group);
    }
    this.#unsynced = emptyObjectArray<UnsyncedBatch>();
    this.#unsyncedBytes = 0;
    this.#needsRepair = true;
    this.#syncError = null;
    if (this.#end > this.#committed || this.#waiters.length > 0) this.#failPending(err);
  }

  /** Rolls `end` and `flushed` back to `committed`, rejects flush() waiters and emits 'failed'. */
  #failPending(err: CommitLogError): void {
    const from = this.#committed;
    const to = this.#end;
    const keep = this.#head + (from - this.#memStart);
    // The slab space stays taken: views of the lost records may still be held by readers.
    for (let k = keep; k < this.#recLen.length; k++) {
      this.#memBytes -= this.#recLen[k] as number;
      (this.#recSlab[k] as Slab).records--;
    }
    this.#recSlab.length = this.#recView.length = this.#recPos.length = this.#recLen.length = this.#memTs.length = keep;
    this.#ctx.tailChanged(this, this.#memBytes);
    this.#end = this.#flushed = this.#written = from;
    this.#unwrittenBytes = 0;
    this.#syncWanted = Math.min(this.#syncWanted, from);
    const waiters = this.#waiters;
    this.#waiters = emptyObjectArray<Waiter>();
    for (const w of waiters) w.reject(err);
    this.emit('failed', err, from, to);
  }

  /**
   * Plans which records go to which segment (the active one until full, then new ones) and
   * copies their tail slots, synchronously: tail indices may shift across an await.
   */
  #plan(from: Offset, to: Offset): Group[] {
    const max = this.#opts.segmentBytes;
    const groups: Group[] = [];
    const active = this.#segments[this.#segments.length - 1];
    let cur: Group | null = null;
    let bytes = active?.bytes ?? 0;
    let count = active?.count ?? 0;
    const lens = this.#recLen;
    let i = this.#head + (from - this.#memStart);
    for (let off = from; off < to; off++, i++) {
      const len = lens[i] as number;
      const full = count > 0 && bytes + len > max;
      if (cur === null && active !== undefined && !full) {
        cur = this.#group(active, false, i, bytes, indexBytes(count));
        groups.push(cur);
      } else if (cur === null || full) {
        bytes = HEADER_BYTES;
        count = 0;
        cur = this.#group(newSegmentState(this.#ctx.dir, off), true, i, 0, 0);
        groups.push(cur);
      }
      cur.n++;
      bytes += len;
      count++;
      cur.endPos = bytes;
    }
    for (const g of groups) {
      const end = g.first + g.n;
      g.slabs = this.#recSlab.slice(g.first, end) as Slab[];
      g.pos = this.#recPos.slice(g.first, end);
      g.lens = lens.slice(g.first, end);
      g.timestamps = this.#memTs.slice(g.first, end);
      g.lastTs = g.timestamps[g.n - 1] as number;
      // one iovec per run of records lying back to back in one slab
      const bufs: Buffer[] = g.isNew ? [encodeHeader(SEGMENT_MAGIC, g.seg.base)] : [];
      let runSlab: Buffer | null = null;
      let runStart = 0;
      let runEnd = 0;
      for (let k = 0; k < g.n; k++) {
        const slab = (g.slabs[k] as Slab).buf;
        const at = g.pos[k] as number;
        if (slab !== runSlab || at !== runEnd) {
          if (runSlab !== null) bufs.push(runSlab.subarray(runStart, runEnd));
          runSlab = slab;
          runStart = at;
        }
        runEnd = at + (g.lens[k] as number);
      }
      if (runSlab !== null) bufs.push(runSlab.subarray(runStart, runEnd));
      g.segBufs = bufs;
    }
    return groups;
  }

  #group(seg: SegmentState, isNew: boolean, first: number, segPos: number, idxPos: number): Group {
    const endPos = isNew ? HEADER_BYTES : segPos;
    return { seg, isNew, prevCount: 0, prevBytes: 0, prevLastTs: 0, first, n: 0, segPos, idxPos, endPos, slabs: [], pos: [], lens: [], timestamps: [], segBufs: [], idxBuf: null, lastTs: 0 };
  }

  /**
   * Writes the records [from, to) and their index entries (no fdatasync) and moves the segment
   * metadata; returns the groups written, which #unmove() can take back.
   */
  async #writeBatch(from: Offset, to: Offset): Promise<Group[]> {
    const { ops, files } = this.#ctx;
    const groups = this.#plan(from, to);
    // This boot's first write also adds the log to the store's boot list, in parallel with the
    // data: recovery is strict only for a log last written in this boot (StoreOptions.bootId),
    // and whichever lands first, a crash leaves either the log unlisted (lenient) or the page
    // cache intact (strict is right). Not synced: the list is read only in the boot that wrote it.
    let marking: Promise<void> | null = null;
    if (!this.#bootMarked || this.#staleMarkers.length > 0) {
      // Settled below, after the writes, whatever they do. A failure leaves the log unlisted,
      // which only makes its next open lenient (safe in any boot): the batch goes on, and the
      // next one tries again.
      marking = this.#markBoot().catch(() => undefined);
    }
    try {
      for (const g of groups) {
        const { seg, segBufs } = g;
        const paths = [seg.segPath, seg.idxPath];
        let refs: FileRef[];
        if (g.isNew) {
          // File creations take turns across the store (createConcurrency), so a burst of new
          // logs commits its first records one log after another instead of all after the
          // last creation. No pin is held while waiting for a turn, and a turn's holder waits
          // only for fd slots, which every pin's holder gives back without needing a turn.
          const done = await this.#ctx.createTurn();
          try {
            await this.#ensureDir();
            this.#orphans.push(seg);
            refs = await files.acquire(paths, true);
          } finally {
            done();
          }
          this.#logDirUnsynced = true;
        } else refs = files.tryAcquire(paths) ?? (await files.acquire(paths, false));
        const segRef = refs[0] as FileRef;
        const idxRef = refs[1] as FileRef;
        try {
          const segBytes = g.endPos - g.segPos;
          const idxBytes = (g.isNew ? HEADER_BYTES : 0) + g.n * INDEX_ENTRY_BYTES;
          if (ops.writevSync !== undefined && segBytes + idxBytes <= this.#ctx.syncWriteMaxBytes) {
            // Up to syncWriteMaxBytes, two pwritevs here cost less than the threadpool's round trip.
            this.#writeGroupSync(g, segRef, idxRef);
          } else {
            // The segment write goes first; the checksums are computed while the kernel copies.
            const segWrite = ops.writev(segRef.fd, segBufs, g.segPos).catch((e: unknown) => Promise.reject(ioError('write', seg.segPath, e)));
            segWrite.catch(() => undefined);
            const idxBuf = this.#indexEntries(g);
            g.idxBuf = idxBuf;
            // Both must have settled before a failure is handled: the repair truncates and the
            // next batch reuses these positions (and perhaps this slab), so a write still in the
            // threadpool would land on top of newer records.
            let idxWrite: Promise<void>;
            if (ops.writevSync !== undefined && idxBuf.length <= this.#ctx.syncWriteMaxBytes) {
              try {
                ops.writevSync(idxRef.fd, [idxBuf], g.idxPos);
                idxWrite = Promise.resolve();
              } catch (e) {
                idxWrite = Promise.reject(ioError('write', seg.idxPath, e));
              }
            } else {
              idxWrite = ops.writev(idxRef.fd, [idxBuf], g.idxPos).catch((e: unknown) => Promise.reject(ioError('write', seg.idxPath, e)));
            }
            const [segDone, idxDone] = await Promise.allSettled([segWrite, idxWrite]);
            if (segDone.status === 'rejected') throw segDone.reason;
            if (idxDone.status === 'rejected') throw idxDone.reason;
          }
        } finally {
          files.release(segRef);
          files.release(idxRef);
        }
      }
    } finally {
      // settled before this returns or throws: close() must not resolve while it runs
      if (marking !== null) await marking;
    }
    // Everything is written: only now does the metadata move.
    this.#moveMetadata(groups);
    this.#orphans = emptyObjectArray<SegmentState>();
    return groups;
  }

  /** Moves the segments' metadata over groups just written (#unmove() takes a group back). */
  #moveMetadata(groups: Group[]): void {
    for (const g of groups) {
      const seg = g.seg;
      g.prevCount = seg.count;
      g.prevBytes = seg.bytes;
      g.prevLastTs = seg.lastTimestampMs;
      if (g.isNew) this.#segments.push(seg);
      seg.count += g.n;
      this.#totalBytes += g.endPos - (g.isNew ? 0 : seg.bytes);
      seg.bytes = g.endPos;
      seg.lastTimestampMs = g.lastTs;
    }
  }

  /** Creates the log's directory before its first file. */
  async #ensureDir(): Promise<void> {
    if (this.#dirReady) return;
    await this.#ctx.ops.mkdir(this.#ctx.dir);
    this.#dirReady = true;
    this.#rootUnsynced = true;
    this.#ctx.created(this);
  }

  /** Adds the log to the store's boot list, then removes an older version's marker files. */
  async #markBoot(): Promise<void> {
    if (!this.#bootMarked) await this.#ctx.markWritten();
    this.#bootMarked = true;
    // best effort: recovery no longer reads them, and the next open lists a leftover again
    const { ops, dir } = this.#ctx;
    for (const stale of this.#staleMarkers.splice(0)) await ops.unlink(join(dir, stale)).catch(() => undefined);
  }

  /** Takes back the metadata move of a written group whose sync failed (newest group first). */
  #unmove(g: Group): void {
    const seg = g.seg;
    this.#totalBytes -= g.endPos - (g.isNew ? 0 : g.prevBytes);
    if (g.isNew) {
      if (this.#segments[this.#segments.length - 1] === seg) this.#segments.pop();
      this.#dirty.delete(seg);
      this.#orphans.push(seg);
      return;
    }
    seg.count = g.prevCount;
    seg.bytes = g.prevBytes;
    seg.lastTimestampMs = g.prevLastTs;
  }

  /**
   * Index entries (with the header for a new segment) of a planned group, in chunks: a chunk
   * ends at CHUNK_MAX_RECORDS records or before CHUNK_MAX_BYTES would be exceeded. One CRC call
   * covers each contiguous run of a chunk in memory, usually the whole chunk (format.ts).
   */
  #indexEntries(g: Group): Buffer {
    const idxBuf = Buffer.allocUnsafe((g.isNew ? HEADER_BYTES : 0) + g.n * INDEX_ENTRY_BYTES);
    let at = 0;
    if (g.isNew) {
      encodeHeader(INDEX_MAGIC, g.seg.base).copy(idxBuf, 0);
      at = HEADER_BYTES;
    }
    const words = entryWords(idxBuf);
    let pos = g.isNew ? HEADER_BYTES : g.segPos;
    let chunkAt = at;
    let chunkBytes = 0;
    let chunkRecords = 0;
    // the chunk's record bytes, as views of the contiguous runs they occupy in slabs
    let pieces: Buffer[] = [];
    let runSlab: Buffer | null = null;
    let runStart = 0;
    let runEnd = 0;
    for (let k = 0; k < g.n; k++) {
      const slab = (g.slabs[k] as Slab).buf;
      const from = g.pos[k] as number;
      const len = g.lens[k] as number;
      if (chunkRecords > 0 && (chunkRecords === CHUNK_MAX_RECORDS || chunkBytes + len > CHUNK_MAX_BYTES)) {
        pieces.push((runSlab as Buffer).subarray(runStart, runEnd));
        sealChunk(idxBuf, chunkAt, at - INDEX_ENTRY_BYTES, pieces);
        pieces = [];
        runSlab = null;
        chunkAt = at;
        chunkBytes = 0;
        chunkRecords = 0;
      }
      if (slab !== runSlab || from !== runEnd) {
        if (runSlab !== null) pieces.push(runSlab.subarray(runStart, runEnd));
        runSlab = slab;
        runStart = from;
      }
      runEnd = from + len;
      if (words !== null) writeEntryWords(words, at, pos, len, g.timestamps[k] as number, chunkRecords === 0);
      else writeEntry(idxBuf, at, pos, len, g.timestamps[k] as number, chunkRecords === 0);
      chunkRecords++;
      chunkBytes += len;
      at += INDEX_ENTRY_BYTES;
      pos += len;
    }
    if (chunkRecords > 0) {
      pieces.push((runSlab as Buffer).subarray(runStart, runEnd));
      sealChunk(idxBuf, chunkAt, at - INDEX_ENTRY_BYTES, pieces);
    }
    return idxBuf;
  }

  /** fdatasyncs every segment written since its last sync ('interval': timer and close). */
  async #syncDirty(): Promise<void> {
    while (this.#syncing !== null) await this.#syncing;
    if (this.#dirty.size === 0 && !this.#logDirUnsynced && !this.#rootUnsynced) return;
    const segs = [...this.#dirty];
    this.#dirty.clear();
    const { ops, files } = this.#ctx;
    this.#syncing = this.#besideDirSyncs(async () => {
      for (const seg of segs) {
        for (const path of [seg.segPath, seg.idxPath]) {
          const ref = await files.acquireOne(path, false);
          try {
            await ops.fdatasync(ref.fd);
          } catch (err) {
            this.#dirty.add(seg);
            throw ioError('fdatasync', path, err);
          } finally {
            files.release(ref);
          }
        }
      }
    }).finally(() => {
      this.#syncing = null;
    });
    await this.#syncing;
  }

  /** Makes the files match the metadata again after a failed batch. */
  async #repair(): Promise<void> {
    const { ops, files } = this.#ctx;
    for (const seg of this.#orphans) {
      files.forget(seg.segPath);
      files.forget(seg.idxPath);
      await ops.unlink(seg.idxPath);
      await ops.unlink(seg.segPath);
    }
    this.#orphans = emptyObjectArray<SegmentState>();
    const active = this.#segments[this.#segments.length - 1];
    if (active !== undefined) {
      for (const [path, size] of [
        [active.segPath, active.bytes],
        [active.idxPath, indexBytes(active.count)],
      ] as const) {
        const ref = await files.acquireOne(path, false);
        try {
          await ops.ftruncate(ref.fd, size);
          await ops.fdatasync(ref.fd);
        } finally {
          files.release(ref);
        }
      }
    }
    this.#needsRepair = false;
  }

  /** Views of offsets [from, to) are cached until #sweepViews drops them. */
  #viewMade(from: Offset, to: Offset): void {
    if (this.#viewsFrom < 0) {
      this.#viewsFrom = from;
      this.#viewsTo = to;
      return;
    }
    if (from < this.#viewsFrom) this.#viewsFrom = from;
    if (to > this.#viewsTo) this.#viewsTo = to;
  }

  /**
   * Drops the cached views (their holders keep theirs; later readers make new ones). Runs at the
   * next append and at a read that does not overlap them: the readers of one position share
   * views (a fanout's subscribers, woken by one publish or event), and a reader catching up
   * alone, even on an idle log, holds one batch of them at a time, so none lives long enough to
   * be promoted. (A subscriber lagging a QoS 0 flood reads the last 4 MiB of the tail after the
   * appends have stopped, so appends alone were not enough.) A timer or a setImmediate per turn
   * would cost more than the views it frees.
   */
  #sweepViews(): void {
    const views = this.#recView;
    const from = Math.max(this.#viewsFrom, this.#memStart);
    const to = Math.min(this.#viewsTo, this.#memStart + (views.length - this.#head));
    for (let i = this.#head + (from - this.#memStart), last = this.#head + (to - this.#memStart); i < last; i++) views[i] = undefined;
    this.#viewsFrom = -1;
  }

  #trimTail(limit: number): void {
    while (this.#memStart < this.#committed && this.#memBytes > limit) this.#dropOldest();
    this.#compactTail();
  }

  /** Drops the oldest tail record (its slab goes once no record or reader holds it). */
  #dropOldest(): void {
    this.#memBytes -= this.#recLen[this.#head] as number;
    const slab = this.#recSlab[this.#head] as Slab;
    if (--slab.records === 0 && slab !== this.#slab) this.#release(slab);
    this.#recSlab[this.#head] = null;
    this.#recView[this.#head] = undefined;
    this.#head++;
    this.#memStart++;
  }

  /** A slab none of whose records is left: kept for reuse if its memory never escaped. */
  #release(slab: Slab): void {
    if (!slab.escaped && slab.buf.length === this.#slabMax && this.#spare.length < 2) this.#spare.push(slab.buf);
  }

  #compactTail(): void {
    if (this.#head > TAIL_COMPACT_SLOTS && this.#head * 2 > this.#recSlab.length) {
      this.#recSlab.splice(0, this.#head);
      this.#recView.splice(0, this.#head);
      this.#recPos.splice(0, this.#head);
      this.#recLen.splice(0, this.#head);
      this.#memTs.splice(0, this.#head);
      this.#head = 0;
    }
  }

  #segmentOf(off: Offset): SegmentState | undefined {
    const segs = this.#segments;
    let lo = 0;
    let hi = segs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if ((segs[mid] as SegmentState).base <= off) lo = mid;
      else hi = mid - 1;
    }
    const s = segs[lo];
    return s !== undefined && s.base <= off && off < s.base + s.count ? s : undefined;
  }

  /**
   * Pins a file of the segment a disk read from `from` is in; null when retention deleted the
   * segment between the lookup and the open (the read is then below the start).
   */
  async #pinForRead(path: string, from: Offset): Promise<FileRef | null> {
    try {
      return await this.#ctx.files.acquireOne(path, false);
    } catch (err) {
      if (from < this.#start) return null;
      throw err;
    }
  }

  /**
   * Reads from disk: one positional read of the index and one of the segment. A record can
   * only be verified with its whole chunk, so the reads start at the chunk holding `from` and
   * end with the chunk holding the last record returned (up to CHUNK_MAX_RECORDS entries and a
   * chunk's bytes on either side).
   */
  async #readDisk(from: Offset, maxRecords: number, maxBytes: number): Promise<ReadBatch> {
    const seg = this.#segmentOf(from);
    if (seg === undefined) return empty('belowStart', this.#start);
    const { ops, files } = this.#ctx;
    const rel = from - seg.base;
    const available = Math.min(this.#committed, seg.base + seg.count) - seg.base;
    const want = Math.min(available - rel, maxRecords, READ_MAX_ENTRIES);
    // a chunk holds at most CHUNK_MAX_RECORDS: the end of the one before `from`'s is in view
    const first = Math.max(0, rel - CHUNK_MAX_RECORDS);
    const last = Math.min(available, rel + want + CHUNK_MAX_RECORDS - 1);
    const idxRef = await this.#pinForRead(seg.idxPath, from);
    if (idxRef === null) return empty('belowStart', this.#start);
    let entries: Buffer;
    try {
      entries = Buffer.allocUnsafe((last - first) * INDEX_ENTRY_BYTES);
      const got = await ops.read(idxRef.fd, entries, 0, entries.length, indexBytes(first));
      if (got !== entries.length) {
        throw new CommitLogError('ERR_COMMITLOG_CORRUPT', `${seg.idxPath}: index ends before record ${seg.base + first + got / INDEX_ENTRY_BYTES}`, {
          path: seg.idxPath,
          position: indexBytes(first) + got,
        });
      }
    } catch (err) {
      throw ioError('read', seg.idxPath, err);
    } finally {
      files.release(idxRef);
    }
    const corrupt = (k: number, why: string): CommitLogError =>
      new CommitLogError('ERR_COMMITLOG_CORRUPT', `${seg.idxPath}: entry for record ${seg.base + k} ${why}`, {
        path: seg.idxPath,
        position: indexBytes(k),
      });
    // the chunk holding `from` starts after the nearest chunk end before it
    let cs = rel;
    while (cs > first && !entryEndsChunk(entries, (cs - 1 - first) * INDEX_ENTRY_BYTES)) cs--;
    if (cs === first && first > 0) throw corrupt(rel, `is in a chunk longer than ${CHUNK_MAX_RECORDS} records`);
    // the records to return, then on to the end of the last one's chunk
    const firstPos = entryPos(entries, (cs - first) * INDEX_ENTRY_BYTES);
    let bytes = 0;
    let k = cs;
    let returned = 0;
    let returnedBytes = 0;
    let full = false;
    for (; k < last; k++) {
      const at = (k - first) * INDEX_ENTRY_BYTES;
      const len = entryLen(entries, at);
      if (entryPos(entries, at) !== firstPos + bytes) throw corrupt(k, 'is not contiguous');
      if (k >= rel) {
        if (!full && returned > 0 && (returned === want || returnedBytes + len > maxBytes)) full = true;
        if (full) {
          // read on only to the end of the last returned record's chunk
          if (entryEndsChunk(entries, at - INDEX_ENTRY_BYTES)) break;
        } else {
          returned++;
          returnedBytes += len;
        }
      }
      bytes += len;
      if (returned > 0 && entryEndsChunk(entries, at) && (returned === want || k + 1 >= last)) {
        k++;
        break;
      }
    }
    if (!entryEndsChunk(entries, (k - 1 - first) * INDEX_ENTRY_BYTES)) throw corrupt(k - 1, 'does not end a chunk where the committed records end');
    const data = Buffer.allocUnsafe(bytes);
    const segRef = await this.#pinForRead(seg.segPath, from);
    if (segRef === null) return empty('belowStart', this.#start);
    try {
      let done = 0;
      while (done < bytes) {
        const got = await ops.read(segRef.fd, data, done, bytes - done, firstPos + done);
        if (got === 0) {
          throw new CommitLogError('ERR_COMMITLOG_CORRUPT', `${seg.segPath}: segment ends at ${firstPos + done}, index expects more`, {
            path: seg.segPath,
            position: firstPos + done,
          });
        }
        done += got;
      }
    } catch (err) {
      throw ioError('read', seg.segPath, err);
    } finally {
      files.release(segRef);
    }
    // verify every chunk read, then hand out views of the records asked for
    let chunkAt = (cs - first) * INDEX_ENTRY_BYTES;
    let chunkData = 0;
    let p = 0;
    const records: Buffer[] = new Array<Buffer>(returned);
    const timestamps: number[] = new Array<number>(returned);
    for (let j = cs; j < k; j++) {
      const at = (j - first) * INDEX_ENTRY_BYTES;
      const len = entryLen(entries, at);
      if (j >= rel && j < rel + returned) {
        records[j - rel] = data.subarray(p, p + len);
        timestamps[j - rel] = entryTimestamp(entries, at);
      }
      p += len;
      if (entryEndsChunk(entries, at)) {
        if (!chunkMatches(entries, chunkAt, at, data.subarray(chunkData, p))) {
          const j0 = first + chunkAt / INDEX_ENTRY_BYTES;
          throw new CommitLogError(
            'ERR_COMMITLOG_CORRUPT',
            `${seg.segPath}: records ${seg.base + j0}..${seg.base + j} at byte ${firstPos + chunkData} fail their checksum`,
            { path: seg.segPath, position: firstPos + chunkData },
          );
        }
        chunkAt = at + INDEX_ENTRY_BYTES;
        chunkData = p;
      }
    }
    return { status: 'records', records, timestamps, next: from + returned };
  }

  async #retain(): Promise<number> {
    const { ops, files } = this.#ctx;
    const { retentionBytes, retentionMs } = this.#opts;
    let deleted = 0;
    // never a segment an unsynced batch wrote to (a failed sync may still take that batch back),
    // nor the one holding the newest committed record: a failed round that rolled past it must
    // leave a segment behind, or the log would reopen empty and reuse offsets
    while (this.#segments.length > 1 && (this.#segments[1] as SegmentState).base < this.#committed) {
      const oldest = this.#segments[0] as SegmentState;
      let drop = this.#totalBytes > retentionBytes || oldest.base + oldest.count <= this.#trimFloor;
      if (!drop && retentionMs !== Number.POSITIVE_INFINITY) {
        if (oldest.lastTimestampMs < 0) oldest.lastTimestampMs = await this.#lastTimestamp(oldest);
        drop = Date.now() - oldest.lastTimestampMs > retentionMs;
      }
      if (!drop || this.#closed) break;
      this.#segments.shift();
      this.#totalBytes -= oldest.bytes;
      this.#start = (this.#segments[0] as SegmentState).base;
      this.#dirty.delete(oldest);
      while (this.#memStart < this.#start) this.#dropOldest();
      this.#compactTail();
      files.forget(oldest.idxPath);
      files.forget(oldest.segPath);
      // Index first: a segment without its index is recognised as a half-deleted leftover.
      try {
        await ops.unlink(oldest.idxPath);
        await ops.unlink(oldest.segPath);
      } catch (err) {
        throw ioError('unlink', oldest.segPath, err);
      }
      deleted++;
    }
    return deleted;
  }

  async #lastTimestamp(seg: SegmentState): Promise<number> {
    const ref = await this.#ctx.files.acquireOne(seg.idxPath, false);
    try {
      const buf = Buffer.allocUnsafe(INDEX_ENTRY_BYTES);
      await this.#ctx.ops.read(ref.fd, buf, 0, INDEX_ENTRY_BYTES, indexBytes(seg.count - 1));
      return entryTimestamp(buf, 0);
    } catch (err) {
      throw ioError('read', seg.idxPath, err);
    } finally {
      this.#ctx.files.release(ref);
    }
  }
}
