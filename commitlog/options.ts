/**
 * Options of one log and of a LogStore: the documented interfaces, frozen defaults with the
 * reason for each value, and the only functions that validate them.
 *
 * Invariant: every number a CommitLog or LogStore uses has passed through resolveLogOptions()
 * or resolveStoreOptions(); an invalid value is an ERR_COMMITLOG_INVALID_OPTION naming the
 * field and the accepted range.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CommitLogError } from './errors.js';
import type { FileOps } from './file-ops.js';

/** When a batch counts as committed (and becomes readable). */
export type Durability =
  /**
   * fdatasync the segment and index before the batch commits. Survives power loss.
   * `lazyMs` > 0 lets records nobody waits on share a later write and fdatasync instead of
   * paying their own (a broker's QoS 0 messages): they are `flushed` (readable as unsynced) at
   * once but written and synced only when something asks, i.e. flush(), requestSync() covering
   * one of them, or LAZY_SYNC_MAX_BYTES waiting; otherwise `lazyMs` later. Until then a kill -9
   * or power loss can take them back; they are not `committed`. 0 (the default): every batch is
   * written and synced.
   */
  | { mode: 'batch'; lazyMs?: number }
  /** Commit once written to the OS; fdatasync every `intervalMs` and on close. Survives kill -9. */
  | { mode: 'interval'; intervalMs: number }
  /** Commit once written to the OS; never fsync (not even on close). Survives kill -9 only. */
  | { mode: 'never' };

/** Options of one log. All optional. */
export interface LogOptions {
  /**
   * Roll to a new segment when the next record would take the active one past this size
   * (header included). A segment always holds at least one record.
   * @default 67108864 (64 MiB); range 64 .. 2^31 bytes
   */
  segmentBytes?: number;
  /**
   * append() refuses larger records with ERR_COMMITLOG_RECORD_TOO_LARGE.
   * @default 4194304 (4 MiB); range 0 .. 2^30 bytes
   */
  maxRecordBytes?: number;
  /**
   * Newest committed bytes kept in memory (the appended buffers themselves) so caught-up
   * readers make no syscall. The store's shared budget may evict it earlier. Larger is not
   * free: the longer tail memory lives, the more of it outlives V8's young generation (see
   * TAIL_BYTES_DEFAULT).
   * @default 262144 (256 KiB); range 0 .. 2^40 bytes
   */
  tailBytes?: number;
  /**
   * Durability policy.
   * @default { mode: 'batch' }; intervalMs range 1 .. 3600000; lazyMs range 0 .. 3600000
   */
  durability?: Durability;
  /**
   * Delete whole oldest segments (never the active one) while the log is larger than this.
   * @default Infinity (no limit); range 0 .. Infinity bytes
   */
  retentionBytes?: number;
  /**
   * Delete whole oldest segments (never the active one) whose newest record is older than this.
   * @default Infinity (no limit); range 1 .. Infinity ms
   */
  retentionMs?: number;
}

/** Options of a LogStore. All optional. */
export interface StoreOptions {
  /**
   * Most file descriptors the store keeps open at once, shared by all its logs (an LRU).
   * A file in use by an operation is never closed, so the bound can be exceeded briefly by the
   * number of concurrent operations.
   * @default 1024; range 4 .. 1048576
   */
  maxOpenFiles?: number;
  /**
   * Total in-memory tail bytes across all logs; past it the tails of the logs appended to least
   * recently are dropped.
   * @default 268435456 (256 MiB); range 0 .. 2^40 bytes
   */
  tailBudgetBytes?: number;
  /**
   * How often the store applies retention (by age and bytes) to its open logs; 0 = never.
   * @default 60000 ms; range 0 .. 86400000
   */
  retentionCheckMs?: number;
  /**
   * After opening a log found it damaged (ERR_COMMITLOG_CORRUPT or ERR_COMMITLOG_VERSION: only
   * an operator can change that), open(name) answers with the same error for this long instead
   * of running the log's recovery again. Each recovery reads the log's newest segments, and a
   * broker would otherwise run one for every publish to the topic. Other failures (a full disk,
   * an I/O error) are tried again at the next open. 0 = always try again.
   * @default 5000 ms; range 0 .. 86400000
   */
  damagedRetryMs?: number;
  /**
   * A batch (one segment's records plus their index entries) up to this many bytes is written
   * with a synchronous pwritev on the event-loop thread when the FileOps offer writevSync;
   * a larger batch sends its segment write to the threadpool, so the kernel's copy overlaps with
   * the checksums, and still writes its index on this thread if the index alone fits. The
   * journal's writes follow the same bound. A synchronous write holds the event loop for as long
   * as the kernel copies (~0.2 ms for 512 KiB here, longer if the kernel throttles a writer that
   * outruns the disk), and every log due in one turn writes its own batch; lower it where the
   * event loop's latency matters more than throughput. 0 = never.
   * @default 524288 (512 KiB); range 0 .. 2^30 bytes
   */
  syncWriteMaxBytes?: number;
  /**
   * Most new segment files (with a new log's directory) being created at once, store-wide;
   * further creations wait their turn, first come first served. Creating a file costs far more
   * than writing a record: ~1 ms per inode on the ext4 this was measured on. When 200 topics
   * appear in one burst and every log creates its three inodes at once, each log's next step
   * queues behind every other log's in libuv's threadpool, so all of their first records
   * commit together, after the last creation (notes/2026-11-24-new-topic-burst.md); taking
   * turns lets the first ones commit after their own creation.
   * @default 4; range 1 .. 1024
   */
  createConcurrency?: number;
  /** Defaults for every log opened through the store (per-open options override them). */
  logDefaults?: LogOptions;
  /**
   * The sync rounds of 'batch' logs commit through one store-wide journal
   * (`<root>/.journal-<n>`, journal.ts) instead of each fdatasyncing its own segment and index,
   * so all logs written in one turn share one fdatasync. The logs' files are synced by the
   * journal's checkpoints instead. A store opened without it still replays a journal an earlier
   * run left. Off by default in the library; the broker turns it on (`--no-journal` there).
   * @default false
   */
  journal?: boolean;
  /**
   * With `journal`: past this many bytes the journal moves to a new file and checkpoints the
   * old one (fdatasyncs every file its frames wrote, then deletes it). It bounds replay time:
   * a full 64 MiB journal replays in ~1 s of 1 KiB records, ~3-4 s of 64 B ones (notes/
   * 2026-11-23-journal-default.md).
   * @default 67108864 (64 MiB); range 4096 .. 2^40 bytes
   */
  journalRotateBytes?: number;
  /**
   * With `journal`: a sync round whose commits no writer is waiting on starts no sooner than
   * this many ms after the previous round started, so the commits of the meantime share one
   * fdatasync (PostgreSQL's commit_delay, Kafka's linger.ms). A commit whose log wrote it less
   * than this after its previous commit is urgent and never waits: such a writer waits for each
   * commit, and a delay would cap it at one write per delay (journal.ts); where writers share a
   * log, each can say so for itself (CommitLog.requestSync's writer gap). Costs those commits up
   * to the delay (plus the timer's 1 ms granularity) of latency. 0 = off.
   * @default 0; range 0 .. 1000 ms
   */
  commitDelayMs?: number;
  /**
   * With `journal`: a log's sync round carrying at least this many segment bytes fdatasyncs the
   * log's own segment and index instead of copying the bytes into the journal. A journal frame
   * costs its bytes twice (a second write and a second checksum) and saves fdatasyncs; a large
   * round (a QoS 0 flood's lazy round, a log written faster than its rounds) has few
   * fdatasyncs to save and many bytes to copy. Infinity = every round goes through the journal.
   * @default 262144 (256 KiB); range 0 .. Infinity bytes
   */
  journalDirectBytes?: number;
  /** The file system seam; tests inject failures through it. @default the node:fs operations */
  fileOps?: FileOps;
  /**
   * Identifies this boot of the machine. The store lists the logs written in this boot (one
   * file, `<root>/.boot-<id>`, a line per log added with its first write of the boot; see
   * boot-list.ts), and recovery is strict only when the log was last written in the current
   * boot (and trusts the clean-shutdown list only then):
   * then the page cache survived the crash, writes reached the files in order, and damage
   * before an intact chunk is ERR_COMMITLOG_CORRUPT. After a reboot (or with no record) a power
   * loss may have kept a later unsynced write and lost an earlier one, so such damage ends the
   * log there instead (RecoveryReport.cutBeforeIntact). Tests set it to simulate a reboot.
   * @default Linux's /proc/sys/kernel/random/boot_id; elsewhere an id of this process, so every
   *   restart counts as a reboot (lenient, as Kafka always is). 1 .. 128 of [A-Za-z0-9._-]
   */
  bootId?: string;
}

/** LogOptions with every field present and validated. */
export interface ResolvedLogOptions {
  readonly segmentBytes: number;
  readonly maxRecordBytes: number;
  readonly tailBytes: number;
  readonly durability: Readonly<Durability>;
  readonly retentionBytes: number;
  readonly retentionMs: number;
}

const MIB = 1024 * 1024;
/** Big enough that rolls are rare, small enough that unclean recovery reads little. */
export const SEGMENT_BYTES_DEFAULT = 64 * MIB;
/** Smallest segment: a header plus a few small records (tests use tiny segments). */
export const SEGMENT_BYTES_MIN = 64;
/** Index positions are u32; 2 GiB + one maximal record still fits. */
export const SEGMENT_BYTES_MAX = 2 ** 31;
/** MQTT payloads above a few MiB are unusual; larger ones need an explicit choice. */
export const MAX_RECORD_BYTES_DEFAULT = 4 * MIB;
/** An index entry's length field has 30 bits (two chunk flags above them, format.ts). */
export const MAX_RECORD_BYTES_MAX = 2 ** 30 - 1;
/**
 * Enough for the readers a busy topic keeps caught up (a subscriber a few ms behind 10-20 MB/s),
 * small enough that a slab's records leave the tail within milliseconds, so its buffer dies
 * young instead of being promoted and left for a mark-compact. A broker flood of 1 KiB QoS 1
 * messages cost 17% less CPU than with 4 MiB, with 4x fewer page faults
 * (notes/2026-11-24-tail-size.md). Readers further behind read from the page cache (read()).
 */
export const TAIL_BYTES_DEFAULT = 256 * 1024;
/** Upper bound of any byte budget (1 TiB): catches unit mistakes. */
export const BUDGET_BYTES_MAX = 2 ** 40;
/** One hour: an fsync interval longer than that is a mistake. */
export const INTERVAL_MS_MAX = 3_600_000;
/**
 * 'batch' with lazyMs: written but unsynced bytes that start a sync round without anyone asking.
 * They are held in memory until committed, so this bounds what a log nobody waits on holds.
 */
export const LAZY_SYNC_MAX_BYTES = 1024 * 1024;
/** Linux's default RLIMIT_NOFILE is 1024 soft; leave room for sockets with a 1024 cap. */
export const MAX_OPEN_FILES_DEFAULT = 1024;
/** The journal's file size before it rotates: bounds the bytes a recovery replays. */
export const JOURNAL_ROTATE_BYTES_DEFAULT = 64 * 1024 * 1024;
export const MAX_OPEN_FILES_MIN = 4;
export const MAX_OPEN_FILES_MAX = 1_048_576;
/** 256 MiB of tails across all logs by default: bounded memory with 10k+ logs. */
export const TAIL_BUDGET_BYTES_DEFAULT = 256 * MIB;
/** Age retention needs no finer grain than a minute. */
export const RETENTION_CHECK_MS_DEFAULT = 60_000;
export const RETENTION_CHECK_MS_MAX = 86_400_000;
/** A damaged log stays damaged until an operator acts; a few seconds bounds the recovery reads. */
export const DAMAGED_RETRY_MS_DEFAULT = 5_000;
/**
 * A batch written on the calling thread finishes sooner than one handed to the threadpool, whose
 * kernel copy would overlap with the checksums: the tail's bytes were just copied on this core
 * and are still in its cache, and the handoff costs a wake-up each way. Measured with
 * benches/experiments/sync-write-sweep.ts: 0.98–2.2× raw up to 256 KiB and 0.76–1.09× at 512 KiB
 * on this thread, against 0.50–0.77× through the threadpool; about even at 1–2 MiB. 512 KiB keeps
 * the gain and holds the event loop for ~0.2 ms per write (notes/2026-11-24-sync-writes.md).
 */
export const SYNC_WRITE_MAX_BYTES_DEFAULT = 512 * 1024;
/** StoreOptions.journalDirectBytes. */
export const JOURNAL_DIRECT_BYTES_DEFAULT = 256 * 1024;
/**
 * With four creations in flight, a burst of 200 new topics got its first PUBACK after
 * 59–103 ms instead of 184–811 ms, and its last one no later (notes/2026-11-24-new-topic-burst.md).
 */
export const CREATE_CONCURRENCY_DEFAULT = 4;

/** Defaults of every log option. */
export const LOG_DEFAULTS: ResolvedLogOptions = Object.freeze({
  segmentBytes: SEGMENT_BYTES_DEFAULT,
  maxRecordBytes: MAX_RECORD_BYTES_DEFAULT,
  tailBytes: TAIL_BYTES_DEFAULT,
  durability: Object.freeze({ mode: 'batch' as const }),
  retentionBytes: Number.POSITIVE_INFINITY,
  retentionMs: Number.POSITIVE_INFINITY,
});

function invalid(field: string, range: string, value: unknown): CommitLogError {
  return new CommitLogError('ERR_COMMITLOG_INVALID_OPTION', `${field} must be ${range}, got ${String(value)}`);
}

function integerIn(field: string, value: unknown, min: number, max: number, unit: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(field, `an integer in ${min} .. ${max} ${unit}`, value);
  }
  return value;
}

function limitOrInfinity(field: string, value: unknown, min: number, unit: string): number {
  if (value === Number.POSITIVE_INFINITY) return value;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > Number.MAX_SAFE_INTEGER) {
    throw invalid(field, `an integer ≥ ${min} ${unit} or Infinity`, value);
  }
  return value;
}

function resolveDurability(value: unknown): Readonly<Durability> {
  if (typeof value !== 'object' || value === null || !('mode' in value)) {
    throw invalid('durability', "{ mode: 'batch', lazyMs? } | { mode: 'never' } or { mode: 'interval', intervalMs }", JSON.stringify(value));
  }
  const mode = (value as { mode: unknown }).mode;
  if (mode === 'never') return Object.freeze({ mode });
  if (mode === 'batch') {
    const given = (value as { lazyMs?: unknown }).lazyMs;
    if (given === undefined) return Object.freeze({ mode });
    // an explicit 0 is kept: it says "sync every batch", which a router's lazy default respects
    return Object.freeze({ mode, lazyMs: integerIn('durability.lazyMs', given, 0, INTERVAL_MS_MAX, 'ms') });
  }
  if (mode === 'interval') {
    const ms = integerIn('durability.intervalMs', (value as { intervalMs?: unknown }).intervalMs, 1, INTERVAL_MS_MAX, 'ms');
    return Object.freeze({ mode, intervalMs: ms });
  }
  throw invalid('durability.mode', "'batch', 'interval' or 'never'", mode);
}

/** Validates `opts` over `base` (defaults), naming the first invalid field. */
export function resolveLogOptions(opts: LogOptions = {}, base: ResolvedLogOptions = LOG_DEFAULTS): ResolvedLogOptions {
  return Object.freeze({
    segmentBytes: integerIn('segmentBytes', opts.segmentBytes ?? base.segmentBytes, SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX, 'bytes'),
    maxRecordBytes: integerIn('maxRecordBytes', opts.maxRecordBytes ?? base.maxRecordBytes, 0, MAX_RECORD_BYTES_MAX, 'bytes'),
    tailBytes: integerIn('tailBytes', opts.tailBytes ?? base.tailBytes, 0, BUDGET_BYTES_MAX, 'bytes'),
    durability: resolveDurability(opts.durability ?? base.durability),
    retentionBytes: limitOrInfinity('retentionBytes', opts.retentionBytes ?? base.retentionBytes, 0, 'bytes'),
    retentionMs: limitOrInfinity('retentionMs', opts.retentionMs ?? base.retentionMs, 1, 'ms'),
  });
}

/** StoreOptions with every field present and validated. */
export interface ResolvedStoreOptions {
  readonly maxOpenFiles: number;
  readonly tailBudgetBytes: number;
  readonly retentionCheckMs: number;
  readonly syncWriteMaxBytes: number;
  readonly createConcurrency: number;
  readonly damagedRetryMs: number;
  readonly logDefaults: ResolvedLogOptions;
  readonly bootId: string;
  readonly journal: boolean;
  readonly journalRotateBytes: number;
  readonly commitDelayMs: number;
  readonly journalDirectBytes: number;
}

/** Validates store options (the file-ops seam is taken as given). */
export function resolveStoreOptions(opts: StoreOptions = {}): ResolvedStoreOptions {
  return Object.freeze({
    maxOpenFiles: integerIn('maxOpenFiles', opts.maxOpenFiles ?? MAX_OPEN_FILES_DEFAULT, MAX_OPEN_FILES_MIN, MAX_OPEN_FILES_MAX, 'files'),
    tailBudgetBytes: integerIn('tailBudgetBytes', opts.tailBudgetBytes ?? TAIL_BUDGET_BYTES_DEFAULT, 0, BUDGET_BYTES_MAX, 'bytes'),
    retentionCheckMs: integerIn('retentionCheckMs', opts.retentionCheckMs ?? RETENTION_CHECK_MS_DEFAULT, 0, RETENTION_CHECK_MS_MAX, 'ms'),
    syncWriteMaxBytes: integerIn('syncWriteMaxBytes', opts.syncWriteMaxBytes ?? SYNC_WRITE_MAX_BYTES_DEFAULT, 0, MAX_RECORD_BYTES_MAX, 'bytes'),
    createConcurrency: integerIn('createConcurrency', opts.createConcurrency ?? CREATE_CONCURRENCY_DEFAULT, 1, 1024, 'creations'),
    damagedRetryMs: integerIn('damagedRetryMs', opts.damagedRetryMs ?? DAMAGED_RETRY_MS_DEFAULT, 0, RETENTION_CHECK_MS_MAX, 'ms'),
    logDefaults: resolveLogOptions(opts.logDefaults ?? {}),
    bootId: opts.bootId === undefined ? machineBootId() : fileNamePart('bootId', opts.bootId),
    journal: journalFlag(opts.journal),
    journalRotateBytes: integerIn('journalRotateBytes', opts.journalRotateBytes ?? JOURNAL_ROTATE_BYTES_DEFAULT, 4096, BUDGET_BYTES_MAX, 'bytes'),
    commitDelayMs: integerIn('commitDelayMs', opts.commitDelayMs ?? 0, 0, 1000, 'ms'),
    journalDirectBytes: limitOrInfinity('journalDirectBytes', opts.journalDirectBytes ?? JOURNAL_DIRECT_BYTES_DEFAULT, 0, 'bytes'),
  });
}

function journalFlag(value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw invalid('journal', 'true or false', value);
  return value;
}

/** A boot id goes into a file name (`.boot-<id>`). */
const BOOT_ID_RE = /^[A-Za-z0-9._-]{1,128}$/;

function fileNamePart(field: string, value: unknown): string {
  if (typeof value !== 'string' || !BOOT_ID_RE.test(value)) throw invalid(field, '1 .. 128 characters of [A-Za-z0-9._-]', value);
  return value;
}

/**
 * This boot's id: the kernel's random boot id on Linux. Elsewhere there is no id that is both
 * unique per boot and stable within it (a boot time read from the clock moves when the clock is
 * stepped, and two boots can round to the same value), so an id of this process stands in: a
 * restart then counts as a reboot, which makes recovery lenient, never strict where it must not be.
 */
function machineBootId(): string {
  try {
    const id = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
    if (BOOT_ID_RE.test(id)) return id;
  } catch {
    // not Linux
  }
  return `process-${randomUUID()}`;
}
