/**
 * Options of one load run: the interface every entry point (CLI, compare driver, tests)
 * produces, the frozen defaults with the reason for each value, and `resolveLoadOptions()`,
 * the only place options are validated. Invalid values throw ERR_LOAD_INVALID_OPTION naming the
 * field and the accepted range.
 */
import { LoadClientError } from './errors.js';
import { HEADER_BYTES } from './payload.js';

/** The traffic shapes the client can produce. */
export const SCENARIOS = ['pairs', 'fanout', 'fanin', 'latency', 'idle', 'scale'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** How the receive path frames incoming bytes. */
export const PARSERS = ['mqtt-packet', 'scan'] as const;
export type ParserKind = (typeof PARSERS)[number];

export type QoS = 0 | 1 | 2;
/** MQTT protocol level on the wire: 4 is 3.1.1, 5 is 5.0. */
export type ProtocolLevel = 4 | 5;

/** Options of one run. Every field is optional; see {@link LOAD_DEFAULTS}. */
export interface LoadOptions {
  /** Broker address. Only loopback addresses are accepted: load never leaves the machine. @default '127.0.0.1' */
  host?: string;
  /** Broker TCP port. @default 1883 */
  port?: number;
  /** Traffic shape. @default 'pairs' */
  scenario?: ScenarioName;
  /**
   * Number of clients: pairs = N publishers and N subscribers, fanout = N subscribers,
   * fanin = N publishers, latency = N ping-pong clients, idle = N connections. @default 1
   */
  clients?: number;
  /** Messages each publishing client sends. @default 1000 */
  messages?: number;
  /** QoS of every PUBLISH and SUBSCRIBE. @default 0 */
  qos?: QoS;
  /** Payload size in bytes, at least the 24-byte header every message carries. @default 64 */
  payloadBytes?: number;
  /** Topic pattern: `{run}` becomes the run id, `{i}` the publisher index. @default 'mqlog-bench/{run}/{i}' */
  topic?: string;
  /** Publish rate per client in messages per second; 0 = as fast as flow control allows. @default 0 */
  ratePerClient?: number;
  /** Unacknowledged QoS 1/2 messages a publisher may have outstanding. @default 64 */
  inflight?: number;
  /** Clean session (3.1.1) / clean start with session expiry 0 (5.0). @default true */
  clean?: boolean;
  /** 4 = MQTT 3.1.1, 5 = MQTT 5.0. @default 4 */
  protocolVersion?: ProtocolLevel;
  /**
   * 5.0 only: every PUBLISH carries typical properties (content type, message expiry, one user
   * property), to measure what properties cost the broker. @default false
   */
  properties?: boolean;
  /** Worker threads the clients are spread over; 1 runs them on the main thread. @default 1 */
  workers?: number;
  /** Receive-path framing: mqtt-packet's parser, or the PUBLISH framing scanner. @default 'scan' */
  parser?: ParserKind;
  /** Time allowed for TCP connect plus CONNACK, per client, in ms. @default 10000 */
  connectTimeoutMs?: number;
  /** Connection attempts in flight at once (a storm larger than the listen backlog measures SYN retries). @default 64 */
  connectConcurrency?: number;
  /** MQTT keepalive in seconds; idle connections send PINGREQ at this interval. @default 30 */
  keepaliveS?: number;
  /** How long the idle scenario holds its connections, in ms. @default 5000 */
  holdMs?: number;
  /** Quiet time after the last publisher finished before missing messages count as lost, in ms. @default 2000 */
  drainMs?: number;
  /** Hard stop for one run (connect, traffic, drain), in ms. @default 120000 */
  timeLimitMs?: number;
  /** Client id prefix; ids are `<prefix>-<role><index>`, fixed so persistent sessions resume. @default 'mqlog-bench' */
  clientPrefix?: string;
  /** Broker process id; when set, its CPU and RSS are read from /proc before and after. */
  brokerPid?: number;
  /** Raise the soft fd limit to the hard limit when the run needs more descriptors. @default true */
  raiseFdLimit?: boolean;
  /** Run id written into every payload and topic; random when omitted. */
  runId?: number;
}

export type ResolvedLoadOptions = Required<Omit<LoadOptions, 'brokerPid'>> & { brokerPid: number | null };

/** Defaults, each with the reason it was chosen. */
export const LOAD_DEFAULTS = Object.freeze({
  host: '127.0.0.1', // loopback only: the load must never reach another machine
  port: 1883, // MQTT's registered port
  scenario: 'pairs' as ScenarioName, // the simplest end-to-end shape
  clients: 1,
  messages: 1000, // long enough for stable percentiles, short enough to finish in a second
  qos: 0 as QoS,
  payloadBytes: 64, // issue 4's small-message size
  topic: 'mqlog-bench/{run}/{i}', // the run id keeps concurrent runs on one broker apart
  ratePerClient: 0,
  inflight: 64, // enough to keep a loopback pipe full without flooding the broker's queues
  clean: true,
  protocolVersion: 4 as ProtocolLevel,
  properties: false, // bare 5.0 PUBLISHes unless asked
  workers: 1,
  parser: 'scan' as ParserKind, // measured faster than mqtt-packet's parser (notes/load-client.md)
  connectTimeoutMs: 10_000, // above Linux's 1 s and 3 s SYN retry steps
  connectConcurrency: 64, // below the common listen backlog of 100 (mosquitto's default)
  keepaliveS: 30,
  holdMs: 5_000,
  drainMs: 2_000,
  timeLimitMs: 120_000,
  clientPrefix: 'mqlog-bench',
  raiseFdLimit: true,
});

/** Largest accepted values: keep the load bounded even when a flag has a typo. */
export const MAX_CLIENTS = 100_000;
export const MAX_MESSAGES_PER_CLIENT = 10_000_000;
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;
export const MAX_WORKERS = 64;
export const MAX_TIME_LIMIT_MS = 3_600_000;

function invalid(field: string, detail: string): LoadClientError {
  return new LoadClientError('ERR_LOAD_INVALID_OPTION', `option '${field}' ${detail}`);
}

function int(field: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalid(field, `must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

function oneOf<T>(field: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value)) throw invalid(field, `must be one of ${allowed.join(', ')}, got ${String(value)}`);
  return value;
}

/** True for addresses that stay on this machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Fills defaults and validates every field; throws ERR_LOAD_INVALID_OPTION naming the field. */
export function resolveLoadOptions(opts: LoadOptions = {}): ResolvedLoadOptions {
  const o = { ...LOAD_DEFAULTS, ...opts };
  if (!isLoopback(o.host)) throw invalid('host', `must be a loopback address (127.x.x.x, ::1, localhost), got ${o.host}`);
  int('port', o.port, 1, 65_535);
  oneOf('scenario', o.scenario, SCENARIOS);
  int('clients', o.clients, 1, MAX_CLIENTS);
  int('messages', o.messages, 1, MAX_MESSAGES_PER_CLIENT);
  oneOf<number>('qos', o.qos, [0, 1, 2]);
  int('payloadBytes', o.payloadBytes, HEADER_BYTES, MAX_PAYLOAD_BYTES);
  if (o.topic.length === 0 || /[+#\u0000]/.test(o.topic)) throw invalid('topic', 'must be non-empty without wildcards or NUL');
  if (!Number.isFinite(o.ratePerClient) || o.ratePerClient < 0) throw invalid('ratePerClient', `must be >= 0, got ${String(o.ratePerClient)}`);
  int('inflight', o.inflight, 1, 65_535);
  if (typeof o.clean !== 'boolean') throw invalid('clean', 'must be a boolean');
  oneOf<number>('protocolVersion', o.protocolVersion, [4, 5]);
  if (typeof o.properties !== 'boolean') throw invalid('properties', 'must be a boolean');
  if (o.properties && o.protocolVersion !== 5) throw invalid('properties', 'needs MQTT 5 (--mqtt 5)');
  int('workers', o.workers, 1, MAX_WORKERS);
  oneOf('parser', o.parser, PARSERS);
  int('connectTimeoutMs', o.connectTimeoutMs, 1, MAX_TIME_LIMIT_MS);
  int('connectConcurrency', o.connectConcurrency, 1, MAX_CLIENTS);
  int('keepaliveS', o.keepaliveS, 0, 65_535);
  int('holdMs', o.holdMs, 0, MAX_TIME_LIMIT_MS);
  int('drainMs', o.drainMs, 0, MAX_TIME_LIMIT_MS);
  int('timeLimitMs', o.timeLimitMs, 1, MAX_TIME_LIMIT_MS);
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(o.clientPrefix)) throw invalid('clientPrefix', 'must be 1-40 characters of [A-Za-z0-9_-]');
  if (o.brokerPid !== undefined) int('brokerPid', o.brokerPid, 1, 2 ** 31 - 1);
  if (typeof o.raiseFdLimit !== 'boolean') throw invalid('raiseFdLimit', 'must be a boolean');
  const runId = o.runId ?? Math.floor(Math.random() * 0xffff_ffff);
  int('runId', runId, 0, 0xffff_ffff);
  return { ...o, runId, brokerPid: o.brokerPid ?? null };
}
