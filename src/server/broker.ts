/**
 * The broker process: opens the log store and the router, listens for TCP connections, owns
 * the client-id registry (takeover), the keepalive sweep and the $SYS publisher, and shuts all
 * of it down in order (stop accepting → close clients → commit pending appends → close logs).
 */
import { access, constants as fsConstants, mkdir } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { LogStore, type FileOps, type LogOptions } from '../../commitlog/index.js';
import { Router, type QoS } from '../../router/index.js';
import type { AuthMethod } from '../auth/auth-method.js';
import { resolveOptions, type BrokerOptions, type ResolvedOptions } from '../config.js';
import { Connection, type ConnectionHost, type ConnectionLogger, type PendingWill } from '../connection/connection.js';
import { BrokerError } from '../errors.js';
import { DataDirLock } from './data-dir-lock.js';
import { defaultLogFds, readFdLimits } from './fd-limits.js';

/** The logger the broker writes to: pino's shape (pino is what the CLI passes). */
export interface BrokerLogger extends ConnectionLogger {
  error(obj: object, msg: string): void;
}

const SWEEP_INTERVAL_MS = 250;
/** Socket bytes queued before the router stops pulling for a client. */
const WRITE_HIGH_WATER_BYTES = 1024 * 1024;
const SILENT: BrokerLogger = { debug() {}, info() {}, warn() {}, error() {} };
const VERSION = '0.1.0';

/** What cannot come from a config file: code the embedding program plugs in. */
export interface BrokerPlugins {
  /** MQTT 5 enhanced authentication methods clients may name in CONNECT. */
  authMethods?: readonly AuthMethod[];
  /** The file operations the commit logs use (fault injection in tests, other storage). */
  fileOps?: FileOps;
}

export class Broker {
  readonly options: ResolvedOptions;
  readonly router: Router;
  readonly #store: LogStore;
  /** Held from before the store opens until after it closes. */
  readonly #lock: DataDirLock;
  readonly #server: Server;
  readonly #logger: BrokerLogger;
  readonly #clients = new Map<string, Connection>();
  readonly #connections = new Set<Connection>();
  readonly #host: ConnectionHost;
  readonly #startedAt = Date.now();
  /** Wills waiting out their delay, by client id [MQTT-3.1.3-9]. */
  readonly #delayedWills = new Map<string, { will: PendingWill; timer: NodeJS.Timeout }>();
  #sweep: NodeJS.Timeout | null = null;
  #sys: NodeJS.Timeout | null = null;
  #closing: Promise<void> | null = null;
  /** Connections ever accepted. */
  totalConnections = 0;

  private constructor(options: ResolvedOptions, store: LogStore, router: Router, lock: DataDirLock, logger: BrokerLogger, plugins: BrokerPlugins) {
    this.options = options;
    this.#store = store;
    this.#lock = lock;
    this.router = router;
    this.#logger = logger;
    const clients = this.#clients;
    const connections = this.#connections;
    this.#host = {
      router,
      logger,
      limits: {
        maxPacketBytes: options.maxPacketBytes,
        maxQos: options.maxQos,
        connectTimeoutMs: options.connectTimeoutMs,
        writeHighWaterBytes: WRITE_HIGH_WATER_BYTES,
        receiveMaximum: options.receiveMaximum,
        topicAliasMaximum: options.topicAliasMaximum,
        maxKeepaliveSec: options.maxKeepaliveSec,
      },
      will: (clientId, will, delaySec, sessionExpirySec) => this.#scheduleWill(clientId, will, delaySec, sessionExpirySec),
      resumed: (clientId) => this.#cancelWill(clientId),
      counters: { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0 },
      authMethods: new Map((plugins.authMethods ?? []).map((m) => [m.name, m])),
      claim(clientId, conn) {
        const previous = clients.get(clientId);
        clients.set(clientId, conn);
        return previous;
      },
      released(conn) {
        connections.delete(conn);
        if (conn.clientId !== '' && clients.get(conn.clientId) === conn) clients.delete(conn.clientId);
      },
    };
    this.#server = createServer({ noDelay: true }, (socket) => this.#accept(socket));
    // a session that ends (expiry, or replaced by a clean start) sends its delayed Will now
    router.onSessionEnd = (clientId) => this.#flushWill(clientId);
  }

  /**
   * A Will goes out after min(Will Delay, Session Expiry) — the session's end sends it early —
   * unless a connection resumes the session first [MQTT-3.1.3-9].
   */
  #scheduleWill(clientId: string, will: PendingWill, delaySec: number, sessionExpirySec: number): void {
    this.#cancelWill(clientId);
    const delay = sessionExpirySec < 0 ? delaySec : Math.min(delaySec, sessionExpirySec);
    if (delay <= 0) {
      this.#publishWill(clientId, will);
      return;
    }
    const timer = setTimeout(() => this.#flushWill(clientId), delay * 1000);
    timer.unref();
    this.#delayedWills.set(clientId, { will, timer });
  }

  #cancelWill(clientId: string): void {
    const pending = this.#delayedWills.get(clientId);
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    this.#delayedWills.delete(clientId);
  }

  #flushWill(clientId: string): void {
    const pending = this.#delayedWills.get(clientId);
    if (pending === undefined) return;
    this.#cancelWill(clientId);
    this.#publishWill(clientId, pending.will);
  }

  #publishWill(clientId: string, will: PendingWill): void {
    try {
      const router = this.router;
      router.publish(null, router.intern(will.topic), will.qos, will.retain, will.payload, will.properties, will.expiry, 0, null);
    } catch (err) {
      this.#logger.warn({ err, clientId }, 'will message not published');
    }
  }

  /** Validates options, opens the data directory and starts listening. */
  static async start(input: BrokerOptions = {}, logger: BrokerLogger = SILENT, plugins: BrokerPlugins = {}): Promise<Broker> {
    const options = resolveOptions(input);
    const dataDir = resolve(options.dataDir);
    try {
      await mkdir(dataDir, { recursive: true });
      await access(dataDir, fsConstants.W_OK | fsConstants.R_OK);
    } catch (err) {
      throw new BrokerError('ERR_DATA_DIR_UNWRITABLE', `data directory ${dataDir} cannot be created or written: ${(err as Error).message}`, { cause: err });
    }
    const fdLimits = readFdLimits();
    const maxOpenFiles = options.maxOpenFiles > 0 ? options.maxOpenFiles : defaultLogFds(fdLimits);
    if (fdLimits !== null && maxOpenFiles > fdLimits.soft * 0.75) {
      logger.warn({ maxOpenFiles, fdSoftLimit: fdLimits.soft }, 'maxOpenFiles leaves few descriptors of the open-file limit for client connections');
    }
    // before anything reads or writes a log: a second broker on these files would corrupt them
    const lock = await DataDirLock.acquire(dataDir);
    const opening = performance.now();
    let store: LogStore;
    try {
      store = await LogStore.open(dataDir, { maxOpenFiles, journal: options.journal, commitDelayMs: options.commitDelayMs, ...(plugins.fileOps === undefined ? {} : { fileOps: plugins.fileOps }) });
    } catch (err) {
      await lock.release();
      throw err;
    }
    if (store.journalReplay.files > 0) {
      // an unclean stop left a journal: its committed frames are back in the topic files
      logger.info({ ...store.journalReplay, ms: Math.round(performance.now() - opening) }, 'journal replayed');
    }
    let router: Router;
    try {
      router = await Router.open(store, {
        maxInflight: options.maxInflight,
        topicLog: topicLogOptions(options),
        deliverUnsynced: options.deliverAfter === 'write',
        lazySyncMs: options.qos0SyncMs,
        logger,
      });
    } catch (err) {
      await undoStart(null, store, lock);
      throw err;
    }
    const broker = new Broker(options, store, router, lock, logger, plugins);
    try {
      await broker.#listen();
    } catch (err) {
      await undoStart(router, store, lock);
      throw err;
    }
    broker.#sweep = setInterval(() => broker.#expire(), SWEEP_INTERVAL_MS);
    broker.#sweep.unref();
    if (options.sysIntervalSec > 0) {
      broker.#sys = setInterval(() => broker.publishSys(), options.sysIntervalSec * 1000);
      broker.#sys.unref();
    }
    logger.info({ host: options.host, port: broker.port, dataDir, fsync: options.fsync, journal: options.journal, maxOpenFiles }, 'mqlog listening');
    return broker;
  }

  #listen(): Promise<void> {
    const { host, port, backlog } = this.options;
    return new Promise((resolvePromise, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        this.#server.off('listening', onListening);
        if (err.code === 'EADDRINUSE') {
          reject(new BrokerError('ERR_LISTEN_ADDRESS_IN_USE', `${host}:${port} is already in use (another broker running?); choose another with --port`, { cause: err }));
        } else {
          reject(new BrokerError('ERR_LISTEN_FAILED', `cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
        }
      };
      const onListening = () => {
        this.#server.off('error', onError);
        this.#server.on('error', (err) => this.#logger.error({ err }, 'listener error'));
        resolvePromise();
      };
      this.#server.once('error', onError);
      this.#server.once('listening', onListening);
      this.#server.listen({ host, port, backlog });
    });
  }

  /** The port actually bound (useful with port 0). */
  get port(): number {
    const addr = this.#server.address();
    return addr !== null && typeof addr === 'object' ? addr.port : this.options.port;
  }

  /** Connected clients. */
  get clientCount(): number {
    return this.#clients.size;
  }

  #accept(socket: Socket): void {
    if (this.#closing !== null) {
      socket.destroy();
      return;
    }
    this.totalConnections++;
    const conn = new Connection(socket, this.#host, `${socket.remoteAddress}:${socket.remotePort}`);
    this.#connections.add(conn);
  }

  #expire(): void {
    const now = Date.now();
    for (const conn of this.#connections) conn.expire(now);
  }

  /** Publishes the $SYS/broker/... statistics as retained QoS 0 messages. */
  publishSys(): void {
    const s = this.router.stats;
    const c = this.#host.counters;
    const entries: Array<[string, string | number]> = [
      ['version', `mqlog ${VERSION}`],
      ['uptime', `${Math.floor((Date.now() - this.#startedAt) / 1000)} seconds`],
      ['clients/connected', this.#clients.size],
      ['clients/total', this.router.sessionCount],
      ['messages/received', s.messagesIn],
      ['messages/sent', s.messagesOut],
      ['bytes/received', c.bytesIn],
      ['bytes/sent', c.bytesOut],
      ['publish/bytes/received', s.bytesIn],
      ['publish/bytes/sent', s.bytesOut],
      ['subscriptions/count', s.subscriptions],
      ['retained messages/count', s.retained],
      ['topics/count', s.topics],
    ];
    for (const [name, value] of entries) {
      const id = this.router.intern(`$SYS/broker/${name}`);
      this.router.publish(null, id, 0 as QoS, true, Buffer.from(String(value)), null, -1, 0, null);
    }
  }

  /** Graceful shutdown: stop accepting, close clients, commit pending appends, close the logs. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    if (this.#sweep !== null) clearInterval(this.#sweep);
    if (this.#sys !== null) clearInterval(this.#sys);
    for (const { timer } of this.#delayedWills.values()) clearTimeout(timer);
    this.#delayedWills.clear();
    const closed = new Promise<void>((r) => this.#server.close(() => r()));
    for (const conn of [...this.#connections]) conn.shutdown();
    // The store closes even if the router's close failed (a log's last flush), and the lock
    // goes only after the store's close has settled: a broker that starts then finds every
    // file closed. The first failure is what close() rejects with.
    let failure: unknown = null;
    await this.router.close().catch((err: unknown) => (failure = err));
    await this.#store.close().catch((err: unknown) => (failure ??= err));
    await this.#lock.release();
    await closed;
    if (failure !== null) throw failure;
    this.#logger.info({}, 'mqlog stopped');
  }
}

/**
 * Closes what a failed start opened, the lock last. Their own failures are dropped: the caller
 * rethrows the start's error, which is the one the operator needs.
 */
async function undoStart(router: Router | null, store: LogStore, lock: DataDirLock): Promise<void> {
  if (router !== null) await router.close().catch(() => undefined);
  await store.close().catch(() => undefined);
  await lock.release();
}

function topicLogOptions(o: ResolvedOptions): LogOptions {
  const log: LogOptions = {
    segmentBytes: o.segmentBytes,
    durability: o.fsync === 'batch' ? { mode: 'batch' } : o.fsync === 'never' ? { mode: 'never' } : { mode: 'interval', intervalMs: o.fsync },
  };
  if (o.retentionBytes > 0) log.retentionBytes = o.retentionBytes;
  if (o.retentionHours > 0) log.retentionMs = o.retentionHours * 3_600_000;
  return log;
}
