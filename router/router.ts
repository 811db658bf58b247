/**
 * The router: the single owner of topics, subscriptions, sessions and retained messages.
 * Connections call it synchronously (one Node thread, no locks); it appends every PUBLISH to its
 * topic's commit log and pulls records back out for subscribers.
 *
 * Data path:
 *
 *   publish ─► encodeRecordInto(log.reserve) ──(batch commits)──► 'commit' event
 *                                                                  ├─► AckQueue: PUBACK/PUBREC
 *                                                                  └─► wake caught-up cursors
 *   scheduler (setImmediate) ─► cursor: log.readTail / log.read ─► outlet.publish (payload view)
 *
 * Fanout is pull: each (session, topic) pair is a cursor holding the next offset. Matching
 * filters against names happens when a topic is created or a subscription arrives, never per
 * publish. The ready list is a FIFO of cursors served a bounded batch at a time, so no topic
 * and no connection starves the others, however many new topics appear.
 *
 * Invariants:
 * - a QoS 1 record is delivered once written to the OS (log 'flushed': it survives a kill -9),
 *   without waiting for its fdatasync; a QoS 0 record the same way, or (lazySyncMs) already
 *   before it is written, when nothing in its batch asked for a sync; a QoS 2 record only once
 *   committed (the durability policy), so exactly-once survives a power loss. With
 *   `deliverUnsynced: false` every record waits for its commit. A failed sync takes flushed
 *   records back: cursors rewind to the failed offset, and inflight entries for the lost
 *   records are dropped;
 * - a publisher is acknowledged only after every append its PUBLISH caused (topic log, and the
 *   retained log for RETAIN) has committed;
 * - metadata lives in three logs of its own: `topics` (record N = name of TopicId N),
 *   `retained` (latest retained record per topic), `sessions` (persistent session changes).
 */
import type { CommitLog, Durability, LogOptions, LogStore, Offset, ReadBatch } from '../commitlog/index.js';
import { AckQueue, type Completion } from './acks.js';
import { RouterError } from './errors.js';
import type { QoS, TopicId } from './ids.js';
import { encodeRecordInto, isRecord, recordBytes, recordExpiry, recordOrigin, recordPayload, recordProperties, recordQos, recordRetain } from './record.js';
import { type Cursor, type Inflight, type InflightRow, newTopicState, type Outlet, Session, type SharedGroup, type SubscriptionOptions, type TopicState } from './session.js';
import { SubscriptionTrie } from './subscriptions.js';
import { topicMatches } from './topic-filter.js';
import { TopicTable } from './topics.js';

/** The subset of a pino logger the router uses (it must not import src/). */
export interface RouterLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RouterOptions {
  /**
   * Outbound messages awaiting PUBACK/PUBCOMP per session.
   * @default 256
   */
  maxInflight?: number;
  /** Options for every topic's log (durability, segment size, retention). */
  topicLog?: LogOptions;
  /**
   * Most records one cursor delivers before the next cursor gets a turn.
   * @default 64
   */
  batchRecords?: number;
  /**
   * Most bytes one cursor delivers before the next cursor gets a turn.
   * @default 262144
   */
  batchBytes?: number;
  /**
   * Segment size of the meta logs (`sessions`, `retained`, `topics`); compaction frees whole
   * segments, so smaller segments free space sooner.
   * @default 4194304 (4 MiB)
   */
  metaSegmentBytes?: number;
  /**
   * Deliver QoS 0 and 1 records to subscribers as soon as they are written to the OS, before
   * their fdatasync (publishers are still acknowledged only after it). A power loss can then
   * lose a record a subscriber saw; its publisher, never acknowledged, sends it again, so QoS 1
   * stays at-least-once. QoS 2 records always wait for the sync. false: every record waits.
   * @default true
   */
  deliverUnsynced?: boolean;
  /**
   * With deliverUnsynced and 'batch' topic logs (that set no lazyMs of their own): a record
   * nobody waits on (QoS 0 without RETAIN) gets no write and no fdatasync of its own; it is
   * delivered from memory at once, and written and synced with the next QoS 1/2 or RETAIN
   * record of its topic, once 1 MiB waits, or after this many ms. A kill -9 or a power loss
   * within that window can take it back, which QoS 0 (at most once) allows. 0: every batch is
   * written and synced.
   * @default 1000
   */
  lazySyncMs?: number;
  logger?: RouterLogger;
}

/**
 * A topic log's options with lazy syncing: a 'batch' policy that sets no lazyMs gets `lazyMs`
 * (see RouterOptions.lazySyncMs). `inherited` is what the log gets when `opts` names no policy
 * (the store's logDefaults); other policies, an explicit lazyMs, and 0 are left as they are.
 */
function lazyTopicLog(opts: LogOptions, inherited: Durability, lazyMs: number): LogOptions {
  const d = opts.durability ?? inherited;
  if (lazyMs === 0 || d.mode !== 'batch' || d.lazyMs !== undefined) return opts;
  return { ...opts, durability: { mode: 'batch', lazyMs } };
}

/** At most one 'topic log unavailable' line per topic per this many ms. */
const UNAVAILABLE_LOG_MS = 5_000;

const DEFAULTS = Object.freeze({
  maxInflight: 256, // above mosquitto's 20: on loopback a deep window is what keeps QoS1 throughput up
  batchRecords: 64, // one readTail fills a socket write without hogging the loop
  batchBytes: 256 * 1024, // keeps one cursor's turn under ~0.3 ms at 1 GB/s
  lazySyncMs: 1000, // a QoS 0 batch's own fdatasync cost 25% of the broker's CPU per message
});

const TOPICS_LOG = 'topics';
/** Meta logs roll small segments so compaction can delete superseded history in pieces. */
const META_SEGMENT_BYTES = 4 * 1024 * 1024;
/** A meta log is compacted once it holds this many records beyond a multiple of its live state. */
const COMPACT_MIN_RECORDS = 20_000;
const COMPACT_FACTOR = 4;
/** `$SYS` topic logs: small segments, and at most this much history each. */
const SYS_SEGMENT_BYTES = 64 * 1024;
const SYS_RETENTION_BYTES = 256 * 1024;
/** Retry delays for topic registrations after the `topics` log failed (disk full, I/O error). */
const REGISTRATION_RETRY_MIN_MS = 200;
const REGISTRATION_RETRY_MAX_MS = 5000;
const RETAINED_LOG = 'retained';
const SESSIONS_LOG = 'sessions';
/** A cursor behind the in-memory tail reads ahead this much per positional read. */
const READ_AHEAD_BYTES = 64 * 1024;
const READ_AHEAD_RECORDS = 4096;
/** Cursors served per scheduler pass before yielding to I/O. */
const SCHEDULER_SLICE = 512;
/** Records read per call when replaying a meta log at startup. */
const REPLAY_BATCH = 4096;

const SILENT: RouterLogger = { info() {}, warn() {}, error() {} };

/** Someone waiting for a TopicId's name to commit in the `topics` log. */
interface RegistrationWaiter {
  id: TopicId;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Counters for $SYS and benchmarks. Plain numbers, bumped on the hot path. */
export interface RouterStats {
  messagesIn: number;
  bytesIn: number;
  messagesOut: number;
  bytesOut: number;
  /** Payload bytes copied on ingress (one copy per PUBLISH, never per subscriber). */
  bytesCopiedIn: number;
  topics: number;
  subscriptions: number;
  sessions: number;
  retained: number;
  appendFailures: number;
}

interface SessionRecord {
  o: 'open' | 'sub' | 'unsub' | 'cur' | 'end' | 'gone' | 'exp' | 'grp';
  /** client id; for 'grp', the shared group's key */
  c: string;
  n?: number;
  /** Session Expiry Interval (seconds, -1 = never) */
  e?: number;
  /** when the connection closed ('gone'), ms since the epoch */
  at?: number;
  f?: string;
  q?: QoS;
  /** subscription options: [noLocal, retainAsPublished, retainHandling, id] */
  so?: [number, number, number, number];
  /** per topic: [topicId, next offset] ('grp': [topicId, lowest unacknowledged offset]) */
  t?: Array<[number, number]>;
  /** inbound QoS 2 packet ids stored and awaiting PUBREL */
  r?: number[];
  /** outbound inflight messages, all of them (a snapshot): [packetId, topicId, offset, qos, stage (0 publish, 1 pubrel), storedAt] */
  i?: InflightRow[];
  /** inflight rows added or changed since the previous record */
  a?: InflightRow[];
  /** inflight packet ids gone since the previous record */
  d?: number[];
}

export class Router {
  readonly stats: RouterStats = {
    messagesIn: 0,
    bytesIn: 0,
    messagesOut: 0,
    bytesOut: 0,
    bytesCopiedIn: 0,
    topics: 0,
    subscriptions: 0,
    sessions: 0,
    retained: 0,
    appendFailures: 0,
  };

  readonly #store: LogStore;
  readonly #opts: { maxInflight: number; batchRecords: number; batchBytes: number; topicLog: LogOptions };
  /** RouterOptions.deliverUnsynced: cursors read up to `flushed` instead of `committed`. */
  readonly #early: boolean;
  readonly #log: RouterLogger;
  readonly #table = new TopicTable();
  readonly #states: Array<TopicState | undefined> = [];
  readonly #subs = new SubscriptionTrie<Session>();
  /** Shared subscriptions: groups by key, and their filters for matching new topics. */
  readonly #groups = new Map<string, SharedGroup>();
  readonly #sharedSubs = new SubscriptionTrie<SharedGroup>();
  readonly #sessions = new Map<string, Session>();
  #sessionNumbers = 0;

  readonly #topicsLog: CommitLog;
  /**
   * Topic registration: names interned but not yet appended to `topics`, in id order (ids are
   * offsets, so they must be appended exactly in order), and who waits for an id to commit.
   */
  #regQueue: TopicId[] = [];
  #regWaiters: RegistrationWaiter[] = [];
  #regRetry: NodeJS.Timeout | null = null;
  #regBackoffMs = REGISTRATION_RETRY_MIN_MS;
  readonly #retainedLog: CommitLog;
  readonly #retainedAcks = new AckQueue();
  /** Acknowledgements that wait for a `sessions` record (QoS 2 packet-id state). */
  readonly #sessionsAcks = new AckQueue();
  readonly #sessionsLog: CommitLog;

  #ready: Cursor[] = [];
  #readyHead = 0;
  #scheduled = false;
  readonly #dirtySessions = new Set<Session>();
  /** Shared groups whose positions moved since they were last persisted. */
  readonly #dirtyGroups = new Set<SharedGroup>();
  #persistScheduled = false;
  #closed = false;
  /** Set when `topics` no longer gives dense ids: new topics are refused until a restart. */
  #metaCorrupt: Error | null = null;

  private constructor(store: LogStore, opts: RouterOptions, topics: CommitLog, retained: CommitLog, sessions: CommitLog) {
    this.#store = store;
    this.#early = opts.deliverUnsynced ?? true;
    this.#opts = {
      maxInflight: opts.maxInflight ?? DEFAULTS.maxInflight,
      batchRecords: opts.batchRecords ?? DEFAULTS.batchRecords,
      batchBytes: opts.batchBytes ?? DEFAULTS.batchBytes,
      // lazy only when records are delivered unsynced: otherwise every reader waits for the sync
      topicLog: lazyTopicLog(opts.topicLog ?? {}, store.logDefaults.durability, this.#early ? (opts.lazySyncMs ?? DEFAULTS.lazySyncMs) : 0),
    };
    this.#log = opts.logger ?? SILENT;
    this.#topicsLog = topics;
    this.#retainedLog = retained;
    this.#sessionsLog = sessions;
    this.#reportRecovery(TOPICS_LOG, topics);
    this.#reportRecovery(RETAINED_LOG, retained);
    this.#reportRecovery(SESSIONS_LOG, sessions);
    topics.on('commit', (c: Offset) => this.#onTopicsCommit(c));
    topics.on('failed', (err: Error, from: Offset, to: Offset) => this.#onTopicsFailed(err, from, to));
    retained.on('commit', (c: Offset) => this.#retainedAcks.commit(c));
    retained.on('failed', (err: Error, from: Offset, to: Offset) => this.#onMetaFailed('retained', err, from, to, this.#retainedAcks));
    sessions.on('commit', (c: Offset) => this.#sessionsAcks.commit(c));
    sessions.on('failed', (err: Error, from: Offset, to: Offset) => {
      this.#log.error({ err }, 'session state could not be persisted');
      this.#sessionsAcks.fail(from, to, err);
    });
  }

  /** Opens the router over a log store, replaying topics, retained messages and sessions. */
  static async open(store: LogStore, opts: RouterOptions = {}): Promise<Router> {
    const lazy = opts.lazySyncMs;
    if (lazy !== undefined && (!Number.isInteger(lazy) || lazy < 0 || lazy > 3_600_000)) {
      throw new RouterError('ERR_ROUTER_INVALID_OPTION', `lazySyncMs must be an integer in 0..3600000, got ${lazy}`);
    }
    for (const key of ['maxInflight', 'batchRecords', 'batchBytes'] as const) {
      const v = opts[key];
      if (v !== undefined && (!Number.isInteger(v) || v < 1 || (key === 'maxInflight' && v > 65535))) {
        throw new RouterError('ERR_ROUTER_INVALID_OPTION', `${key} must be an integer in 1..${key === 'maxInflight' ? 65535 : 'any'}, got ${v}`);
      }
    }
    const meta: LogOptions = { durability: { mode: 'batch' }, segmentBytes: opts.metaSegmentBytes ?? META_SEGMENT_BYTES };
    const [topics, retained, sessions] = await Promise.all([
      store.open(TOPICS_LOG, meta),
      store.open(RETAINED_LOG, meta),
      store.open(SESSIONS_LOG, meta),
    ]);
    const router = new Router(store, opts, topics, retained, sessions);
    await router.#replay();
    return router;
  }

  // ── topics ───────────────────────────────────────────────────────────────────────────────

  /** Interns a (valid) topic name. A new topic is registered durably before its log takes data. */
  intern(name: string): TopicId {
    const { id, created } = this.#table.intern(name);
    if (created) this.#createTopic(id, name);
    return id;
  }

  #state(id: TopicId): TopicState {
    let s = this.#states[id];
    if (s === undefined) {
      s = newTopicState(id, this.#table.nameOf(id));
      this.#states[id] = s;
    }
    return s;
  }

  #createTopic(id: TopicId, name: string): void {
    this.stats.topics = this.#table.size;
    const state = this.#state(id);
    // The name must be durable before the topic's log holds data, or a crash could leave a log
    // whose id a different name would later reuse.
    this.#regQueue.push(id);
    this.#drainRegistrations();
    this.#ensureLog(state);
    // sessions whose filters match the new topic start reading it from its first record
    this.#subs.match(name, (session) => this.#ensureCursor(session, state, 0));
    this.#sharedSubs.match(name, (group) => this.#ensureGroupCursor(group, state, 0));
  }

  /**
   * Opens a topic's log if it is not open yet. The open runs beside the name's registration, but
   * the log is handed out (and written) only once the name has committed: a log's files never
   * exist for a TopicId the registry could give to another name after a crash. Opening a log
   * writes nothing (a new log's files appear with its first write).
   */
  #ensureLog(state: TopicState): void {
    if (state.log !== null || state.opening !== null) return;
    const registered = this.#whenRegistered(state.id);
    const open = this.#store.open(`t-${state.id}`, this.#logOptionsFor(state.name));
    // the store keeps a log it opened: a failed registration leaves it for the retry's open
    open.catch(() => undefined);
    state.opening = registered.then(() => open);
    this.#watchOpening(state);
  }

  /**
   * Log options for a topic. `$SYS/...` topics carry the broker's own statistics, whose history
   * nobody replays: their logs keep only the last segments (the retained value lives in the
   * `retained` log anyway), so they cannot fill the disk over months of uptime.
   */
  #logOptionsFor(name: string): LogOptions {
    if (!name.startsWith('$SYS/')) return this.#opts.topicLog;
    const retentionBytes = Math.min(this.#opts.topicLog.retentionBytes ?? SYS_RETENTION_BYTES, SYS_RETENTION_BYTES);
    return { ...this.#opts.topicLog, segmentBytes: SYS_SEGMENT_BYTES, retentionBytes };
  }

  /** Resolves once TopicId `id`'s name has committed; rejects if its append fails (it is retried). */
  #whenRegistered(id: TopicId): Promise<void> {
    if (id < this.#topicsLog.committed) return Promise.resolve();
    if (this.#metaCorrupt !== null) return Promise.reject(this.#metaCorrupt);
    return new Promise((resolve, reject) => this.#regWaiters.push({ id, resolve, reject }));
  }

  /** Appends queued names in id order; stops while a retry is pending. */
  #drainRegistrations(): void {
    if (this.#regRetry !== null || this.#metaCorrupt !== null) return;
    while (this.#regQueue.length > 0) {
      const id = this.#regQueue[0] as TopicId;
      if (this.#topicsLog.end !== id) {
        this.#metaCorrupt = new RouterError('ERR_ROUTER_META_CORRUPT', `topics log end ${this.#topicsLog.end} does not match the next TopicId ${id}`);
        this.#log.error({ err: this.#metaCorrupt }, 'topic registry out of step; new topics refused until restart');
        for (const w of this.#regWaiters.splice(0)) w.reject(this.#metaCorrupt);
        return;
      }
      try {
        this.#topicsLog.append(Buffer.from(this.#table.nameOf(id), 'utf8'));
      } catch (err) {
        this.#retryRegistrations(err as Error);
        return;
      }
      this.#regQueue.shift();
    }
  }

  #onTopicsCommit(committed: Offset): void {
    this.#regBackoffMs = REGISTRATION_RETRY_MIN_MS;
    if (this.#regWaiters.length === 0) return;
    const still: RegistrationWaiter[] = [];
    for (const w of this.#regWaiters) {
      if (w.id < committed) w.resolve();
      else still.push(w);
    }
    this.#regWaiters = still;
  }

  /**
   * The names [from, to) were not stored (the log is back at `from`). They go back to the front
   * of the queue and are appended again after a delay; whoever waits on them fails now, so a
   * publisher hears about it instead of waiting out a full disk.
   */
  #onTopicsFailed(err: Error, from: Offset, to: Offset): void {
    this.#log.error({ err, from, to }, 'topic registration failed; retrying');
    const ids: TopicId[] = [];
    for (let id = from; id < to; id++) ids.push(id as TopicId);
    this.#regQueue = [...ids, ...this.#regQueue.filter((id) => id >= to)];
    const error = new RouterError('ERR_ROUTER_APPEND_FAILED', 'the topic registry could not be written', { cause: err });
    const still: RegistrationWaiter[] = [];
    for (const w of this.#regWaiters) {
      if (w.id >= from) w.reject(error);
      else still.push(w);
    }
    this.#regWaiters = still;
    this.#retryRegistrations(err);
  }

  #retryRegistrations(err: Error): void {
    if (this.#regRetry !== null || this.#closed) return;
    const delay = this.#regBackoffMs;
    this.#regBackoffMs = Math.min(delay * 2, REGISTRATION_RETRY_MAX_MS);
    this.#log.warn({ err, delayMs: delay, pending: this.#regQueue.length }, 'topic registrations retried later');
    this.#regRetry = setTimeout(() => {
      this.#regRetry = null;
      this.#drainRegistrations();
    }, delay);
    this.#regRetry.unref();
  }

  /**
   * Says what opening `log` dropped after an unclean stop. A torn tail of unsynced records is
   * routine after a kill -9 or a power loss (a warning); a torn sealed segment is an error line,
   * because bit rot there looks the same and would have taken committed records with it.
   */
  #reportRecovery(name: string, log: CommitLog, topic?: string): void {
    const r = log.recovery;
    if (r.truncatedRecords === 0 && r.truncatedBytes === 0 && r.removedSegments === 0) return;
    const fields = { log: name, topic, truncatedRecords: r.truncatedRecords, truncatedBytes: r.truncatedBytes, removedSegments: r.removedSegments, end: log.end };
    if (r.cutBeforeIntact) {
      this.#log.error(fields, 'log recovery after a reboot ended the log at damaged records that intact ones followed (unsynced writes a power loss reordered, or damage on disk)');
    } else if (r.tornSealed) this.#log.error(fields, 'log recovery cut a sealed segment and dropped every later one (power loss, or damage on disk)');
    else this.#log.warn(fields, 'log recovery dropped a torn tail');
  }

  #watchOpening(state: TopicState): void {
    const opening = state.opening as Promise<CommitLog>;
    opening.then(
      (log) => {
        state.log = log;
        state.opening = null;
        this.#reportRecovery(`t-${state.id}`, log, state.name);
        log.on('commit', (committed: Offset) => this.#onCommit(state, committed));
        if (this.#early) log.on('flushed', (flushed: Offset) => this.#wakeCursors(state, flushed));
        log.on('failed', (err: Error, from: Offset, to: Offset) => this.#onFailed(state, err, from, to));
        let lost = false;
        for (const c of state.cursors) {
          if (c.next > log.end) {
            lost = true;
            // The log lost an unsynced tail (power loss after an early delivery, or fsync
            // never/interval) that this restored cursor had read: resume at the end now, before
            // a new record takes one of those offsets and would be skipped.
            this.#log.warn({ clientId: c.session?.clientId, topic: state.name, cursor: c.next, end: log.end }, 'cursor beyond the log end after a crash; resuming at the end');
          }
          if (c.next < 0 || c.next > log.end) {
            c.next = log.end;
            if (c.session !== null && c.session.persistent) this.#markDirty(c.session, state);
            if (c.group !== null) this.#markGroupDirty(c.group);
          }
          this.#enqueue(c);
        }
        // inflight entries lie below their cursor: only a clamped cursor means some are gone
        if (lost) this.#forgetInflight(state, log.end);
        const queued = state.queued.splice(0);
        if (this.#closed) {
          // the broker shut down while the log was opening: these were never acknowledged
          if (queued.length > 0) this.#log.warn({ topic: state.name, dropped: queued.length }, 'publishes dropped at shutdown before their log opened');
          return;
        }
        for (const run of queued) run();
      },
      (err: unknown) => {
        state.opening = null;
        const error = new RouterError('ERR_ROUTER_TOPIC_LOG', `cannot open the log of topic '${state.name}'`, { cause: err });
        // a damaged log fails every open for a while (StoreOptions.damagedRetryMs) and every
        // publish tries one: one line per topic per UNAVAILABLE_LOG_MS says it, with the failed
        // opens and publishes since the last line; a different error is said at once
        const queued = state.queued.splice(0);
        const now = performance.now();
        const code = (err as { code?: unknown }).code;
        const reason = typeof code === 'string' ? code : String(err);
        state.unavailableOpens++;
        state.unavailablePublishes += queued.length;
        if (now - state.unavailableLoggedAt >= UNAVAILABLE_LOG_MS || reason !== state.unavailableReason) {
          this.#log.error(
            { err: error, topic: state.name, failedOpens: state.unavailableOpens, failedPublishes: state.unavailablePublishes },
            'topic log unavailable',
          );
          state.unavailableLoggedAt = now;
          state.unavailableReason = reason;
          state.unavailableOpens = 0;
          state.unavailablePublishes = 0;
        }
        this.#failQueued = error;
        for (const run of queued) run();
        this.#failQueued = null;
      },
    );
  }

  /** Set while queued publishes of a topic whose log failed to open are being failed. */
  #failQueued: Error | null = null;

  // ── publish ──────────────────────────────────────────────────────────────────────────────

  /**
   * Stores one PUBLISH. For QoS 1/2 (`packetId` > 0) the outlet's `stored()` is called once the
   * record (and, for RETAIN, the retained entry) meets the durability policy.
   */
  publish(
    origin: Session | null,
    topicId: TopicId,
    qos: QoS,
    retain: boolean,
    payload: Buffer,
    properties: Buffer | null,
    expiry: number,
    packetId: number,
    outlet: Outlet | null,
  ): void {
    if (this.#closed) throw new RouterError('ERR_ROUTER_CLOSED', 'router is closed');
    const state = this.#state(topicId);
    const log = state.log;
    if (log === null) {
      if (this.#failQueued === null) {
        state.queued.push(() => this.publish(origin, topicId, qos, retain, payload, properties, expiry, packetId, outlet));
        this.#ensureLog(state);
        return;
      }
      // ends like any failed store (#completion): a QoS 2 packet id is freed, and the answer goes
      // to the session's connection now, which after a takeover is not the one the PUBLISH came
      // in on (the client resent it there)
      if (packetId > 0 && outlet !== null && origin !== null) this.#completion(origin, packetId, qos as 1 | 2).done(this.#failQueued);
      return;
    }
    this.stats.messagesIn++;
    this.stats.bytesIn += payload.length;
    this.stats.bytesCopiedIn += payload.length;
    let waiter: Completion | null = null;
    // the commit delay's hint (CommitLog.requestSync): a publisher with nothing else being
    // stored that sends right after its last acknowledgement is waiting for this one
    let gapMs = -1;
    if (packetId > 0 && outlet !== null && origin !== null) {
      if (origin.storesPending === 0) gapMs = performance.now() - origin.lastStoredAt;
      waiter = this.#completion(origin, packetId, qos as 1 | 2);
    }
    let record: Buffer;
    try {
      // encoded straight into the log's tail: the one copy of the payload on the way in
      record = log.reserve(recordBytes(properties, payload));
    } catch (err) {
      this.stats.appendFailures++;
      if (waiter !== null) waiter.done(err as Error);
      return;
    }
    encodeRecordInto(record, qos, retain, origin === null ? 0 : origin.number, expiry, properties, payload);
    // someone waits on this record's commit (an acknowledgement, a QoS 2 delivery, the retained
    // value): its batch is synced without waiting out lazySyncMs
    if (qos > 0 || retain) log.requestSync(gapMs);
    const offset = log.end - 1;
    if (waiter !== null) state.acks.push(offset, waiter);
    // the retained value outlives the tail: a copy of its own, not a view pinning a slab
    if (retain) this.#setRetained(state, payload.length === 0 ? null : Buffer.from(record), offset, waiter);
  }

  #completion(session: Session, packetId: number, qos: 1 | 2): Completion {
    session.storesPending++;
    return {
      remaining: 1,
      failed: false,
      done: (err) => {
        if (--session.storesPending === 0) session.lastStoredAt = performance.now();
        if (err !== null) {
          if (qos === 2) session.inboundQos2.delete(packetId);
          const current = session.outlet;
          if (current !== null) current.storeFailed(packetId, qos, err);
          return;
        }
        if (qos === 2) {
          // released meanwhile (a PUBREL before PUBREC): the exchange is over, keep no state
          if (session.inboundQos2.get(packetId) !== 'storing') return;
          session.inboundQos2.set(packetId, 'stored');
          // a persistent session's PUBREC waits until the stored packet id is durable too: a
          // crash in between would otherwise store the client's resend a second time
          if (session.persistent && this.#afterQos2Record(session, () => session.outlet?.stored(packetId, qos))) return;
        }
        // the acknowledgement goes to whichever connection the session has now: a client that
        // reconnected and resent the PUBLISH is waiting for it there
        const current = session.outlet;
        if (current !== null) current.stored(packetId, qos);
      },
    };
  }

  /**
   * Inbound QoS 2: true when this packet id is new and the PUBLISH must be stored; false when it
   * is a resend of one already stored or being stored (answer PUBREC, store nothing) [MQTT-4.3.3-2].
   */
  beginQos2(session: Session, packetId: number): 'new' | 'storing' | 'stored' {
    const state = session.inboundQos2.get(packetId);
    if (state !== undefined) return state;
    session.inboundQos2.set(packetId, 'storing');
    return 'new';
  }

  /** Inbound QoS 2 state of a packet id, without taking it. */
  qos2State(session: Session, packetId: number): 'new' | 'storing' | 'stored' {
    return session.inboundQos2.get(packetId) ?? 'new';
  }

  /**
   * PUBREL from the client: forgets the packet id and calls `done` (send PUBCOMP) — for a
   * persistent session once the release is durable, since after a crash in between a new
   * PUBLISH reusing the id would be taken for a resend and dropped. Returns false, without
   * calling `done`, for an id it did not know.
   */
  release(session: Session, packetId: number, done: () => void): boolean {
    if (!session.inboundQos2.delete(packetId)) return false;
    if (!(session.persistent && this.#afterQos2Record(session, done))) done();
    return true;
  }

  /**
   * Appends the session's inbound QoS 2 packet ids now and calls `then` once that record
   * commits. Returns false (and calls nothing) if the record could not be appended.
   */
  #afterQos2Record(session: Session, then: () => void): boolean {
    const ids = [...session.inboundQos2].filter(([, st]) => st === 'stored').map(([pid]) => pid);
    let offset: Offset;
    try {
      offset = this.#sessionsLog.append(Buffer.from(JSON.stringify({ o: 'cur', c: session.clientId, r: ids } satisfies SessionRecord), 'utf8'));
    } catch (err) {
      this.#log.error({ err, clientId: session.clientId }, 'QoS 2 state not persisted');
      return false;
    }
    this.#sessionsAcks.push(offset, { remaining: 1, failed: false, done: (err) => (err === null ? then() : undefined) });
    return true;
  }

  /**
   * A RETAIN publish (`record` null clears). The new value becomes visible to new subscribers
   * only once both its topic record (at `topicOffset`) and its `retained` entry have committed,
   * like any other message [MQTT-3.3.1-5]. If either append fails, the value never shows, and
   * the last visible value is appended again so the `retained` log cannot hold a value whose
   * publisher was told it was not stored.
   */
  #setRetained(state: TopicState, record: Buffer | null, topicOffset: Offset, waiter: Completion | null): void {
    const seq = ++state.retainedSeq;
    const storedAt = Date.now();
    let offset: Offset;
    try {
      offset = this.#retainedLog.append(retainedEntry(state.id, record), storedAt);
      if (++this.#retainedSinceSnapshot > COMPACT_MIN_RECORDS + COMPACT_FACTOR * this.stats.retained) this.#compactSoon();
    } catch (err) {
      this.#log.error({ err, topic: state.name }, 'retained message not stored');
      if (waiter !== null && !waiter.failed) {
        waiter.failed = true;
        waiter.done(err as Error);
      }
      return;
    }
    state.retainedPendingOffset = offset;
    const visible: Completion = {
      remaining: 2,
      failed: false,
      done: (err) => {
        if (seq === state.retainedSeq) state.retainedPendingOffset = -1;
        if (err !== null) {
          this.#log.warn({ err, topic: state.name }, 'retained message not applied; the previous value stays');
          try {
            this.#retainedLog.append(retainedEntry(state.id, state.retained), state.retainedAt);
          } catch {
            // the retained log is failing too; replay keeps its last committed entry
          }
          return;
        }
        if (seq <= state.retainedApplied) return;
        state.retainedApplied = seq;
        const had = state.retained !== null;
        state.retained = record;
        state.retainedAt = storedAt;
        if (had && record === null) this.stats.retained--;
        else if (!had && record !== null) this.stats.retained++;
      },
    };
    state.acks.push(topicOffset, visible);
    this.#retainedAcks.push(offset, visible);
    if (waiter !== null) {
      waiter.remaining++;
      this.#retainedAcks.push(offset, waiter);
    }
  }

  #onCommit(state: TopicState, committed: Offset): void {
    state.acks.commit(committed);
    // Delivering before the sync, cursors follow 'flushed'; a commit matters only to a cursor
    // stopped at a QoS 2 record (one still short of it stops again and sets syncWaitFrom anew).
    if (this.#early && committed <= state.syncWaitFrom) return;
    state.syncWaitFrom = Number.POSITIVE_INFINITY;
    this.#wakeCursors(state, committed);
  }

  /** Records below `upTo` became readable: serve the caught-up cursors behind it. */
  #wakeCursors(state: TopicState, upTo: Offset): void {
    let woke = false;
    for (const c of state.cursors) {
      if (c.waiting && c.next < upTo) {
        c.waiting = false;
        this.#markReady(c);
        woke = true;
      }
    }
    if (woke) this.#runInline();
  }

  /** How far a cursor may read `log`: the flushed records, or only the committed ones. */
  #visible(log: CommitLog): Offset {
    return this.#early ? log.flushed : log.committed;
  }

  /**
   * Whether delivery must stop at this record until it commits: a QoS 2 record read before its
   * sync (exactly once must not depend on a record a power loss could take back).
   */
  #mustWaitForSync(log: CommitLog, offset: Offset, rec: Buffer): boolean {
    return this.#early && offset >= log.committed && recordQos(rec) === 2;
  }

  /** Parks a cursor at a record that must commit before it is delivered (see #onCommit). */
  #waitForSync(c: Cursor): void {
    c.waiting = true;
    if (c.next < c.topic.syncWaitFrom) c.topic.syncWaitFrom = c.next;
  }

  #onFailed(state: TopicState, err: Error, from: Offset, to: Offset): void {
    this.stats.appendFailures += to - from;
    this.#log.error({ err, topic: state.name, from, to }, 'append failed; publishers of these records are told so');
    state.acks.fail(from, to, err);
    if (this.#early) this.#rewind(state, from);
  }

  /**
   * The records from `from` on were taken back (a failed write or sync) and their offsets will
   * be reused. Subscribers may have received some of them already (delivered unsynced): their
   * cursors go back to `from` so the records that take those offsets are not skipped, and the
   * inflight entries for the lost records are dropped (a late PUBACK for them is ignored).
   */
  #rewind(state: TopicState, from: Offset): void {
    for (const c of state.cursors) {
      if (c.next <= from) continue;
      c.next = from;
      c.ahead = null;
      if (c.session !== null && c.session.persistent) this.#markDirty(c.session, state);
      if (c.group !== null) {
        this.#markGroupDirty(c.group);
        const g = c.group;
        for (let i = g.redeliver.length - 1; i >= 0; i--) {
          const e = g.redeliver[i] as { topic: TopicState; offset: Offset };
          if (e.topic === state && e.offset >= from) g.redeliver.splice(i, 1);
        }
      }
    }
    this.#forgetInflight(state, from);
  }

  /** Drops the inflight entries of records at `from` and beyond in `state`'s log: they are gone. */
  #forgetInflight(state: TopicState, from: Offset): void {
    for (const session of this.#sessions.values()) {
      for (const [pid, f] of session.inflight) {
        if (f.topic === state && f.record === null && f.offset >= from) this.#settle(session, pid, f);
      }
    }
  }

  #onMetaFailed(which: string, err: Error, from: Offset, to: Offset, acks: AckQueue): void {
    this.#log.error({ err, log: which, from, to }, 'metadata append failed');
    acks.fail(from, to, err);
  }

  // ── sessions ─────────────────────────────────────────────────────────────────────────────

  /**
   * Binds a connection to its session. `clean` (Clean Session / Clean Start) discards any stored
   * session first [MQTT-3.1.2-6] [MQTT-3.1.2-4]. `expirySec` is the Session Expiry Interval:
   * 0 = ends with the connection, -1 = never (3.1.1 clean session 0). `receiveMaximum` caps the
   * outbound inflight window (MQTT 5). Returns the session and whether a stored one was resumed
   * (CONNACK Session Present).
   */
  attach(
    clientId: string,
    clean: boolean,
    outlet: Outlet,
    expirySec = clean ? 0 : -1,
    receiveMaximum = 65535,
  ): { session: Session; present: boolean } {
    let session = this.#sessions.get(clientId);
    if (session !== undefined && (clean || !session.persistent)) {
      const persistent = session.persistent;
      this.#discard(session);
      if (persistent) this.onSessionEnd?.(clientId, 'replaced');
      session = undefined;
    }
    const present = session !== undefined;
    if (session === undefined) {
      session = new Session(clientId, ++this.#sessionNumbers, expirySec, this.#opts.maxInflight);
      this.#sessions.set(clientId, session);
      this.stats.sessions = this.#sessions.size;
      if (session.persistent) this.#appendSession({ o: 'open', c: clientId, n: session.number, e: expirySec });
    } else {
      if (session.expiryTimer !== null) clearTimeout(session.expiryTimer);
      session.expiryTimer = null;
      this.#setExpiry(session, expirySec);
    }
    session.inflightMax = Math.min(this.#opts.maxInflight, receiveMaximum);
    session.outlet = outlet;
    session.goneAt = 0;
    // after the caller's CONNACK: resending starts once the current call stack is done
    if (present) queueMicrotask(() => void this.#resume(session, outlet));
    return { session, present };
  }

  /** Changes a session's expiry (MQTT 5 DISCONNECT may do so; from 0 it may not [MQTT-3.14.2-2]). */
  setSessionExpiry(session: Session, expirySec: number): void {
    if (session.expirySec === 0) return;
    this.#setExpiry(session, expirySec);
  }

  #setExpiry(session: Session, expirySec: number): void {
    if (session.expirySec === expirySec) return;
    const wasPersistent = session.persistent;
    session.expirySec = expirySec;
    if (session.persistent) {
      if (!wasPersistent) this.#appendWhole(session);
      else this.#appendSession({ o: 'exp', c: session.clientId, e: expirySec });
    } else if (wasPersistent) {
      this.#appendSession({ o: 'end', c: session.clientId });
    }
  }

  /**
   * The connection bound to `session` closed. A session with expiry 0 ends with it; one with a
   * finite expiry ends that many seconds later unless a connection resumes it first.
   */
  detach(session: Session, outlet: Outlet): void {
    if (session.outlet !== outlet) return; // taken over already
    session.outlet = null;
    session.blocked.clear();
    session.pendingRetained.length = 0; // retained messages belong to the SUBSCRIBE that asked
    this.resume(session); // a resend waiting for room ends now that its connection has gone
    this.#returnGroupMessages(session, null);
    if (!session.persistent) {
      this.#discard(session);
      return;
    }
    if (session.expirySec > 0) {
      session.goneAt = Date.now();
      this.#appendSession({ o: 'gone', c: session.clientId, at: session.goneAt });
      this.#scheduleExpiry(session, session.expirySec * 1000);
    }
  }

  #scheduleExpiry(session: Session, ms: number): void {
    if (session.expiryTimer !== null) clearTimeout(session.expiryTimer);
    // setTimeout's ceiling is ~24.8 days; longer expiries re-arm
    const step = Math.min(ms, 2 ** 31 - 1);
    session.expiryTimer = setTimeout(() => {
      session.expiryTimer = null;
      if (ms > step) this.#scheduleExpiry(session, ms - step);
      else if (session.outlet === null) this.#end(session, 'expired');
    }, step);
    session.expiryTimer.unref();
  }

  /** Listeners for sessions that end (expiry, clean start): the server publishes pending Wills. */
  onSessionEnd: ((clientId: string, reason: 'expired' | 'replaced') => void) | null = null;

  #end(session: Session, reason: 'expired' | 'replaced'): void {
    this.#discard(session);
    this.onSessionEnd?.(session.clientId, reason);
  }

  #discard(session: Session): void {
    session.outlet = null;
    if (session.expiryTimer !== null) clearTimeout(session.expiryTimer);
    session.expiryTimer = null;
    for (const filter of session.subscriptions.keys()) this.#subs.remove(filter, session);
    for (const g of [...session.groups]) this.#leaveGroup(session, g);
    for (const c of session.cursors.values()) c.topic.cursors.delete(c);
    session.cursors.clear();
    session.inflight.clear();
    session.blocked.clear();
    session.subscriptions.clear();
    this.#dirtySessions.delete(session);
    if (this.#sessions.get(session.clientId) === session) this.#sessions.delete(session.clientId);
    this.stats.sessions = this.#sessions.size;
    this.stats.subscriptions = this.#subs.size;
    if (session.persistent) this.#appendSession({ o: 'end', c: session.clientId });
  }

  /** After a reconnect: resend unacknowledged messages in their original order, then go on. */
  async #resume(session: Session, outlet: Outlet): Promise<void> {
    session.resending = true;
    session.resendingFor = outlet;
    const resent = new Set<number>();
    try {
      for (const [pid, f] of [...session.inflight]) {
        if (session.outlet !== outlet) return;
        // a client that came back with a smaller Receive Maximum gets its old messages no
        // faster than it allows: wait for acknowledgements to make room [MQTT-3.3.4-7]
        while (resent.size >= session.inflightMax && stillOut(session, resent) >= session.inflightMax) {
          await new Promise<void>((wake) => (session.roomWaiter = wake));
          if (session.outlet !== outlet) return;
        }
        if (!session.inflight.has(pid)) continue; // acknowledged meanwhile
        resent.add(pid);
        if (f.state === 'pubrel') {
          outlet.pubrel(pid);
          continue;
        }
        if (f.topic === null) {
          session.inflight.delete(pid);
          continue;
        }
        const record = f.record ?? (await this.#readOne(f.topic, f.offset));
        if (session.outlet !== outlet) return;
        const expiry = record === null ? -1 : remainingExpiry(record, f.storedAt, Date.now());
        if (record === null || expiry === 0) {
          session.inflight.delete(pid); // gone to retention, or expired: nothing left to resend
          continue;
        }
        this.stats.messagesOut++;
        if (!outlet.publish(f.topic.nameBytes, f.topic.id, f.qos, f.retain, true, pid, recordPayload(record), recordProperties(record), expiry, f.subscriptionIds)) {
          session.inflight.delete(pid);
        }
      }
    } catch (err) {
      this.#log.warn({ err, clientId: session.clientId }, 'resend after reconnect failed');
    } finally {
      // a takeover may have started a newer resend meanwhile: only the owner ends it
      if (session.resendingFor === outlet) {
        session.resending = false;
        session.resendingFor = null;
      }
    }
    if (session.outlet !== outlet) return;
    for (const c of session.cursors.values()) {
      this.#ensureLog(c.topic);
      this.#enqueue(c);
    }
    // shared groups parked while no member could take a message get this member back
    this.resume(session);
  }

  async #readOne(state: TopicState, offset: Offset): Promise<Buffer | null> {
    if (state.log === null) {
      this.#ensureLog(state);
      await state.opening;
    }
    const log = state.log;
    if (log === null) return null;
    const batch = log.readTail(offset, 1, Number.MAX_SAFE_INTEGER, this.#early) ?? (await log.read(offset, 1, Number.MAX_SAFE_INTEGER, this.#early));
    return batch.status === 'records' && batch.records.length > 0 ? (batch.records[0] as Buffer) : null;
  }

  // ── subscriptions ────────────────────────────────────────────────────────────────────────

  /**
   * Adds or replaces a subscription. Existing topics it matches get a cursor at their end (new
   * messages only) and their retained message is sent per Retain Handling [MQTT-3.8.4-3]
   * [MQTT-3.3.1-9..11]. Returns whether the subscription already existed.
   */
  subscribe(session: Session, filter: string, options: SubscriptionOptions | QoS): boolean {
    const opts: SubscriptionOptions = typeof options === 'number' ? { qos: options, noLocal: false, retainAsPublished: false, retainHandling: 0, id: 0 } : options;
    const existed = session.subscriptions.has(filter);
    const shared = parseShared(filter);
    if (shared !== null) {
      session.subscriptions.set(filter, opts);
      if (session.persistent) this.#appendSession(subscriptionRecord(session.clientId, filter, opts));
      this.#joinGroup(session, shared.key, shared.filter, opts);
      return existed; // no retained messages for shared subscriptions [MQTT-4.8.2-?]
    }
    session.subscriptions.set(filter, opts);
    this.#subs.add(filter, session, opts.qos);
    this.stats.subscriptions = this.#subs.size;
    if (session.persistent) this.#appendSession(subscriptionRecord(session.clientId, filter, opts));
    const sendRetained = opts.retainHandling === 0 || (opts.retainHandling === 1 && !existed);
    this.#table.forEachMatch(filter, (id) => {
      const state = this.#state(id);
      this.#ensureCursor(session, state, -1);
      if (sendRetained && state.retained !== null) this.#sendRetained(session, state, opts);
    });
    return existed;
  }

  /** Removes a subscription. Returns false if the session had no such filter. */
  unsubscribe(session: Session, filter: string): boolean {
    if (!session.subscriptions.delete(filter)) return false;
    const shared = parseShared(filter);
    if (shared !== null) {
      const g = this.#groups.get(shared.key);
      if (g !== undefined) this.#leaveGroup(session, g);
      if (session.persistent) this.#appendSession({ o: 'unsub', c: session.clientId, f: filter });
      return true;
    }
    this.#subs.remove(filter, session);
    this.stats.subscriptions = this.#subs.size;
    if (session.persistent) this.#appendSession({ o: 'unsub', c: session.clientId, f: filter });
    for (const c of [...session.cursors.values()]) {
      if (!topicMatches(filter, c.topic.name)) continue;
      if (!this.#applyOptions(c, session, c.topic.name)) {
        session.cursors.delete(c.topic.id);
        c.topic.cursors.delete(c);
        session.blocked.delete(c);
      }
    }
    return true;
  }

  /**
   * Merges the session's subscriptions that match `name` into one cursor's delivery options:
   * highest QoS [MQTT-3.3.5-1], No Local only if every match has it, Retain As Published if any
   * does, and every Subscription Identifier [MQTT-3.3.4-3]. Returns false when none matches.
   */
  #applyOptions(c: Pick<Cursor, 'qos' | 'noLocal' | 'retainAsPublished' | 'subscriptionIds'>, session: Session, name: string): boolean {
    let matched = false;
    let qos: QoS = 0;
    let noLocal = true;
    let rap = false;
    let ids: number[] | null = null;
    for (const [filter, o] of session.subscriptions) {
      if (!topicMatches(filter, name)) continue;
      matched = true;
      if (o.qos > qos) qos = o.qos;
      if (!o.noLocal) noLocal = false;
      if (o.retainAsPublished) rap = true;
      if (o.id > 0) (ids ??= []).push(o.id);
    }
    if (!matched) return false;
    c.qos = qos;
    c.noLocal = noLocal;
    c.retainAsPublished = rap;
    c.subscriptionIds = ids === null ? null : ids.sort((a, b) => a - b);
    return true;
  }

  /** Creates the session's cursor on a topic (or refreshes its options). `start` -1 = the log's end. */
  #ensureCursor(session: Session, state: TopicState, start: Offset): void {
    const existing = session.cursors.get(state.id);
    if (existing !== undefined) {
      this.#applyOptions(existing, session, state.name);
      return;
    }
    const cursor = newCursor(session, null, state, start === -1 ? (state.log === null ? -1 : state.log.end) : start);
    if (!this.#applyOptions(cursor, session, state.name)) return;
    session.cursors.set(state.id, cursor);
    state.cursors.add(cursor);
    if (session.persistent && cursor.next >= 0) this.#markDirty(session, state);
    if (session.outlet !== null) {
      this.#ensureLog(state);
      this.#enqueue(cursor);
    }
  }

  #sendRetained(session: Session, state: TopicState, opts: SubscriptionOptions): void {
    const outlet = session.outlet;
    const record = state.retained;
    if (outlet === null || record === null) return;
    const expiry = remainingExpiry(record, state.retainedAt, Date.now());
    if (expiry === 0) return; // expired retained messages are not sent [MQTT-3.3.2-5]
    const pubQos = recordQos(record);
    const qos = (pubQos < opts.qos ? pubQos : opts.qos) as QoS;
    if (qos > 0 && session.window <= 0) {
      // the client's Receive Maximum is full: send it when an acknowledgement frees room [MQTT-3.3.4-7]
      session.pendingRetained.push({ topic: state, options: opts });
      return;
    }
    const ids = opts.id > 0 ? [opts.id] : null;
    let pid = 0;
    if (qos > 0) {
      pid = session.allocatePacketId();
      session.inflight.set(pid, {
        topic: state,
        offset: -1,
        qos: qos as 1 | 2,
        state: 'publish',
        record,
        retain: true,
        storedAt: state.retainedAt,
        subscriptionIds: ids,
      });
    }
    const payload = recordPayload(record);
    this.stats.messagesOut++;
    this.stats.bytesOut += payload.length;
    if (!outlet.publish(state.nameBytes, state.id, qos, true, false, pid, payload, recordProperties(record), expiry, ids) && pid > 0) {
      session.inflight.delete(pid);
    }
  }

  // ── shared subscriptions ─────────────────────────────────────────────────────────────────

  #joinGroup(session: Session, key: string, filter: string, opts: SubscriptionOptions): void {
    let g = this.#groups.get(key);
    const created = g === undefined;
    if (g === undefined) {
      g = { key, filter, members: new Map(), order: [], next: 0, cursors: new Map(), blocked: new Set(), redeliver: [], redelivering: false };
      this.#groups.set(key, g);
      this.#sharedSubs.add(filter, g, 0);
    }
    g.members.set(session, opts);
    g.order = [...g.members.keys()];
    session.groups.add(g);
    if (session.persistent) this.#markGroupDirty(g);
    this.stats.subscriptions = this.#subs.size + this.#groups.size;
    const group = g;
    if (created) this.#table.forEachMatch(filter, (id) => this.#ensureGroupCursor(group, this.#state(id), -1));
    this.#wakeGroup(g);
  }

  #leaveGroup(session: Session, g: SharedGroup): void {
    if (!g.members.delete(session)) return;
    session.groups.delete(g);
    g.order = [...g.members.keys()];
    this.#returnGroupMessages(session, g);
    if (g.members.size === 0) {
      // the last member left: the group and its position go away
      for (const c of g.cursors.values()) c.topic.cursors.delete(c);
      g.cursors.clear();
      g.blocked.clear();
      g.redeliver.length = 0;
      this.#groups.delete(g.key);
      this.#sharedSubs.remove(g.filter, g);
    } else {
      this.#wakeGroup(g);
    }
    this.stats.subscriptions = this.#subs.size + this.#groups.size;
  }

  /**
   * A member went away (`only` null: every group it is in): its unacknowledged group messages go
   * back to their groups, to be sent to another member first.
   */
  #returnGroupMessages(session: Session, only: SharedGroup | null): void {
    if (session.groups.size === 0 && only === null) return;
    for (const [pid, f] of session.inflight) {
      const g = f.group;
      if (g === undefined || (only !== null && g !== only) || f.topic === null || f.state === 'pubrel') continue;
      session.inflight.delete(pid);
      g.redeliver.push({ topic: f.topic, offset: f.offset, storedAt: f.storedAt });
    }
    if (only !== null) this.#wakeGroup(only);
    else for (const g of session.groups) this.#wakeGroup(g);
  }

  #ensureGroupCursor(g: SharedGroup, state: TopicState, start: Offset): void {
    if (g.cursors.has(state.id)) return;
    const cursor = newCursor(null, g, state, start === -1 ? (state.log === null ? -1 : state.log.end) : start);
    cursor.qos = 2; // members' own QoS applies per delivery
    g.cursors.set(state.id, cursor);
    state.cursors.add(cursor);
    if (cursor.next >= 0) this.#markGroupDirty(g);
    this.#ensureLog(state);
    this.#enqueue(cursor);
  }

  #wakeGroup(g: SharedGroup): void {
    if (g.redeliver.length > 0 && !g.redelivering) void this.#redeliver(g);
    if (g.blocked.size === 0) return;
    for (const c of g.blocked) this.#enqueue(c);
    g.blocked.clear();
  }

  /** The next member that can take a message now, round-robin; null if none can. */
  #pickMember(g: SharedGroup): Session | null {
    const n = g.order.length;
    for (let i = 0; i < n; i++) {
      const idx = (g.next + i) % n;
      const s = g.order[idx] as Session;
      if (s.outlet !== null && s.outlet.writable && !s.resending && s.window > 0) {
        g.next = idx + 1;
        return s;
      }
    }
    return null;
  }

  /** Sends one record to one member of a group. */
  #deliverToMember(g: SharedGroup, member: Session, topic: TopicState, offset: Offset, rec: Buffer, storedAt: number, expiry: number): void {
    const opts = g.members.get(member) as SubscriptionOptions;
    const pubQos = recordQos(rec);
    const qos = (pubQos < opts.qos ? pubQos : opts.qos) as QoS;
    const ids = opts.id > 0 ? [opts.id] : null;
    const retain = opts.retainAsPublished && recordRetain(rec);
    let pid = 0;
    if (qos > 0) {
      pid = member.allocatePacketId();
      member.inflight.set(pid, { topic, offset, qos: qos as 1 | 2, state: 'publish', record: null, retain, storedAt, subscriptionIds: ids, group: g });
    }
    const payload = recordPayload(rec);
    this.stats.messagesOut++;
    this.stats.bytesOut += payload.length;
    const outlet = member.outlet as Outlet;
    if (!outlet.publish(topic.nameBytes, topic.id, qos, retain, false, pid, payload, recordProperties(rec), expiry, ids) && pid > 0) {
      member.inflight.delete(pid);
    }
  }

  #serveGroup(c: Cursor): void {
    const g = c.group as SharedGroup;
    const log = c.topic.log;
    if (log === null || c.reading || g.cursors.get(c.topic.id) !== c) return;
    if (c.next < 0) c.next = log.end;
    if (c.next >= this.#visible(log)) {
      c.waiting = true;
      return;
    }
    if (this.#pickMemberPeek(g) === null) {
      g.blocked.add(c);
      return;
    }
    const batch = log.readTail(c.next, this.#opts.batchRecords, this.#opts.batchBytes, this.#early);
    if (batch !== null) {
      this.#deliverGroup(c, g, batch);
      return;
    }
    c.reading = true;
    log.read(c.next, this.#opts.batchRecords, this.#opts.batchBytes).then(
      (b) => {
        c.reading = false;
        this.#deliverGroup(c, g, b);
      },
      (err: unknown) => {
        c.reading = false;
        this.#log.error({ err, topic: c.topic.name, group: g.key }, 'read failed; group cursor retries when the log next grows');
        c.waiting = true;
      },
    );
  }

  #pickMemberPeek(g: SharedGroup): Session | null {
    const next = g.next;
    const s = this.#pickMember(g);
    g.next = next;
    return s;
  }

  #deliverGroup(c: Cursor, g: SharedGroup, batch: ReadBatch): void {
    if (batch.status !== 'records') {
      if (batch.status === 'caughtUp') {
        c.waiting = true;
        return;
      }
      c.next = batch.next;
      this.#enqueue(c);
      return;
    }
    const now = Date.now();
    const topicLog = c.topic.log as CommitLog;
    let offset = batch.next - batch.records.length;
    for (let i = 0; i < batch.records.length; i++, offset++) {
      const rec = batch.records[i] as Buffer;
      if (!isRecord(rec)) continue;
      if (this.#mustWaitForSync(topicLog, offset, rec)) {
        c.next = offset; // woken by the commit
        this.#markGroupDirty(g);
        this.#waitForSync(c);
        return;
      }
      const storedAt = batch.timestamps[i] as number;
      const expiry = remainingExpiry(rec, storedAt, now);
      if (expiry === 0) continue;
      const member = this.#pickMember(g);
      if (member === null) {
        c.next = offset; // the rest waits for a member with room
        this.#markGroupDirty(g);
        g.blocked.add(c);
        return;
      }
      this.#deliverToMember(g, member, c.topic, offset, rec, storedAt, expiry);
    }
    c.next = batch.next;
    this.#markGroupDirty(g);
    const log = c.topic.log;
    if (log !== null && c.next < this.#visible(log)) this.#enqueue(c);
    else c.waiting = true;
  }

  /** Sends a departed member's messages to the others, oldest first. */
  async #redeliver(g: SharedGroup): Promise<void> {
    g.redelivering = true;
    try {
      while (g.redeliver.length > 0 && this.#groups.get(g.key) === g) {
        const member = this.#pickMember(g);
        if (member === null) return; // resumed by the next ack or drain
        const e = g.redeliver.shift() as { topic: TopicState; offset: Offset; storedAt: number };
        const rec = await this.#readOne(e.topic, e.offset);
        if (rec === null || !isRecord(rec)) continue;
        const expiry = remainingExpiry(rec, e.storedAt, Date.now());
        if (expiry === 0) continue;
        if (member.outlet === null || !g.members.has(member)) {
          g.redeliver.unshift(e);
          continue;
        }
        this.#deliverToMember(g, member, e.topic, e.offset, rec, e.storedAt, expiry);
      }
    } catch (err) {
      this.#log.error({ err, group: g.key }, 'redelivery to a shared group failed');
    } finally {
      g.redelivering = false;
    }
  }

  // ── outbound acknowledgements ────────────────────────────────────────────────────────────

  /** PUBACK from the client. Returns false for an unknown packet id. */
  puback(session: Session, packetId: number): boolean {
    const f = session.inflight.get(packetId);
    if (f === undefined || f.qos !== 1) return false;
    this.#settle(session, packetId, f);
    return true;
  }

  /** PUBREC from the client: the caller answers with PUBREL. Returns false for an unknown id. */
  pubrec(session: Session, packetId: number): boolean {
    const f = session.inflight.get(packetId);
    if (f === undefined || f.qos !== 2) return false;
    if (f.state === 'pubrel') return true;
    f.state = 'pubrel';
    if (session.persistent) {
      session.dirtyInflight = true;
      this.#schedulePersist(session);
    }
    return true;
  }

  /**
   * PUBCOMP from the client, or (`refused`) a PUBREC with an error reason code, which ends the
   * exchange too (MQTT 5). Returns false for an unknown packet id.
   */
  pubcomp(session: Session, packetId: number, refused = false): boolean {
    const f = session.inflight.get(packetId);
    if (f === undefined || f.qos !== 2 || (f.state !== 'pubrel' && !refused)) return false;
    this.#settle(session, packetId, f);
    return true;
  }

  #settle(session: Session, packetId: number, f: Inflight): void {
    session.inflight.delete(packetId);
    if (f.group !== undefined) this.#markGroupDirty(f.group);
    if (session.persistent && f.record === null && f.group === undefined) {
      session.dirtyInflight = true;
      this.#schedulePersist(session);
    }
    this.resume(session);
  }

  /** The client's socket drained or its window opened: serve its blocked cursors again. */
  resume(session: Session): void {
    if (session.roomWaiter !== null) {
      const wake = session.roomWaiter;
      session.roomWaiter = null;
      wake();
    }
    while (session.pendingRetained.length > 0 && session.window > 0 && session.outlet !== null) {
      const next = session.pendingRetained.shift() as { topic: TopicState; options: SubscriptionOptions };
      this.#sendRetained(session, next.topic, next.options);
    }
    for (const g of session.groups) this.#wakeGroup(g);
    if (session.blocked.size === 0) return;
    for (const c of session.blocked) this.#enqueue(c);
    session.blocked.clear();
  }

  // ── the scheduler ────────────────────────────────────────────────────────────────────────

  #enqueue(c: Cursor): void {
    this.#markReady(c);
    this.#scheduleRun();
  }

  /** Puts a cursor on the ready list (once); someone must then run or schedule the list. */
  #markReady(c: Cursor): void {
    if (c.queued) return;
    c.queued = true;
    c.waiting = false;
    this.#ready.push(c);
  }

  #scheduleRun(): void {
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#run);
    }
  }

  /**
   * Serves the ready list now, from inside a commit event, rather than one loop turn later:
   * at low load that turn is a whole extra wake-up per message (and so was the pass scheduled
   * for it anyway, which found the list empty). Re-entry (a delivery that causes another commit
   * synchronously) falls back to the scheduled pass; what one slice leaves is scheduled by it.
   */
  #runInline(): void {
    if (this.#running) this.#scheduleRun();
    else this.#serveNow();
  }

  #running = false;

  /** The scheduled pass. */
  readonly #run = (): void => {
    this.#scheduled = false;
    this.#serveNow();
  };

  #serveNow(): void {
    this.#running = true;
    try {
      this.#serveSlice();
    } finally {
      this.#running = false;
    }
  }

  #serveSlice(): void {
    let budget = SCHEDULER_SLICE;
    while (this.#readyHead < this.#ready.length && budget-- > 0) {
      const c = this.#ready[this.#readyHead++] as Cursor;
      c.queued = false;
      this.#serve(c);
    }
    if (this.#readyHead === this.#ready.length) {
      this.#ready = [];
      this.#readyHead = 0;
    } else {
      if (this.#readyHead > 4096) {
        this.#ready = this.#ready.slice(this.#readyHead);
        this.#readyHead = 0;
      }
      this.#scheduleRun();
    }
  }

  #serve(c: Cursor): void {
    const session = c.session;
    if (session === null) {
      this.#serveGroup(c);
      return;
    }
    const outlet = session.outlet;
    const log = c.topic.log;
    if (outlet === null || session.resending || log === null || c.reading) return;
    if (session.cursors.get(c.topic.id) !== c) return; // unsubscribed meanwhile
    if (c.next < 0) c.next = log.end;
    if (c.next > log.end) {
      // the log lost its unsynced tail in a crash (fsync never/interval) while the session
      // record survived: resume at the end, or new records would be skipped
      this.#log.warn({ clientId: session.clientId, topic: c.topic.name, cursor: c.next, end: log.end }, 'cursor beyond the log end after a crash; resuming at the end');
      c.next = log.end;
    }
    if (c.next >= this.#visible(log)) {
      c.waiting = true;
      return;
    }
    if (!outlet.writable) {
      session.blocked.add(c);
      return;
    }
    let max = this.#opts.batchRecords;
    if (c.qos > 0) {
      const room = session.window;
      if (room <= 0) {
        session.blocked.add(c);
        return;
      }
      if (room < max) max = room;
    }
    const ahead = takeAhead(c, max);
    if (ahead !== null) {
      this.#deliver(c, outlet, ahead);
      return;
    }
    const batch = log.readTail(c.next, max, this.#opts.batchBytes, this.#early);
    if (batch !== null) {
      this.#deliver(c, outlet, batch);
      return;
    }
    // Behind the in-memory tail: one positional read fetches up to READ_AHEAD_BYTES; the cursor
    // hands it out a turn's worth at a time, so catching up costs one read per ~64 KiB instead
    // of one per turn.
    c.reading = true;
    log.read(c.next, READ_AHEAD_RECORDS, READ_AHEAD_BYTES).then(
      (b) => {
        c.reading = false;
        if (b.status === 'records' && b.records.length > max) {
          c.ahead = b;
          const first = takeAhead(c, max);
          if (session.outlet === outlet && first !== null) this.#deliver(c, outlet, first);
          else if (session.outlet !== null) this.#enqueue(c);
          return;
        }
        if (session.outlet === outlet) this.#deliver(c, outlet, b);
        else if (session.outlet !== null) this.#enqueue(c);
      },
      (err: unknown) => {
        c.reading = false;
        this.#log.error({ err, topic: c.topic.name, offset: c.next, clientId: session.clientId }, 'read failed; cursor retries when the log next grows');
        c.waiting = true;
      },
    );
  }

  #deliver(c: Cursor, outlet: Outlet, batch: ReadBatch): void {
    const session = c.session as Session;
    switch (batch.status) {
      case 'caughtUp':
        c.waiting = true;
        return;
      case 'belowStart':
        this.#log.warn(
          { clientId: session.clientId, topic: c.topic.name, from: c.next, earliest: batch.next },
          'messages removed by retention before this session read them',
        );
        c.next = batch.next;
        break;
      case 'beyondEnd':
        c.next = batch.next;
        break;
      case 'records': {
        const records = batch.records;
        const timestamps = batch.timestamps;
        let offset = batch.next - records.length;
        const topic = c.topic;
        const topicLog = topic.log as CommitLog;
        const now = Date.now();
        for (let i = 0; i < records.length; i++, offset++) {
          const rec = records[i] as Buffer;
          if (!isRecord(rec)) {
            this.#log.error({ topic: topic.name, offset }, 'unreadable record skipped');
            continue;
          }
          if (this.#mustWaitForSync(topicLog, offset, rec)) {
            // the rest of the batch waits for the commit, which wakes this cursor
            if (offset > c.next && session.persistent) this.#markDirty(session, topic);
            c.next = offset;
            this.#waitForSync(c);
            return;
          }
          if (c.noLocal && recordOrigin(rec) === session.number) continue; // [MQTT-3.8.3-3]
          const storedAt = timestamps[i] as number;
          const expiry = remainingExpiry(rec, storedAt, now);
          if (expiry === 0) continue; // expired: not delivered [MQTT-3.3.2-5]
          const pubQos = recordQos(rec);
          const qos = (pubQos < c.qos ? pubQos : c.qos) as QoS;
          // [MQTT-3.3.1-9] RETAIN is 0 when forwarding to an established subscription,
          // unless it asked for Retain As Published [MQTT-3.3.1-12]
          const retain = c.retainAsPublished && recordRetain(rec);
          let pid = 0;
          if (qos > 0) {
            pid = session.allocatePacketId();
            session.inflight.set(pid, {
              topic,
              offset,
              qos: qos as 1 | 2,
              state: 'publish',
              record: null,
              retain,
              storedAt,
              subscriptionIds: c.subscriptionIds,
            });
          }
          const payload = recordPayload(rec);
          this.stats.messagesOut++;
          this.stats.bytesOut += payload.length;
          if (!outlet.publish(topic.nameBytes, topic.id, qos, retain, false, pid, payload, recordProperties(rec), expiry, c.subscriptionIds) && pid > 0) {
            session.inflight.delete(pid);
          }
        }
        c.next = batch.next;
        if (session.persistent) this.#markDirty(session, c.topic);
        break;
      }
    }
    const log = c.topic.log;
    if (log !== null && c.next < this.#visible(log)) this.#enqueue(c);
    else c.waiting = true;
  }

  // ── persistence of sessions ──────────────────────────────────────────────────────────────

  /** The session's cursor on `state` moved (and its inflight set may have grown). */
  #markDirty(session: Session, state: TopicState): void {
    session.dirtyTopics.add(state);
    session.dirtyInflight = true;
    this.#schedulePersist(session);
  }

  #schedulePersist(session: Session): void {
    this.#dirtySessions.add(session);
    this.#schedulePersistTick();
  }

  #schedulePersistTick(): void {
    if (this.#persistScheduled) return;
    this.#persistScheduled = true;
    setImmediate(() => this.#persistDirty());
  }

  /** A group's positions are persisted when any member's session is. */
  #markGroupDirty(g: SharedGroup): void {
    for (const member of g.members.keys()) {
      if (member.persistent) {
        this.#dirtyGroups.add(g);
        this.#schedulePersistTick();
        return;
      }
    }
  }

  /**
   * A group's record: per topic, the lowest offset not yet acknowledged by the member it went to
   * (a restart resends from there; QoS 1 may repeat, nothing is skipped).
   */
  #groupRecord(g: SharedGroup): SessionRecord {
    const low = new Map<number, number>();
    for (const [id, c] of g.cursors) if (c.next >= 0) low.set(id, c.next);
    for (const member of g.members.keys()) {
      for (const f of member.inflight.values()) {
        if (f.group !== g || f.topic === null) continue;
        const cur = low.get(f.topic.id);
        if (cur === undefined || f.offset < cur) low.set(f.topic.id, f.offset);
      }
    }
    return { o: 'grp', c: g.key, t: [...low] };
  }

  /** Writes one record per changed session: its moved cursors and inbound QoS 2 ids. */
  #persistDirty(): void {
    this.#persistScheduled = false;
    for (const session of this.#dirtySessions) {
      if (!session.persistent) continue;
      const rec: SessionRecord = { o: 'cur', c: session.clientId };
      if (session.dirtyTopics.size > 0) {
        rec.t = [];
        for (const state of session.dirtyTopics) {
          const c = session.cursors.get(state.id);
          if (c === undefined || c.next < 0) continue;
          rec.t.push([state.id, c.next]);
        }
        session.dirtyTopics.clear();
      }
      if (session.dirtyInflight) {
        const { added, removed } = session.inflightDelta();
        if (added.length > 0) rec.a = added;
        if (removed.length > 0) rec.d = removed;
        session.dirtyInflight = false;
      }
      this.#appendSession(rec);
    }
    this.#dirtySessions.clear();
    for (const g of this.#dirtyGroups) if (this.#groups.get(g.key) === g) this.#appendSession(this.#groupRecord(g));
    this.#dirtyGroups.clear();
  }

  #appendSession(rec: SessionRecord): void {
    try {
      this.#sessionsLog.append(Buffer.from(JSON.stringify(rec), 'utf8'));
    } catch (err) {
      this.#log.error({ err, clientId: rec.c }, 'session state not persisted');
      return;
    }
    if (++this.#sessionsSinceSnapshot > COMPACT_MIN_RECORDS + COMPACT_FACTOR * this.#sessions.size) this.#compactSoon();
  }

  // ── compaction of the meta logs ──────────────────────────────────────────────────────────

  /** Records appended to `sessions` / `retained` since their last snapshot (or since startup). */
  #sessionsSinceSnapshot = 0;
  #retainedSinceSnapshot = 0;
  #compacting: Promise<void> | null = null;

  #compactSoon(): void {
    if (this.#compacting !== null || this.#closed) return;
    this.#compacting = this.compact()
      .then(() => undefined)
      .catch((err: unknown) => this.#log.error({ err }, 'meta log compaction failed; retried later'))
      .finally(() => {
        this.#compacting = null;
      });
  }

  /**
   * Rewrites the live state of the `sessions` and `retained` logs as a snapshot at their end,
   * waits for it to commit, then deletes the segments wholly before it. Replay reads the
   * snapshot like any other records: a session's 'open' resets it, a retained entry replaces
   * the topic's, so older history below the snapshot is redundant.
   */
  async compact(): Promise<{ sessions: number; retained: number }> {
    this.#persistDirty();
    const sessionsFrom = this.#sessionsLog.end;
    let sessions = 0;
    for (const session of this.#sessions.values()) {
      if (!session.persistent) continue;
      sessions++;
      this.#appendWhole(session);
    }
    for (const g of this.#groups.values()) {
      if ([...g.members.keys()].some((m) => m.persistent)) this.#sessionsLog.append(Buffer.from(JSON.stringify(this.#groupRecord(g))));
    }
    const retainedFrom = this.#retainedLog.end;
    let retained = 0;
    for (const state of this.#states) {
      // a topic with an entry still committing keeps that entry (it supersedes the visible
      // value; if it fails, the visible value is appended again after it)
      if (state === undefined || state.retained === null || state.retainedPendingOffset >= 0) continue;
      retained++;
      this.#retainedLog.append(retainedEntry(state.id, state.retained), state.retainedAt);
    }
    // an entry still waiting to commit is not in the snapshot: never trim at or past it
    let retainedTrim = retainedFrom;
    for (const state of this.#states) {
      if (state !== undefined && state.retainedPendingOffset >= 0 && state.retainedPendingOffset < retainedTrim) retainedTrim = state.retainedPendingOffset;
    }
    this.#sessionsSinceSnapshot = 0;
    this.#retainedSinceSnapshot = 0;
    await Promise.all([this.#sessionsLog.flush(), this.#retainedLog.flush()]);
    await Promise.all([this.#sessionsLog.trimBefore(sessionsFrom), this.#retainedLog.trimBefore(retainedTrim)]);
    this.#log.info({ sessions, retained }, 'meta logs compacted');
    return { sessions, retained };
  }

  /** A session's whole state as records that, replayed in order, rebuild it. */
  #appendWhole(session: Session): void {
    const c = session.clientId;
    this.#sessionsLog.append(Buffer.from(JSON.stringify({ o: 'open', c, n: session.number, e: session.expirySec } satisfies SessionRecord)));
    for (const [filter, opts] of session.subscriptions) this.#sessionsLog.append(Buffer.from(JSON.stringify(subscriptionRecord(c, filter, opts))));
    const rec: SessionRecord = {
      o: 'cur',
      c,
      t: [],
      r: [...session.inboundQos2].filter(([, st]) => st === 'stored').map(([pid]) => pid),
      i: session.inflightSnapshot(),
    };
    for (const [id, cursor] of session.cursors) if (cursor.next >= 0) rec.t?.push([id, cursor.next]);
    this.#sessionsLog.append(Buffer.from(JSON.stringify(rec)));
    if (session.outlet === null && session.goneAt > 0) this.#sessionsLog.append(Buffer.from(JSON.stringify({ o: 'gone', c, at: session.goneAt } satisfies SessionRecord)));
  }

  // ── startup ──────────────────────────────────────────────────────────────────────────────

  async #replay(): Promise<void> {
    await readAll(this.#topicsLog, (rec, offset) => {
      const { id } = this.#table.intern(rec.toString('utf8'));
      if (id !== offset) throw new RouterError('ERR_ROUTER_META_CORRUPT', `topics log record ${offset} interned as ${id}`);
    });
    this.stats.topics = this.#table.size;
    await readAll(this.#retainedLog, (rec, _offset, storedAt) => {
      this.#retainedSinceSnapshot++;
      if (rec.length < 4) return;
      const id = rec.readUInt32BE(0);
      if (id >= this.#table.size) return;
      const state = this.#state(id as TopicId);
      const had = state.retained !== null;
      state.retained = rec.length > 4 ? Buffer.from(rec.subarray(4)) : null;
      state.retainedAt = storedAt;
      if (had !== (state.retained !== null)) this.stats.retained += had ? -1 : 1;
    });
    interface Saved {
      n: number;
      e: number;
      goneAt: number;
      subs: Map<string, SubscriptionOptions>;
      cur: Map<number, number>;
      rel: number[];
      inflight: Map<number, InflightRow>;
    }
    const saved = new Map<string, Saved>();
    const groupPositions = new Map<string, Array<[number, number]>>();
    await readAll(this.#sessionsLog, (buf) => {
      this.#sessionsSinceSnapshot++;
      let rec: SessionRecord;
      try {
        rec = JSON.parse(buf.toString('utf8')) as SessionRecord;
      } catch {
        return;
      }
      if (rec.o === 'grp') {
        groupPositions.set(rec.c, rec.t ?? []);
        return;
      }
      if (rec.o === 'open') {
        saved.set(rec.c, { n: rec.n ?? 0, e: rec.e ?? -1, goneAt: 0, subs: new Map(), cur: new Map(), rel: [], inflight: new Map() });
        return;
      }
      const s = saved.get(rec.c);
      if (s === undefined) return;
      switch (rec.o) {
        case 'end':
          saved.delete(rec.c);
          break;
        case 'exp':
          s.e = rec.e ?? s.e;
          break;
        case 'gone':
          s.goneAt = rec.at ?? 0;
          break;
        case 'sub':
          if (rec.f !== undefined && rec.q !== undefined) {
            const [nl, rap, rh, id] = rec.so ?? [0, 0, 0, 0];
            s.subs.set(rec.f, { qos: rec.q, noLocal: nl === 1, retainAsPublished: rap === 1, retainHandling: rh as 0 | 1 | 2, id });
          }
          break;
        case 'unsub':
          if (rec.f !== undefined) s.subs.delete(rec.f);
          break;
        case 'cur':
          for (const [t, next] of rec.t ?? []) s.cur.set(t, next);
          if (rec.r !== undefined) s.rel = rec.r;
          if (rec.i !== undefined) s.inflight = new Map(rec.i.map((r) => [r[0], r]));
          for (const r of rec.a ?? []) s.inflight.set(r[0], r);
          for (const pid of rec.d ?? []) s.inflight.delete(pid);
          break;
      }
    });
    const now = Date.now();
    let expired = 0;
    for (const [clientId, s] of saved) {
      if (s.n > this.#sessionNumbers) this.#sessionNumbers = s.n;
      // a session whose expiry ran out while the broker was down ends now [MQTT-3.1.2-23]
      if (s.e > 0 && s.goneAt > 0 && s.goneAt + s.e * 1000 <= now) {
        this.#appendSession({ o: 'end', c: clientId });
        expired++;
        continue;
      }
      const session = new Session(clientId, s.n, s.e, this.#opts.maxInflight);
      session.goneAt = s.goneAt > 0 ? s.goneAt : now;
      this.#sessions.set(clientId, session);
      for (const [filter, opts] of s.subs) {
        session.subscriptions.set(filter, opts);
        const shared = parseShared(filter);
        if (shared !== null) this.#joinGroup(session, shared.key, shared.filter, opts);
        else this.#subs.add(filter, session, opts.qos);
      }
      for (const [t, next] of s.cur) {
        if (t >= this.#table.size) continue;
        const state = this.#state(t as TopicId);
        const cursor = newCursor(session, null, state, next);
        if (!this.#applyOptions(cursor, session, state.name)) continue;
        session.cursors.set(state.id, cursor);
        state.cursors.add(cursor);
      }
      // topics that match a filter but got no cursor record yet were created after the subscription
      for (const filter of s.subs.keys()) {
        if (parseShared(filter) !== null) continue;
        this.#table.forEachMatch(filter, (id) => {
          if (!session.cursors.has(id)) this.#ensureCursor(session, this.#state(id), 0);
        });
      }
      for (const pid of s.rel) session.inboundQos2.set(pid, 'stored');
      // unacknowledged messages are resent on reconnect exactly as they were: same packet ids,
      // DUP set, PUBREL for those past PUBREC [MQTT-4.4.0-1]; nothing else is repeated
      for (const [pid, topicId, offset, qos, stage, storedAt] of s.inflight.values()) {
        if (topicId >= this.#table.size) continue;
        const state = this.#state(topicId as TopicId);
        session.inflight.set(pid, {
          topic: state,
          offset,
          qos: qos === 2 ? 2 : 1,
          state: stage === 1 ? 'pubrel' : 'publish',
          record: null,
          retain: false,
          storedAt,
          subscriptionIds: session.cursors.get(state.id)?.subscriptionIds ?? null,
        });
      }
      session.markPersisted();
      // the expiry clock restarts from the disconnect (or, if the broker died with the session
      // connected, from now)
      if (s.e > 0) this.#scheduleExpiry(session, s.goneAt > 0 ? s.goneAt + s.e * 1000 - now : s.e * 1000);
    }
    // shared groups exist again (their persistent members rejoined): put them where they were
    for (const [key, positions] of groupPositions) {
      const g = this.#groups.get(key);
      if (g === undefined) continue;
      for (const [id, low] of positions) {
        if (id >= this.#table.size) continue;
        const c = g.cursors.get(id as TopicId);
        if (c !== undefined) c.next = low;
        else this.#ensureGroupCursor(g, this.#state(id as TopicId), low);
      }
    }
    this.stats.sessions = this.#sessions.size;
    this.stats.subscriptions = this.#subs.size;
    if (saved.size > 0) this.#log.info({ sessions: this.#sessions.size, expired, topics: this.#table.size }, 'persistent sessions restored');
  }

  /** Number of known sessions (connected or not). */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Writes pending session state and waits for every meta log to commit. Topic logs belong to the store. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#regRetry !== null) clearTimeout(this.#regRetry);
    this.#regRetry = null;
    if (this.#compacting !== null) await this.#compacting;
    this.#persistDirty();
    this.#closed = true;
    await Promise.all([this.#topicsLog.flush(), this.#retainedLog.flush(), this.#sessionsLog.flush()]);
  }
}

/** Reads a whole log from its start, calling `visit` per record. */
async function readAll(log: CommitLog, visit: (record: Buffer, offset: Offset, storedAt: number) => void): Promise<void> {
  let from = log.start;
  for (;;) {
    const batch = await log.read(from, REPLAY_BATCH, 64 * 1024 * 1024);
    if (batch.status === 'belowStart' || batch.status === 'beyondEnd') {
      if (batch.next === from) return;
      from = batch.next;
      continue;
    }
    if (batch.status === 'caughtUp' || batch.records.length === 0) return;
    let offset = batch.next - batch.records.length;
    for (let i = 0; i < batch.records.length; i++, offset++) visit(batch.records[i] as Buffer, offset, batch.timestamps[i] as number);
    from = batch.next;
  }
}

/**
 * Seconds of Message Expiry left for a record stored at `storedAt`: -1 when it never expires,
 * 0 when it has expired, otherwise the interval reduced by the time spent in the broker
 * [MQTT-3.3.2-6].
 */
function remainingExpiry(record: Buffer, storedAt: number, now: number): number {
  const interval = recordExpiry(record);
  if (interval < 0) return -1;
  const left = interval - Math.floor((now - storedAt) / 1000);
  return left > 0 ? left : 0;
}

function subscriptionRecord(clientId: string, filter: string, o: SubscriptionOptions): SessionRecord {
  return { o: 'sub', c: clientId, f: filter, q: o.qos, so: [o.noLocal ? 1 : 0, o.retainAsPublished ? 1 : 0, o.retainHandling, o.id] };
}

/**
 * Splits `$share/{name}/{filter}` into its group key and filter; null when `filter` is not a
 * shared subscription. The name is non-empty and has no wildcards or '/' [MQTT-4.8.2-1] [MQTT-4.8.2-2].
 */
export function parseShared(filter: string): { key: string; filter: string } | null {
  if (!filter.startsWith('$share/')) return null;
  const rest = filter.slice(7);
  const slash = rest.indexOf('/');
  if (slash <= 0) return null;
  const name = rest.slice(0, slash);
  if (name.includes('+') || name.includes('#')) return null;
  return { key: rest, filter: rest.slice(slash + 1) };
}

/** A `retained` log entry: the topic id, then the stored record (none = cleared). */
function retainedEntry(id: TopicId, record: Buffer | null): Buffer {
  const entry = Buffer.allocUnsafe(4 + (record === null ? 0 : record.length));
  entry.writeUInt32BE(id, 0);
  if (record !== null) record.copy(entry, 4);
  return entry;
}

/** A cursor at `next` (-1: the log's end once open); options are filled in by the caller. */
function newCursor(session: Session | null, group: SharedGroup | null, topic: TopicState, next: Offset): Cursor {
  return {
    session,
    group,
    topic,
    qos: 0,
    noLocal: false,
    retainAsPublished: false,
    subscriptionIds: null,
    next,
    ahead: null,
    queued: false,
    reading: false,
    waiting: false,
  };
}

/**
 * Up to `max` records of the cursor's read-ahead, starting at its next offset, as a batch; null
 * when it has none (or none that starts where the cursor is).
 */
function takeAhead(c: Cursor, max: number): ReadBatch | null {
  const ahead = c.ahead;
  if (ahead === null) return null;
  const first = ahead.next - ahead.records.length;
  const skip = c.next - first;
  if (skip < 0 || skip >= ahead.records.length) {
    c.ahead = null;
    return null;
  }
  const end = Math.min(ahead.records.length, skip + max);
  const batch: ReadBatch = {
    status: 'records',
    records: ahead.records.slice(skip, end),
    timestamps: ahead.timestamps.slice(skip, end),
    next: first + end,
  };
  if (end === ahead.records.length) c.ahead = null;
  return batch;
}

/** Drops acknowledged ids from `resent`, returning how many are still awaiting acknowledgement. */
function stillOut(session: Session, resent: Set<number>): number {
  for (const pid of resent) if (!session.inflight.has(pid)) resent.delete(pid);
  return resent.size;
}
