/**
 * The figures of one run: built from the shards' results (buildFigures), printed as one JSON
 * object (`--json`) or as a table a person reads (formatFigures). The JSON shape is what
 * the compare driver and the tests consume; fields are only ever added.
 */
import { addCounts, type DeliveryCounts, zeroCounts } from './accounting.js';
import type { FdLimitReport } from './fd-limit.js';
import type { ResolvedLoadOptions } from './options.js';
import { clockTicksPerSecond, type ProcSample } from './proc.js';
import type { ClientRecord, Fault, ShardResult } from './shard.js';
import { summarize, type Summary } from './stats.js';

/** Share of the usable cores above which the client itself is called saturated. */
const CLIENT_SATURATED_SHARE = 0.85;
/** Below this many clock ticks of broker CPU, the per-message figure is called coarse (±1 tick = ±5%). */
const BROKER_CPU_MIN_TICKS = 20;
/** Faults listed one by one in the figures; the rest are only counted. */
const FAULT_SAMPLE_MAX = 20;

export interface LoadFigures {
  tool: 'mqlog-bench';
  date: string;
  scenario: string;
  target: { host: string; port: number };
  settings: {
    clients: number;
    messagesPerClient: number;
    qos: number;
    payloadBytes: number;
    protocolVersion: number;
    ratePerClient: number;
    inflight: number;
    clean: boolean;
    workers: number;
    parser: string;
    runId: number;
  };
  connect: {
    attempted: number;
    connected: number;
    failed: number;
    /** Failed clients by error code (EMFILE, ECONNREFUSED, ERR_LOAD_CONNECT_TIMEOUT, ...). */
    errors: Record<string, number>;
    /** TCP connect + CONNACK, per connected client, ms. */
    setupMs: Summary;
    tcpMs: Summary;
    phaseMs: number;
  };
  messages: DeliveryCounts & { published: number };
  /** End-to-end latency (ping-pong: round trip) per delivered message, µs. */
  latencyUs: Summary;
  throughput: {
    /** From the start of traffic to the last delivery, ms. */
    durationMs: number;
    deliveredPerSec: number;
    publishedPerSec: number;
    deliveredMBPerSec: number;
  };
  clientCpu: {
    userUs: number;
    systemUs: number;
    percentOfOneCore: number;
    usableCores: number;
    saturated: boolean;
  };
  broker: null | {
    pid: number;
    cpuUs: number;
    cpuUsPerDelivered: number | null;
    /** Where cpuUs came from: per-thread schedstat (ns) or stat (clock ticks). */
    cpuSource: 'schedstat' | 'stat';
    /** Resolution of cpuUs: 1 µs (schedstat) or one clock tick (stat). */
    cpuResolutionUs: number;
    rssBytesBefore: number;
    rssBytesAfter: number;
  };
  fd: FdLimitReport;
  keepalive: { pings: number; pongs: number };
  faults: { total: number; byCode: Record<string, number>; sample: Fault[] };
  timedOut: boolean;
  /** Every expected message arrived once, no client failed, no time limit hit. */
  complete: boolean;
  /** Plain-language statements about the run (saturation, losses, faults, fd limits). */
  notes: string[];
  /** Per-client rows (the scale profile uses them). */
  clients: ClientRecord[];
}

export interface FigureInputs {
  opts: ResolvedLoadOptions;
  fd: FdLimitReport;
  results: ShardResult[];
  setupPhaseMs: number;
  trafficMs: number;
  trafficWallMs: number;
  cpu: NodeJS.CpuUsage;
  usableCores: number;
  brokerBefore: ProcSample | null;
  brokerAfter: ProcSample | null;
}

function countBy<T>(items: readonly T[], key: (t: T) => string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const it of items) {
    const k = key(it);
    if (k !== null) out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

function concat(arrays: Float64Array[]): Float64Array {
  const out = new Float64Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

const round = (v: number, digits = 3): number => Number(v.toFixed(digits));

export function buildFigures(i: FigureInputs): LoadFigures {
  const { opts, results } = i;
  const clients = results.flatMap((r) => r.clients).sort((a, b) => (a.role === b.role ? a.index - b.index : a.role < b.role ? -1 : 1));
  const faults = results.flatMap((r) => r.faults);
  const counts = zeroCounts();
  for (const r of results) addCounts(counts, r.counts);
  const published = results.reduce((n, r) => n + r.published, 0);
  const connected = clients.filter((c) => c.connected);
  const failed = clients.filter((c) => !c.connected);
  const latencyUs = summarize(concat(results.map((r) => r.latencyUs)));
  const seconds = i.trafficMs / 1000;
  const cpuUs = i.cpu.user + i.cpu.system;
  const pctOneCore = (cpuUs / 1000 / Math.max(0.001, i.trafficWallMs)) * 100;
  const capacityCores = Math.max(1, Math.min(opts.workers, i.usableCores));
  const saturated = pctOneCore >= CLIENT_SATURATED_SHARE * 100 * capacityCores;
  const timedOut = results.some((r) => r.timedOut);
  let broker: LoadFigures['broker'] = null;
  if (opts.brokerPid !== null && i.brokerBefore !== null && i.brokerAfter !== null) {
    const used = i.brokerAfter.cpuUs - i.brokerBefore.cpuUs;
    broker = {
      pid: opts.brokerPid,
      cpuUs: round(used, 0),
      cpuUsPerDelivered: counts.unique > 0 ? round(used / counts.unique) : null,
      cpuSource: i.brokerAfter.cpuSource,
      cpuResolutionUs: i.brokerAfter.cpuSource === 'schedstat' ? 1 : 1e6 / clockTicksPerSecond(),
      rssBytesBefore: i.brokerBefore.rssBytes,
      rssBytesAfter: i.brokerAfter.rssBytes,
    };
  }
  const notes: string[] = [];
  if (saturated) {
    notes.push(
      `the load client is saturated (${pctOneCore.toFixed(0)}% of one core on ${capacityCores} usable core(s)): ` +
        'throughput and latency measure the client as much as the broker; add --workers or compare broker CPU per message',
    );
  }
  if (failed.length > 0) {
    const by = Object.entries(countBy(failed, (c) => c.error ?? 'EUNKNOWN')).map(([k, v]) => `${k} ×${v}`);
    notes.push(`${connected.length} of ${clients.length} clients connected; failures: ${by.join(', ')}`);
  }
  if (failed.some((c) => c.error === 'EMFILE') || i.fd.advice !== null) {
    notes.push(i.fd.advice ?? `ran out of file descriptors at a soft limit of ${i.fd.soft} (hard ${i.fd.hard})`);
  }
  if (i.fd.raisedFrom !== null) notes.push(`raised the soft fd limit from ${i.fd.raisedFrom} to ${i.fd.soft} for ${i.fd.needed} descriptors`);
  const dropped = faults.filter((f) => f.phase === 'run');
  if (dropped.length > 0) {
    notes.push(
      `${dropped.length} connection(s) ended during the run (${Object.entries(countBy(dropped, (f) => f.code)).map(([c, n]) => `${c} ×${n}`).join(', ')})` +
        (opts.qos > 0 && opts.protocolVersion === 4
          ? `; some brokers drop 3.1.1 clients that exceed their inflight limit (mosquitto: max_inflight_messages, default 20) — try --inflight 20 or --mqtt 5, whose Receive Maximum the client honours`
          : ''),
    );
  }
  if (counts.lost > 0) notes.push(`${counts.lost} of ${counts.expected} expected deliveries never arrived`);
  if (counts.duplicates > 0) notes.push(`${counts.duplicates} duplicate deliveries`);
  if (counts.reordered > 0) notes.push(`${counts.reordered} deliveries arrived out of order`);
  if (timedOut) notes.push(`the run hit its time limit of ${opts.timeLimitMs} ms`);
  if (broker !== null && broker.cpuSource === 'stat' && broker.cpuUs < BROKER_CPU_MIN_TICKS * broker.cpuResolutionUs) {
    notes.push(
      `broker CPU was measured over ${Math.round(broker.cpuUs / broker.cpuResolutionUs)} clock ticks of ${broker.cpuResolutionUs / 1000} ms: ` +
        'µs per message is coarse; send more messages for a precise figure',
    );
  }
  if (broker === null && opts.brokerPid !== null) notes.push(`could not read /proc/${opts.brokerPid}: broker CPU and RSS not reported`);
  const pings = results.reduce((n, r) => n + r.pings, 0);
  const pongs = results.reduce((n, r) => n + r.pongs, 0);
  return {
    tool: 'mqlog-bench',
    date: new Date().toISOString(),
    scenario: opts.scenario,
    target: { host: opts.host, port: opts.port },
    settings: {
      clients: opts.clients,
      messagesPerClient: opts.messages,
      qos: opts.qos,
      payloadBytes: opts.payloadBytes,
      protocolVersion: opts.protocolVersion,
      ratePerClient: opts.ratePerClient,
      inflight: opts.inflight,
      clean: opts.clean,
      workers: opts.workers,
      parser: opts.parser,
      runId: opts.runId,
    },
    connect: {
      attempted: clients.length,
      connected: connected.length,
      failed: failed.length,
      errors: countBy(failed, (c) => c.error ?? 'EUNKNOWN'),
      setupMs: summarize(connected.map((c) => c.setupMs ?? 0)),
      tcpMs: summarize(connected.map((c) => c.tcpMs ?? 0)),
      phaseMs: round(i.setupPhaseMs),
    },
    messages: { ...counts, published },
    latencyUs,
    throughput: {
      durationMs: round(i.trafficMs),
      deliveredPerSec: round(counts.unique / seconds, 1),
      publishedPerSec: round(published / seconds, 1),
      deliveredMBPerSec: round((counts.unique * opts.payloadBytes) / 1e6 / seconds),
    },
    clientCpu: {
      userUs: i.cpu.user,
      systemUs: i.cpu.system,
      percentOfOneCore: round(pctOneCore, 1),
      usableCores: i.usableCores,
      saturated,
    },
    broker,
    fd: i.fd,
    keepalive: { pings, pongs },
    faults: { total: faults.length, byCode: countBy(faults, (f) => f.code), sample: faults.slice(0, FAULT_SAMPLE_MAX) },
    timedOut,
    complete: failed.length === 0 && counts.lost === 0 && counts.duplicates === 0 && !timedOut && faults.length === 0,
    notes,
    clients,
  };
}

const f1 = (v: number): string => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1));

function summaryLine(s: Summary, unit: string): string {
  if (s.count === 0) return '-';
  return `median ${f1(s.median)} ${unit}  p90 ${f1(s.p90)}  p99 ${f1(s.p99)}  max ${f1(s.max)}  (n=${s.count})`;
}

/** A table of the figures for a person. */
export function formatFigures(f: LoadFigures): string {
  const s = f.settings;
  const rows: [string, string][] = [
    ['scenario', `${f.scenario}  clients=${s.clients} messages/client=${s.messagesPerClient} qos=${s.qos} payload=${s.payloadBytes} B mqtt=${s.protocolVersion === 5 ? '5.0' : '3.1.1'} workers=${s.workers} parser=${s.parser}`],
    ['broker', `${f.target.host}:${f.target.port}`],
    ['connected', `${f.connect.connected} of ${f.connect.attempted}${f.connect.failed > 0 ? `  errors: ${JSON.stringify(f.connect.errors)}` : ''}`],
    ['setup time', summaryLine(f.connect.setupMs, 'ms')],
    ['latency', summaryLine({ ...f.latencyUs }, 'µs')],
    ['published', `${f.messages.published}  (${f1(f.throughput.publishedPerSec)} msg/s)`],
    ['delivered', `${f.messages.unique} of ${f.messages.expected}  (${f1(f.throughput.deliveredPerSec)} msg/s, ${f.throughput.deliveredMBPerSec.toFixed(2)} MB/s, ${f1(f.throughput.durationMs)} ms)`],
    ['lost/dup/reord', `${f.messages.lost} / ${f.messages.duplicates} / ${f.messages.reordered}`],
    ['client CPU', `${f1(f.clientCpu.percentOfOneCore)}% of one core (${f.clientCpu.usableCores} usable)${f.clientCpu.saturated ? '  SATURATED' : ''}`],
  ];
  if (f.broker !== null) {
    rows.push([
      'broker',
      `pid ${f.broker.pid}: ${f1(f.broker.cpuUs / 1000)} ms CPU, ${f.broker.cpuUsPerDelivered === null ? '-' : f1(f.broker.cpuUsPerDelivered)} µs/delivered msg, RSS ${(f.broker.rssBytesAfter / 1048576).toFixed(1)} MiB`,
    ]);
  }
  if (f.scenario === 'idle') rows.push(['keepalive', `${f.keepalive.pings} PINGREQ, ${f.keepalive.pongs} PINGRESP`]);
  if (f.faults.total > 0) rows.push(['faults', JSON.stringify(f.faults.byCode)]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  for (const n of f.notes) lines.push(`note: ${n}`);
  return `${lines.join('\n')}\n`;
}
