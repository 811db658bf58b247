/**
 * LogStore: many logs under one root directory (one sub-directory per log), sharing one LRU of
 * open file descriptors, one budget for in-memory tails and one list of the logs written in
 * this boot of the machine (boot-list.ts; one more fd, outside the LRU).
 *
 * Invariants:
 * - a log is opened at most once per store: concurrent open(name) calls share one CommitLog;
 * - fds open ≤ maxOpenFiles (+ those pinned by operations in flight, + the boot list's), whatever
 *   the number of logs;
 * - the sum of all logs' tails stays ≤ tailBudgetBytes after every commit: the tails of the logs
 *   committed to least recently are dropped first (records in flight are never dropped);
 * - a journal an earlier run left (journal.ts) is replayed before anything else, whether or not
 *   this store journals; with StoreOptions.journal the store's close checkpoints it before the
 *   clean-shutdown list is written, so a listed log's files are synced.
 *
 * One LogStore per root at a time, across processes too: two would each write at the positions
 * their own state says are free. The store does not lock its root; the broker does, before it
 * opens the store (src/server/data-dir-lock.ts).
 */
import { BootList } from './boot-list.js';
import { takeCleanList, writeCleanList, type CleanStamp } from './clean-list.js';
import { CommitLog, type LogContext } from './commitlog.js';
import { CommitLogError, ioError } from './errors.js';
import { FileCache } from './file-cache.js';
import { nodeFileOps, type FileOps } from './file-ops.js';
import { Journal, replay, type JournalReplay } from './journal.js';
import { assertLogName, isValidLogName } from './naming.js';
import { resolveLogOptions, resolveStoreOptions, type LogOptions, type ResolvedLogOptions, type ResolvedStoreOptions, type StoreOptions } from './options.js';
import { join, resolve } from 'node:path';

/** A counting semaphore whose waiters are served in arrival order. */
class Turns {
  readonly #max: number;
  #taken = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(max: number) {
    this.#max = max;
  }

  /** Resolves once a turn is free; call the returned function to give it back (once). */
  take(): Promise<() => void> {
    if (this.#taken < this.#max) {
      this.#taken++;
      return Promise.resolve(this.#giver());
    }
    return new Promise((resolve) => this.#waiting.push(() => resolve(this.#giver())));
  }

  #giver(): () => void {
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const next = this.#waiting.shift();
      // the turn passes straight to the longest waiter
      if (next !== undefined) next();
      else this.#taken--;
    };
  }
}

/** Many logs under one root. */
export class LogStore {
  /** Absolute root directory. */
  readonly root: string;
  readonly #opts: ResolvedStoreOptions;
  readonly #ops: FileOps;
  readonly #files: FileCache;
  /** Turns to create files (StoreOptions.createConcurrency). */
  readonly #createTurns: Turns;
  /** The logs written in this boot of the machine (boot-list.ts). */
  readonly #bootList: BootList;
  /**
   * Logs that no open log holds now, with their newest segment as a clean close left it: those
   * the last shutdown listed (clean-list.ts) and not opened since, and those closed cleanly since.
   */
  readonly #clean: Map<string, CleanStamp>;
  readonly #names: Set<string>;
  readonly #open = new Map<string, Promise<CommitLog>>();
  /** Logs whose last open found them damaged, with that error and when (performance.now(), StoreOptions.damagedRetryMs). */
  readonly #damaged = new Map<string, { err: CommitLogError; at: number }>();
  /** Tail bytes per log; Map order is recency of commits (first = coldest). */
  readonly #tails = new Map<CommitLog, number>();
  #tailTotal = 0;
  #timer: NodeJS.Timeout | null = null;
  /** Flushes the logs scheduled in this event-loop turn (LogContext.schedule). */
  #due: Array<() => void> = [];
  #closed = false;
  #closing: Promise<void> | null = null;

  /** The options a log opened without its own gets (StoreOptions.logDefaults, validated). */
  get logDefaults(): ResolvedLogOptions {
    return this.#opts.logDefaults;
  }

  /** Opens (creating if needed) the store at `root`. Logs open lazily with open(name). */
  static async open(root: string, opts: StoreOptions = {}): Promise<LogStore> {
    const resolved = resolveStoreOptions(opts);
    const ops = opts.fileOps ?? nodeFileOps;
    const abs = resolve(root);
    let listing: { dirs: string[]; files: string[] };
    try {
      await ops.mkdir(abs);
      listing = await ops.readdirKinds(abs);
    } catch (err) {
      throw ioError('open store', abs, err);
    }
    // before any log opens: a log's recovery must see the bytes the journal held (replay writes
    // only into files that exist and deletes only journal files, so the listing stays valid)
    const { report, next } = await replay(ops, abs, listing.files);
    const bootList = await BootList.open(ops, abs, resolved.bootId, listing.files);
    const clean = await takeCleanList(ops, abs, listing.files);
    return new LogStore(abs, resolved, ops, listing.dirs.filter(isValidLogName), bootList, clean, report, next);
  }

  /** What this open replayed from a journal an earlier run left (all zero: there was none). */
  readonly journalReplay: JournalReplay;
  readonly #journal: Journal | null;
  /** The FileOps logs use: with a journal, their failed fdatasyncs are reported to it. */
  readonly #logOps: FileOps;

  private constructor(
    root: string,
    opts: ResolvedStoreOptions,
    ops: FileOps,
    names: string[],
    bootList: BootList,
    clean: Map<string, CleanStamp>,
    replayed: JournalReplay,
    nextJournal: number,
  ) {
    this.root = root;
    this.#opts = opts;
    this.#ops = ops;
    this.#bootList = bootList;
    this.#clean = clean;
    this.#files = new FileCache(ops, opts.maxOpenFiles);
    this.#createTurns = new Turns(opts.createConcurrency);
    this.journalReplay = replayed;
    const journal = opts.journal ? new Journal(ops, this.#files, root, nextJournal, opts.journalRotateBytes, opts.syncWriteMaxBytes, opts.commitDelayMs) : null;
    this.#journal = journal;
    // Any failed fdatasync of a log file (a repair, a recovery, an 'interval' flush) may drop
    // pages whose only durable copy is in a journal file: the journal keeps its files then.
    this.#logOps =
      journal === null
        ? ops
        : {
            ...ops,
            fdatasync: (fd) =>
              ops.fdatasync(fd).catch((err: unknown) => {
                journal.fileSyncFailed();
                throw err;
              }),
          };
    this.#names = new Set(names);
    for (const n of clean.keys()) if (!this.#names.has(n)) clean.delete(n); // a log deleted by hand since
    if (opts.retentionCheckMs > 0) {
      this.#timer = setInterval(() => this.#retainAll(), opts.retentionCheckMs);
      this.#timer.unref();
    }
  }

  /** Names of the logs that exist on disk (found at open or created since), sorted. */
  names(): string[] {
    return [...this.#names].sort();
  }

  /** File descriptors the store holds open right now. */
  get openFiles(): number {
    return this.#files.openCount;
  }

  /** Bytes of in-memory tails across all logs. */
  get tailBytes(): number {
    return this.#tailTotal;
  }

  /**
   * Opens the log `name`, creating it if needed (its files appear with its first record) and
   * recovering it after an unclean stop. Opening an open log returns the same CommitLog (the
   * options of the first open stay in force). For damagedRetryMs after an open found the log
   * damaged, the same error comes back at once, without another recovery.
   * @throws ERR_COMMITLOG_INVALID_NAME, ERR_COMMITLOG_INVALID_OPTION, ERR_COMMITLOG_CORRUPT,
   *   ERR_COMMITLOG_VERSION, ERR_COMMITLOG_IO, ERR_COMMITLOG_CLOSED
   */
  open(name: string, opts: LogOptions = {}): Promise<CommitLog> {
    if (this.#closed) return Promise.reject(new CommitLogError('ERR_COMMITLOG_CLOSED', `store ${this.root} is closed`));
    try {
      assertLogName(name);
      const existing = this.#open.get(name);
      if (existing !== undefined) return existing;
      const damaged = this.#damaged.get(name);
      if (damaged !== undefined) {
        if (performance.now() - damaged.at < this.#opts.damagedRetryMs) return Promise.reject(damaged.err);
        this.#damaged.delete(name);
      }
      const options = resolveLogOptions(opts, this.#opts.logDefaults);
      const ctx: LogContext = {
        name,
        dir: join(this.root, name),
        options,
        ops: this.#logOps,
        files: this.#files,
        syncWriteMaxBytes: this.#opts.syncWriteMaxBytes,
        writtenThisBoot: this.#bootList.has(name),
        cleanStamp: this.#takeClean(name),
        exists: this.#names.has(name),
        markWritten: () => this.#bootList.add(name),
        journal: this.#journal,
        journalDirectBytes: this.#opts.journalDirectBytes,
        tailChanged: (log, bytes) => this.#tailChanged(log, bytes),
        created: () => this.#names.add(name),
        createTurn: () => this.#createTurns.take(),
        closed: (log, stamp) => this.#logClosed(log, stamp),
        schedule: (flush) => {
          this.#due.push(flush);
          if (this.#due.length === 1) setImmediate(this.#runDue);
        },
      };
      const opening = CommitLog.open(ctx);
      this.#open.set(name, opening);
      opening.catch((err: unknown) => {
        this.#open.delete(name);
        if (err instanceof CommitLogError && (err.code === 'ERR_COMMITLOG_CORRUPT' || err.code === 'ERR_COMMITLOG_VERSION') && this.#opts.damagedRetryMs > 0) {
          this.#damaged.set(name, { err, at: performance.now() });
        }
      });
      return opening;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Closes every log (each flushes and syncs), writes the clean-shutdown list of the logs that
   * closed cleanly (clean-list.ts), and closes every file descriptor.
   */
  close(): Promise<void> {
    // a second call waits for the first: the clean-shutdown list is written at its end
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    // No step below rejects: a log that cannot flush closes unclean (its next open checks it in
    // full), a failed checkpoint keeps its journal files for replay. So every descriptor is
    // closed once this settles, which the broker relies on before it gives up the directory.
    const logs = await Promise.allSettled([...this.#open.values()]);
    await Promise.all(logs.map((r) => (r.status === 'fulfilled' ? r.value.close() : undefined)));
    // every file the journal's frames wrote is synced, and the journal deleted, before the
    // clean-shutdown list vouches for those files
    await this.#journal?.close();
    await this.#bootList.close();
    // without the list the next open checks every log in full: slower, nothing lost
    await writeCleanList(this.#ops, this.root, this.#clean).catch(() => undefined);
    await this.#files.closeAll();
  }

  readonly #runDue = (): void => {
    const due = this.#due;
    this.#due = [];
    for (const flush of due) {
      try {
        flush();
      } catch (err) {
        // #onTick does not throw (its work is async); should a bug make one throw, the other
        // logs still flush in this turn and the error is rethrown after it (uncaught, as it
        // would be from a setImmediate of its own)
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  };

  #tailChanged(log: CommitLog, bytes: number): void {
    const before = this.#tails.get(log) ?? 0;
    this.#tails.delete(log);
    this.#tails.set(log, bytes);
    this.#tailTotal += bytes - before;
    const budget = this.#opts.tailBudgetBytes;
    if (this.#tailTotal <= budget) return;
    for (const [other, held] of this.#tails) {
      if (this.#tailTotal <= budget) break;
      if (other === log) continue;
      const left = other.dropTail();
      this.#tailTotal += left - held;
      this.#tails.set(other, left);
    }
    if (this.#tailTotal > budget) {
      const left = log.dropTail();
      this.#tailTotal += left - bytes;
      this.#tails.set(log, left);
    }
  }

  #logClosed(log: CommitLog, stamp: CleanStamp | null): void {
    this.#tailTotal -= this.#tails.get(log) ?? 0;
    this.#tails.delete(log);
    this.#open.delete(log.name);
    if (stamp !== null) this.#clean.set(log.name, stamp);
  }

  #takeClean(name: string): CleanStamp | null {
    const stamp = this.#clean.get(name) ?? null;
    this.#clean.delete(name);
    return stamp;
  }

  #retainAll(): void {
    for (const opening of this.#open.values()) {
      void opening.then((log) => log.enforceRetention()).catch(() => undefined);
    }
  }
}
