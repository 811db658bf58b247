/**
 * Broker options: one interface, frozen defaults with a reason each, and one resolveOptions()
 * that validates every field and names it in the error. The CLI flags and the config file both
 * produce a BrokerOptions; nothing else reads configuration.
 */
import { BrokerError } from './errors.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface BrokerOptions {
  /** Address to listen on. @default '127.0.0.1' */
  host?: string;
  /** TCP port; 0 picks a free one. @default 1883 */
  port?: number;
  /** Where the commit logs live. @default './data' */
  dataDir?: string;
  /** @default 'info' */
  logLevel?: LogLevel;
  /**
   * When an acknowledged message is on disk: 'batch' = fsync before PUBACK; a number = fsync
   * every that many ms (PUBACK once written to the OS); 'never' = leave it to the OS.
   * @default 'batch'
   */
  fsync?: 'batch' | 'never' | number;
  /**
   * When subscribers get a QoS 0/1 message: 'write' = once it is written to the OS (it then
   * survives a kill -9; its fsync runs meanwhile and still gates the PUBACK); 'sync' = only
   * after the fsync policy is met. QoS 2 messages always wait for the fsync.
   * @default 'write'
   */
  deliverAfter?: 'write' | 'sync';
  /**
   * With fsync 'batch' and deliverAfter 'write': a QoS 0 message (without RETAIN) gets no disk
   * write and no fsync of its own; subscribers get it from memory at once, and it is written and
   * synced with the next QoS 1/2 or RETAIN message of its topic, or after at most this many ms.
   * A kill -9 or power loss inside that window can lose it, which QoS 0 (at most once) allows.
   * 0 = write and fsync QoS 0 batches like the others.
   * @default 1000
   */
  qos0SyncMs?: number;
  /** Segment file size in bytes before a new one starts. @default 67108864 (64 MiB) */
  segmentBytes?: number;
  /** Delete a topic's oldest segments past this many bytes; 0 = unlimited. @default 0 */
  retentionBytes?: number;
  /** Delete a topic's segments older than this many hours; 0 = unlimited. @default 0 */
  retentionHours?: number;
  /**
   * With fsync 'batch': topic logs commit through one journal for the whole data directory, so
   * all topics written in one event-loop turn share one fdatasync instead of two each; the
   * topic files are synced by the journal's checkpoints (commitlog/journal.ts). Off: each
   * topic's round fdatasyncs its own two files. @default true
   */
  journal?: boolean;
  /**
   * With the journal: a fdatasync round that no publisher is waiting on (publishers that keep
   * sending before their PUBACKs, or that publish rarely) starts no sooner than this many ms
   * after the previous one, so more messages share it; their PUBACKs wait up to that much (plus
   * the timer's 1 ms granularity) longer. A publisher that sends its next message within this
   * time of a PUBACK is waited on and never delayed. 0 = every round starts at once. Deliveries
   * do not wait for it under deliverAfter 'write' (commitlog/journal.ts). @default 1
   */
  commitDelayMs?: number;
  /**
   * File descriptors the topic logs keep open (an LRU; each active topic needs two). Past it,
   * writes reopen files: with 1,000 active topics and 1024 descriptors that doubled the CPU per
   * message. 0 = half the process's open-file limit (at most 262144; 1024 if unknown).
   * @default 0
   */
  maxOpenFiles?: number;
  /** Largest MQTT packet accepted, judged from its fixed header. @default 1048576 (1 MiB) */
  maxPacketBytes?: number;
  /** Outbound QoS 1/2 messages awaiting acknowledgement per client. @default 256 */
  maxInflight?: number;
  /** Highest QoS granted to subscriptions. @default 2 */
  maxQos?: 0 | 1 | 2;
  /** Seconds between $SYS/broker/... updates; 0 turns them off. @default 10 */
  sysIntervalSec?: number;
  /** Milliseconds a new connection may take to send CONNECT. @default 10000 */
  connectTimeoutMs?: number;
  /** TCP listen backlog. @default 1024 */
  backlog?: number;
  /** Unacknowledged QoS 1/2 PUBLISHes a 5.0 client may send (advertised Receive Maximum). @default 1024 */
  receiveMaximum?: number;
  /** Topic aliases a 5.0 client may use towards the broker (advertised Topic Alias Maximum). @default 1024 */
  topicAliasMaximum?: number;
  /** Longest keepalive granted to 5.0 clients, in seconds; 0 = what the client asks. @default 0 */
  maxKeepaliveSec?: number;
}

export type ResolvedOptions = Required<BrokerOptions>;

export const DEFAULT_OPTIONS: Readonly<ResolvedOptions> = Object.freeze({
  host: '127.0.0.1', // loopback until the operator decides otherwise
  port: 1883, // the IANA MQTT port
  dataDir: './data',
  logLevel: 'info',
  fsync: 'batch', // acknowledged = on disk, the promise mosquitto does not keep on kill -9
  deliverAfter: 'write', // the fsync (0.3-0.5 ms here) stays out of the publish-to-subscriber latency
  qos0SyncMs: 1000, // a QoS 0 flood of 50k messages needed 46 fdatasyncs, 200 slow topics 8180 for 30k
  segmentBytes: 64 * 1024 * 1024, // few files per topic, cheap whole-segment retention
  retentionBytes: 0,
  retentionHours: 0,
  journal: true, // one fdatasync per turn for all topics (QoS 1 p50 1.0-1.5 ms with 200 topics, against 26-80 ms without)
  commitDelayMs: 1, // ping-pong 131 -> 83 us of CPU per round trip, 1000-device fleet -15% (notes/2026-11-24-commit-delay.md)
  maxOpenFiles: 0, // from the open-file limit at start (src/server/fd-limits.ts)
  maxPacketBytes: 1024 * 1024, // IoT payloads are small; refuse megabyte floods early (EMQX uses 1 MiB too)
  maxInflight: 256, // deep enough for loopback throughput, small enough to bound redelivery
  maxQos: 2,
  sysIntervalSec: 10, // mosquitto's default $SYS period
  connectTimeoutMs: 10_000,
  backlog: 1024, // mosquitto's 100 causes ~1 s SYN retries in connection storms
  receiveMaximum: 1024, // deep enough for pipelined publishers, bounded per connection
  topicAliasMaximum: 1024, // one short string per alias per connection
  maxKeepaliveSec: 0, // accept the client's keepalive (Server Keep Alive only when configured)
});

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function invalid(field: string, expected: string, got: unknown): never {
  throw new BrokerError('ERR_CONFIG_INVALID', `option '${field}' must be ${expected}, got ${JSON.stringify(got)}`);
}

function int(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) invalid(field, `an integer in ${min}..${max}`, v);
  return v;
}

/** Validates `input` field by field and fills in defaults. Unknown fields are refused. */
export function resolveOptions(input: BrokerOptions = {}): ResolvedOptions {
  const known = new Set(Object.keys(DEFAULT_OPTIONS));
  for (const key of Object.keys(input)) if (!known.has(key)) invalid(key, `one of ${[...known].join(', ')} (unknown option)`, key);
  const o = { ...DEFAULT_OPTIONS, ...stripUndefined(input) };
  if (typeof o.host !== 'string' || o.host.length === 0) invalid('host', 'a non-empty string', o.host);
  int('port', o.port, 0, 65535);
  if (typeof o.dataDir !== 'string' || o.dataDir.length === 0) invalid('dataDir', 'a non-empty path', o.dataDir);
  if (!LOG_LEVELS.includes(o.logLevel)) invalid('logLevel', `one of ${LOG_LEVELS.join(', ')}`, o.logLevel);
  if (o.fsync !== 'batch' && o.fsync !== 'never') int('fsync', o.fsync, 1, 3_600_000);
  if (o.deliverAfter !== 'write' && o.deliverAfter !== 'sync') invalid('deliverAfter', "'write' or 'sync'", o.deliverAfter);
  int('qos0SyncMs', o.qos0SyncMs, 0, 3_600_000);
  int('segmentBytes', o.segmentBytes, 4096, 2 ** 32 - 1);
  int('retentionBytes', o.retentionBytes, 0, Number.MAX_SAFE_INTEGER);
  int('retentionHours', o.retentionHours, 0, 24 * 365 * 100);
  if (typeof o.journal !== 'boolean') invalid('journal', 'true or false', o.journal);
  int('commitDelayMs', o.commitDelayMs, 0, 1000);
  if (o.maxOpenFiles !== 0) int('maxOpenFiles', o.maxOpenFiles, 4, 1_048_576);
  int('maxPacketBytes', o.maxPacketBytes, 64, 268_435_460); // the protocol's own ceiling
  int('maxInflight', o.maxInflight, 1, 65535);
  if (o.maxQos !== 0 && o.maxQos !== 1 && o.maxQos !== 2) invalid('maxQos', '0, 1 or 2', o.maxQos);
  int('sysIntervalSec', o.sysIntervalSec, 0, 86_400);
  int('connectTimeoutMs', o.connectTimeoutMs, 100, 600_000);
  int('backlog', o.backlog, 1, 65535);
  int('receiveMaximum', o.receiveMaximum, 1, 65535);
  int('topicAliasMaximum', o.topicAliasMaximum, 0, 65535);
  int('maxKeepaliveSec', o.maxKeepaliveSec, 0, 65535);
  return Object.freeze(o);
}

function stripUndefined(o: BrokerOptions): BrokerOptions {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as BrokerOptions;
}
