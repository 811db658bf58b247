/**
 * A shard runs the clients of one thread through the phases of a run:
 *
 *   setup()  connect every client (bounded concurrency), subscribe the receivers
 *   run()    publishers send; receivers account; resolves when everything local is done,
 *            or — once told every publisher of the run finished (allPublished) — after
 *            `drainMs` without a delivery, or at the run's deadline
 *   finish() close the connections and hand back figures (summable across shards)
 *
 * The main thread (runner.ts) drives one shard directly or several through worker threads.
 * Faults (EMFILE, ECONNREFUSED, resets, timeouts) end the client they hit and are recorded
 * as figures; nothing here throws because a connection failed.
 */
import { addCounts, type DeliveryCounts, ReceiverAccounting, zeroCounts } from './accounting.js';
import { LoadConnection } from './connection.js';
import { faultCode } from './errors.js';
import { payloadTemplate, stampPayload } from './payload.js';
import type { ClientRole, ClientSpec, ShardPlan } from './plan.js';
import { summarize, type Summary } from './stats.js';

/** Messages a publisher queues before yielding to I/O. */
const PUBLISH_BATCH_MESSAGES = 128;
/** Spreads rate-limited publishers' phases evenly whatever their count (index × φ mod 1). */
const GOLDEN_RATIO_FRACTION = 0.618_033_988_75;
/** How often the drain and deadline conditions are checked, in ms. */
const CHECK_INTERVAL_MS = 50;

/** One fault, as reported in the figures. */
export interface Fault {
  role: ClientRole;
  index: number;
  phase: 'connect' | 'subscribe' | 'run';
  code: string;
  message: string;
}

/** Per-client figures. Latency is that of the messages this client received. */
export interface ClientRecord {
  index: number;
  role: ClientRole;
  clientId: string;
  connected: boolean;
  tcpMs: number | null;
  setupMs: number | null;
  error: string | null;
  sent: number;
  received: number;
  duplicates: number;
  reordered: number;
  lost: number;
  latencyUs: Summary | null;
}

/** What a shard hands back; everything is summable or concatenable across shards. */
export interface ShardResult {
  clients: ClientRecord[];
  counts: DeliveryCounts;
  latencyUs: Float64Array;
  published: number;
  bytesIn: number;
  bytesOut: number;
  pings: number;
  pongs: number;
  faults: Fault[];
  timedOut: boolean;
  /** process.hrtime of the last delivery, as a number of ns (0 when none); one clock for all threads. */
  lastDeliveryNs: number;
}

/** Setup outcome of one client, sent to the main thread to learn which publishers are live. */
export interface SetupRecord {
  role: ClientRole;
  index: number;
  connected: boolean;
}

/** Counters for the progress bar. */
export interface ShardProgress {
  connected: number;
  published: number;
  delivered: number;
}

class Client {
  readonly spec: ClientSpec;
  conn: LoadConnection | null = null;
  acct: ReceiverAccounting | null = null;
  tcpMs: number | null = null;
  setupMs: number | null = null;
  error: string | null = null;
  live = false;
  sent = 0;
  target = 0;
  pubDone = true;
  recvDone = true;
  awaitingEcho = false;
  yielded = false;
  echoTimer: NodeJS.Timeout | null = null;
  timer: NodeJS.Timeout | null = null;
  topicBuf: Buffer = Buffer.alloc(0);
  template: Buffer = Buffer.alloc(0);

  constructor(spec: ClientSpec) {
    this.spec = spec;
  }
}

export class Shard {
  readonly #plan: ShardPlan;
  readonly #clients: Client[];
  readonly #faults: Fault[] = [];
  #published = 0;
  #delivered = 0;
  #connected = 0;
  #pubsPending = 0;
  #recvPending = 0;
  #allPublished = false;
  #lastDeliveryMs = 0;
  #lastDeliveryNs = 0n;
  #startMs = 0;
  #running: { resolve: () => void; deadlineMs: number; check: NodeJS.Timeout } | null = null;
  #timedOut = false;
  /** Called once when every local publisher has finished (sent and, for QoS 1/2, acknowledged). */
  onPublished: () => void = () => {};

  constructor(plan: ShardPlan) {
    this.#plan = plan;
    this.#clients = plan.clients.map((spec) => new Client(spec));
  }

  progress(): ShardProgress {
    return { connected: this.#connected, published: this.#published, delivered: this.#delivered };
  }

  /** Connects every client and subscribes the receivers. Never rejects because of a client. */
  async setup(deadlineMs: number): Promise<SetupRecord[]> {
    const o = this.#plan.options;
    const perShard = Math.max(1, Math.ceil(o.connectConcurrency / o.workers));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < this.#clients.length && performance.now() < deadlineMs) {
        const c = this.#clients[next++];
        if (c !== undefined) await this.#setupClient(c);
      }
    };
    await Promise.all(Array.from({ length: Math.min(perShard, this.#clients.length) }, worker));
    return this.#clients.map((c) => ({ role: c.spec.role, index: c.spec.index, connected: c.live }));
  }

  async #setupClient(c: Client): Promise<void> {
    const o = this.#plan.options;
    const conn = new LoadConnection({
      host: o.host,
      port: o.port,
      clientId: c.spec.clientId,
      protocolVersion: o.protocolVersion,
      properties: o.properties,
      clean: o.clean,
      keepaliveS: o.keepaliveS,
      connectTimeoutMs: o.connectTimeoutMs,
      parser: o.parser,
    });
    c.conn = conn;
    try {
      const t = await conn.connect();
      c.tcpMs = t.tcpMs;
      c.setupMs = t.setupMs;
      this.#connected++;
    } catch (err) {
      this.#fault(c, 'connect', err);
      return;
    }
    conn.onClose = (err) => {
      if (err !== null) this.#fault(c, 'run', err);
      this.#clientEnded(c);
    };
    if (c.spec.filter !== undefined) {
      try {
        await conn.subscribe([c.spec.filter], o.qos);
      } catch (err) {
        this.#fault(c, 'subscribe', err);
        conn.destroy();
        return;
      }
    }
    c.live = !conn.closed;
  }

  #fault(c: Client, phase: Fault['phase'], err: unknown): void {
    const code = faultCode(err);
    c.error ??= code;
    this.#faults.push({
      role: c.spec.role,
      index: c.spec.index,
      phase,
      code,
      message: err instanceof Error ? err.message : String(err),
    });
  }

  /**
   * Runs the traffic. `livePublishers` are the publisher indices (of the whole run) whose
   * clients connected; receivers expect messages only from those.
   */
  run(livePublishers: readonly number[], deadlineMs: number): Promise<void> {
    const o = this.#plan.options;
    const live = new Set(livePublishers);
    this.#startMs = performance.now();
    this.#lastDeliveryMs = this.#startMs;
    const pingers = new Map(this.#clients.filter((c) => c.spec.role === 'ping' && c.live).map((c) => [c.spec.index, c]));
    for (const c of this.#clients) {
      if (!c.live || c.conn === null) continue;
      const conn = c.conn;
      const { role } = c.spec;
      if (c.spec.expectsFrom !== undefined) {
        const acct = new ReceiverAccounting(o.runId);
        for (const s of c.spec.expectsFrom) if (live.has(s)) acct.expect(s, o.messages);
        c.acct = acct;
        c.recvDone = acct.complete;
        if (!c.recvDone) this.#recvPending++;
        conn.onPublish = (payload, nowNs) => {
          acct.record(payload, nowNs);
          this.#delivered++;
          this.#lastDeliveryNs = nowNs;
          this.#lastDeliveryMs = performance.now();
          if (!c.recvDone && acct.complete) {
            c.recvDone = true;
            this.#recvPending--;
          }
          const pinger = pingers.get(c.spec.index);
          if (pinger !== undefined && pinger.awaitingEcho) {
            pinger.awaitingEcho = false;
            if (pinger.echoTimer !== null) clearTimeout(pinger.echoTimer);
            pinger.echoTimer = null;
            this.#pump(pinger);
          }
          if (c.recvDone) this.#maybeDone();
        };
      }
      if (role === 'pub' || role === 'ping') {
        c.target = o.messages;
        c.pubDone = false;
        this.#pubsPending++;
        c.topicBuf = Buffer.from(c.spec.topic ?? '');
        c.template = payloadTemplate(o.payloadBytes, o.runId, c.spec.index);
        conn.onAcked = () => this.#pump(c);
        conn.onDrain = () => this.#pump(c);
      }
      if (role === 'idle') this.#hold(c, deadlineMs);
    }
    return new Promise<void>((resolve) => {
      const check = setInterval(() => this.#maybeDone(), CHECK_INTERVAL_MS);
      this.#running = { resolve, deadlineMs, check };
      if (this.#pubsPending === 0) this.onPublished();
      for (const c of this.#clients) if (!c.pubDone) this.#pump(c);
      this.#maybeDone();
    });
  }

  /** Told by the main thread that every publisher of the run (all shards) has finished. */
  allPublished(): void {
    this.#allPublished = true;
    // The quiet period starts now at the earliest: deliveries may not have begun yet.
    this.#lastDeliveryMs = Math.max(this.#lastDeliveryMs, performance.now());
    this.#maybeDone();
  }

  /** Idle clients only hold their connection (the connection itself sends PINGREQ) until the hold ends. */
  #hold(c: Client, deadlineMs: number): void {
    const holdEnd = Math.min(deadlineMs, performance.now() + this.#plan.options.holdMs);
    c.pubDone = false;
    this.#pubsPending++;
    c.timer = setTimeout(() => this.#pubFinished(c), Math.max(0, holdEnd - performance.now()));
  }

  #pump(c: Client): void {
    const conn = c.conn;
    if (c.pubDone || conn === null || c.spec.role === 'idle' || c.yielded) return;
    if (conn.closed) {
      this.#pubFinished(c);
      return;
    }
    const o = this.#plan.options;
    const qos = o.qos;
    let batch = 0;
    while (c.sent < c.target) {
      if (qos > 0 && conn.inflight >= Math.min(o.inflight, conn.receiveMaximum)) return;
      if (conn.blocked) return;
      if (c.spec.role === 'ping' && c.awaitingEcho) return;
      if (o.ratePerClient > 0) {
        // Each publisher's schedule is offset by a different fraction of one interval, so N
        // rate-limited publishers do not all fire at the same instant (bursts of N).
        const phase = (c.spec.index * GOLDEN_RATIO_FRACTION) % 1;
        const dueMs = this.#startMs + ((c.sent + phase) * 1000) / o.ratePerClient;
        const wait = dueMs - performance.now();
        if (wait > 0) {
          if (c.timer === null) {
            c.timer = setTimeout(() => {
              c.timer = null;
              this.#pump(c);
            }, Math.max(1, wait));
          }
          return;
        }
      }
      if (batch++ >= PUBLISH_BATCH_MESSAGES) {
        c.yielded = true;
        setImmediate(() => {
          c.yielded = false;
          this.#pump(c);
        });
        return;
      }
      const seq = c.sent++;
      conn.publish(c.topicBuf, c.template, qos, (packet, at) => stampPayload(packet, at, seq, process.hrtime.bigint()));
      this.#published++;
      if (c.spec.role === 'ping') {
        c.awaitingEcho = true;
        // A lost echo must not stall the ping-pong: after drainMs the next message goes (the lost one is counted).
        c.echoTimer = setTimeout(() => {
          c.echoTimer = null;
          c.awaitingEcho = false;
          this.#pump(c);
        }, o.drainMs);
      }
    }
    if (qos === 0 || conn.inflight === 0) this.#pubFinished(c);
  }

  #pubFinished(c: Client): void {
    if (c.pubDone) return;
    c.pubDone = true;
    if (c.timer !== null) {
      clearInterval(c.timer);
      c.timer = null;
    }
    if (c.echoTimer !== null) clearTimeout(c.echoTimer);
    c.echoTimer = null;
    this.#pubsPending--;
    if (this.#pubsPending === 0) this.onPublished();
    this.#maybeDone();
  }

  #clientEnded(c: Client): void {
    if (!c.pubDone) this.#pubFinished(c);
    if (!c.recvDone) {
      c.recvDone = true;
      this.#recvPending--;
    }
    this.#maybeDone();
  }

  #maybeDone(): void {
    const r = this.#running;
    if (r === null) return;
    const now = performance.now();
    let done = this.#pubsPending === 0 && this.#recvPending === 0;
    if (!done && this.#pubsPending === 0 && this.#allPublished && now - this.#lastDeliveryMs >= this.#plan.options.drainMs) done = true;
    if (!done && now >= r.deadlineMs) {
      this.#timedOut = true;
      done = true;
    }
    if (!done) return;
    clearInterval(r.check);
    this.#running = null;
    r.resolve();
  }

  /** Closes every connection and returns the shard's figures. */
  async finish(): Promise<ShardResult> {
    const counts = zeroCounts();
    const latencies: Float64Array[] = [];
    const records: ClientRecord[] = [];
    let bytesIn = 0;
    let bytesOut = 0;
    for (const c of this.#clients) {
      if (c.timer !== null) clearInterval(c.timer);
      const cc = c.acct?.counts() ?? zeroCounts();
      addCounts(counts, cc);
      const lat = c.acct?.latencies() ?? new Float64Array(0);
      if (lat.length > 0) latencies.push(lat);
      bytesIn += c.conn?.bytesIn ?? 0;
      bytesOut += c.conn?.bytesOut ?? 0;
      records.push({
        index: c.spec.index,
        role: c.spec.role,
        clientId: c.spec.clientId,
        connected: c.setupMs !== null,
        tcpMs: c.tcpMs,
        setupMs: c.setupMs,
        error: c.error,
        sent: c.sent,
        received: cc.unique,
        duplicates: cc.duplicates,
        reordered: cc.reordered,
        lost: cc.lost,
        latencyUs: c.acct === null ? null : summarize(lat),
      });
    }
    await Promise.all(
      this.#clients.map((c) => {
        const conn = c.conn;
        if (conn === null) return undefined;
        conn.onClose = () => {};
        return this.#timedOut ? conn.destroy() : conn.close();
      }),
    );
    const total = new Float64Array(latencies.reduce((n, l) => n + l.length, 0));
    let at = 0;
    for (const l of latencies) {
      total.set(l, at);
      at += l.length;
    }
    return {
      clients: records,
      counts,
      latencyUs: total,
      published: this.#published,
      bytesIn,
      bytesOut,
      pings: this.#clients.reduce((n, c) => n + (c.conn?.pings ?? 0), 0),
      pongs: this.#clients.reduce((n, c) => n + (c.conn?.pongs ?? 0), 0),
      faults: this.#faults,
      timedOut: this.#timedOut,
      lastDeliveryNs: Number(this.#lastDeliveryNs),
    };
  }
}
