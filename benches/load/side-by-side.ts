/**
 * The side-by-side driver behind `npm run bench:compare` and `npm run bench:broker`: for each
 * round, each scenario, each broker (order rotated every time, so no broker always runs first
 * or last), it starts a fresh broker pinned to one core, runs `mqlog bench --json` pinned to
 * the other (after discarded warm-up runs of the same load, so V8-compiled brokers are measured
 * in the state a long-running process is in, not while their JIT settles), and stops the
 * broker. Then it takes medians over the rounds, prints one table of figures and ratios, and
 * writes the JSON to benches/results/<name>.json.
 *
 * Load traffic only goes to 127.0.0.1, every run has a time limit, and brokers are always
 * stopped (SIGTERM, then SIGKILL) even when a run fails.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { type Availability, BROKER_NAMES, type BrokerName, DEFAULT_BROKERS, LAUNCHERS } from '../brokers/launchers.js';
import type { LoadFigures } from './figures.js';
import { QUICK_DIVISOR, type SuiteScenario } from './scenario-tables.js';
import { median } from './stats.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'src/cli/main.ts');
/** Hard stop for one load run, ms (the load client's own limit; the driver kills it 15 s later). */
const RUN_TIME_LIMIT_MS = 90_000;
/**
 * Discarded warm-up runs before each measured run, each as long as the measured one and with
 * client ids (and so sessions and topics) of its own, like the churn a long-running broker has
 * seen. One run of a tenth, the driver's first setting, measured mqlog's and aedes' JIT while
 * it was still settling: on one broker process the 2nd and 3rd 20k-message QoS 1 runs cost
 * ~28 µs per message and the 4th onwards 15–18 (notes/2026-11-23-jit-settling.md).
 */
export const DEFAULT_WARMUP_RUNS = 3;

/** The figures kept per run (a subset of LoadFigures, flat for medians and tables). */
export interface RunFigures {
  deliveredPerSec: number;
  brokerUsPerMsg: number | null;
  latencyP50Us: number;
  latencyP99Us: number;
  latencyMaxUs: number;
  lost: number;
  duplicates: number;
  setupP50Ms: number;
  setupP99Ms: number;
  connected: number;
  brokerRssMiB: number | null;
  clientCpuPercent: number;
  clientSaturated: boolean;
  complete: boolean;
  durationMs: number;
  /** The machine's 1-minute load average when the run started (2 cores: above 2 means queueing). */
  loadAvg1m: number;
}

export interface SuiteOptions {
  name: string;
  scenarios: readonly SuiteScenario[];
  brokers: readonly BrokerName[];
  rounds: number;
  quick: boolean;
  /** Cores for the broker and the load (taskset -c), or null not to pin. */
  brokerCpu: number | null;
  loadCpu: number | null;
  /** Discarded runs of the same load after each broker start (0: measure a cold broker). */
  warmupRuns: number;
  resultsDir: string;
  command: string;
  log: (line: string) => void;
}

export function runFigures(f: LoadFigures): RunFigures {
  return {
    deliveredPerSec: f.throughput.deliveredPerSec,
    brokerUsPerMsg: f.broker?.cpuUsPerDelivered ?? null,
    latencyP50Us: f.latencyUs.median,
    latencyP99Us: f.latencyUs.p99,
    latencyMaxUs: f.latencyUs.max,
    lost: f.messages.lost,
    duplicates: f.messages.duplicates,
    setupP50Ms: f.connect.setupMs.median,
    setupP99Ms: f.connect.setupMs.p99,
    connected: f.connect.connected,
    brokerRssMiB: f.broker === null ? null : Number((f.broker.rssBytesAfter / 1048576).toFixed(1)),
    clientCpuPercent: f.clientCpu.percentOfOneCore,
    clientSaturated: f.clientCpu.saturated,
    complete: f.complete,
    durationMs: f.throughput.durationMs,
    loadAvg1m: loadavg()[0] ?? 0,
  };
}

/**
 * Medians over the rounds, plus how many rounds there were, how many were complete, and the
 * lowest and highest broker µs/msg of a round (the spread that says how far to trust a ratio).
 */
export type MedianFigures = RunFigures & { rounds: number; completeRounds: number; brokerUsPerMsgMin: number | null; brokerUsPerMsgMax: number | null };

/**
 * Median of each numeric field over the rounds that have it (a round that delivered nothing
 * has no µs/msg); null when no round has it. `complete` is true only when every round was;
 * `clientSaturated` when any was.
 */
export function medianFigures(rounds: readonly RunFigures[]): MedianFigures | null {
  const first = rounds[0];
  if (first === undefined) return null;
  const out: Record<string, number | boolean | null> = {};
  for (const key of Object.keys(first) as (keyof RunFigures)[]) {
    const vals = rounds.map((r) => r[key]);
    if (typeof vals[0] === 'boolean') out[key] = key === 'complete' ? vals.every(Boolean) : vals.some(Boolean);
    else {
      const nums = vals.filter((v): v is number => typeof v === 'number');
      out[key] = nums.length === 0 ? null : Number(median(nums).toFixed(3));
    }
  }
  out.rounds = rounds.length;
  out.completeRounds = rounds.filter((r) => r.complete).length;
  const us = rounds.map((r) => r.brokerUsPerMsg).filter((v): v is number => typeof v === 'number');
  out.brokerUsPerMsgMin = us.length === 0 ? null : Math.min(...us);
  out.brokerUsPerMsgMax = us.length === 0 ? null : Math.max(...us);
  return out as unknown as MedianFigures;
}

/** Runs `mqlog bench --json` in a child process, pinned when asked. */
function runLoadChild(args: string[], cpu: number | null): Promise<LoadFigures> {
  const nodeArgs = ['--import=tsx', MAIN, 'bench', ...args];
  const [cmd, argv] = cpu === null ? [process.execPath, nodeArgs] : ['taskset', ['-c', String(cpu), process.execPath, ...nodeArgs]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIME_LIMIT_MS + 15_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out) as LoadFigures);
      } catch {
        reject(new Error(`mqlog bench exited ${code} without figures: ${err.trim().slice(-300)}`));
      }
    });
  });
}

/** Rotates `list` left by `k`. */
export function rotate<T>(list: readonly T[], k: number): T[] {
  if (list.length === 0) return [];
  const s = ((k % list.length) + list.length) % list.length;
  return [...list.slice(s), ...list.slice(0, s)];
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

const fmt = (v: number | null, digits = 1): string => (v === null ? '-' : Math.abs(v) >= 1000 ? v.toFixed(0) : v.toFixed(digits));
const ratio = (a: number | null | undefined, b: number | null | undefined): string => (a === null || a === undefined || b === null || b === undefined || b === 0 ? '-' : `${(a / b).toFixed(2)}×`);

/** One table: a row per scenario and broker, ratios against mosquitto (or the first broker). */
export function formatSuiteTable(scenarios: readonly SuiteScenario[], brokers: readonly BrokerName[], medians: Map<string, Map<BrokerName, MedianFigures | null>>, skipped: Map<BrokerName, string>): string {
  const ref: BrokerName | undefined = brokers.includes('mosquitto') ? 'mosquitto' : brokers[0];
  const header = ['scenario', 'broker', 'complete', 'msg/s', 'broker µs/msg (rounds min–max)', 'p50 µs', 'p99 µs', 'lost', 'setup p50 ms', 'RSS MiB', 'client CPU %', `msg/s vs ${ref ?? '-'}`, `µs/msg vs ${ref ?? '-'}`];
  const rows: string[][] = [header];
  for (const s of scenarios) {
    const m = medians.get(s.id);
    const refFig = ref === undefined ? undefined : m?.get(ref);
    for (const b of BROKER_NAMES) {
      if (!brokers.includes(b) && !skipped.has(b)) continue;
      if (skipped.has(b)) {
        rows.push([s.title, b, skipped.get(b) ?? 'skipped', '', '', '', '', '', '', '', '', '', '']);
        continue;
      }
      const f = m?.get(b);
      if (f === null || f === undefined) {
        rows.push([s.title, b, 'no run', '', '', '', '', '', '', '', '', '', '']);
        continue;
      }
      rows.push([
        s.title,
        b,
        `${f.completeRounds}/${f.rounds}`,
        fmt(f.deliveredPerSec, 0),
        f.rounds > 1 && f.brokerUsPerMsgMin !== null ? `${fmt(f.brokerUsPerMsg, 2)} (${fmt(f.brokerUsPerMsgMin)}–${fmt(f.brokerUsPerMsgMax)})` : fmt(f.brokerUsPerMsg, 2),
        fmt(f.latencyP50Us, 0),
        fmt(f.latencyP99Us, 0),
        String(f.lost),
        fmt(f.setupP50Ms, 2),
        fmt(f.brokerRssMiB),
        `${fmt(f.clientCpuPercent, 0)}${f.clientSaturated ? ' SAT' : ''}`,
        b === ref ? '1.00×' : ratio(f.deliveredPerSec, refFig?.deliveredPerSec),
        b === ref ? '1.00×' : ratio(f.brokerUsPerMsg, refFig?.brokerUsPerMsg),
      ]);
    }
  }
  const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const sep = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  return [line(header), sep, ...rows.slice(1).map(line)].join('\n');
}

/** Runs the suite; resolves to the path of the JSON results. */
export async function runSuite(o: SuiteOptions): Promise<{ jsonPath: string; table: string }> {
  const started = new Date();
  const availability = new Map<BrokerName, Availability>();
  const skipped = new Map<BrokerName, string>();
  for (const b of o.brokers) {
    const a = await LAUNCHERS[b].detect();
    availability.set(b, a);
    if (a.ok) o.log(`${b} ${a.version}: ${a.detail}`);
    else {
      skipped.set(b, a.reason.startsWith('mqlog broker not built yet') ? 'mqlog broker not built yet, skipped' : `skipped: ${a.reason}`);
      o.log(`${b}: ${a.reason}`);
    }
  }
  const live = o.brokers.filter((b) => !skipped.has(b));
  const rounds = new Map<string, Map<BrokerName, RunFigures[]>>();
  const errors: { round: number; scenario: string; broker: BrokerName; error: string }[] = [];
  const loadBefore = loadavg();
  for (let r = 0; r < o.rounds; r++) {
    for (const [si, s] of o.scenarios.entries()) {
      for (const b of rotate(live, r + si)) {
        const messages = o.quick ? Math.max(1, Math.floor(s.messages / QUICK_DIVISOR)) : s.messages;
        const broker = await LAUNCHERS[b].start({ cpu: o.brokerCpu }).catch((err: Error) => err);
        if (broker instanceof Error) {
          errors.push({ round: r + 1, scenario: s.id, broker: b, error: broker.message });
          o.log(`round ${r + 1} ${s.id} ${b}: ${broker.message}`);
          continue;
        }
        const common = ['--port', String(broker.port), '--broker-pid', String(broker.pid), '--json', '--time-limit-ms', String(RUN_TIME_LIMIT_MS)];
        try {
          // Discarded: lets V8 compile (and recompile, as new sessions and topics bring new
          // shapes) aedes' and mqlog's hot paths before the measured run.
          for (let w = 0; s.messages > 1 && w < o.warmupRuns; w++) {
            await runLoadChild([...s.args, '--messages', String(messages), ...common, '--client-prefix', `warm${w}-${b}`], o.loadCpu);
          }
          const load1m = loadavg()[0] ?? 0;
          const f = await runLoadChild([...s.args, '--messages', String(messages), ...common, '--client-prefix', `cmp-${b}`], o.loadCpu);
          const fig = { ...runFigures(f), loadAvg1m: load1m };
          const perBroker = rounds.get(s.id) ?? new Map<BrokerName, RunFigures[]>();
          rounds.set(s.id, perBroker);
          perBroker.set(b, [...(perBroker.get(b) ?? []), fig]);
          o.log(
            `round ${r + 1}/${o.rounds} ${s.id.padEnd(20)} ${b.padEnd(9)} ${fmt(fig.deliveredPerSec, 0).padStart(8)} msg/s  ${fmt(fig.brokerUsPerMsg, 2).padStart(6)} µs/msg  p99 ${fmt(fig.latencyP99Us, 0)} µs  lost ${fig.lost}  load ${fig.loadAvg1m.toFixed(1)}${fig.clientSaturated ? '  (client saturated)' : ''}`,
          );
        } catch (err) {
          errors.push({ round: r + 1, scenario: s.id, broker: b, error: (err as Error).message });
          o.log(`round ${r + 1} ${s.id} ${b}: ${(err as Error).message}`);
        } finally {
          await broker.stop();
        }
      }
    }
  }
  const medians = new Map<string, Map<BrokerName, MedianFigures | null>>();
  for (const s of o.scenarios) {
    const m = new Map<BrokerName, MedianFigures | null>();
    for (const b of live) m.set(b, medianFigures(rounds.get(s.id)?.get(b) ?? []));
    medians.set(s.id, m);
  }
  const table = formatSuiteTable(o.scenarios, o.brokers, medians, skipped);
  const cpu = cpus();
  const result = {
    name: o.name,
    command: o.command,
    date: started.toISOString(),
    finished: new Date().toISOString(),
    machine: { cpuModel: cpu[0]?.model ?? 'unknown', cores: cpu.length, memGiB: Number((totalmem() / 2 ** 30).toFixed(1)), kernel: release() },
    node: process.version,
    gitCommit: gitCommit(),
    conditions: {
      brokerCpu: o.brokerCpu,
      loadCpu: o.loadCpu,
      rounds: o.rounds,
      quick: o.quick,
      warmupRuns: o.warmupRuns,
      loadavgBefore: loadBefore,
      loadavgAfter: loadavg(),
      note: 'shared 2-core machine; other engineers run tests and benchmarks at the same time',
    },
    brokers: Object.fromEntries([...availability].map(([b, a]) => [b, a])),
    scenarios: o.scenarios.map((s) => ({
      id: s.id,
      title: s.title,
      args: [...s.args, '--messages', String(o.quick ? Math.max(1, Math.floor(s.messages / QUICK_DIVISOR)) : s.messages)],
      results: Object.fromEntries(live.map((b) => [b, { rounds: rounds.get(s.id)?.get(b) ?? [], median: medians.get(s.id)?.get(b) ?? null }])),
    })),
    errors,
    table,
  };
  await mkdir(o.resultsDir, { recursive: true });
  // Quick runs are kept apart from full ones: their figures are not comparable.
  const jsonPath = join(o.resultsDir, `${o.name}${o.quick ? '-quick' : ''}.json`);
  await writeFile(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
  return { jsonPath, table };
}

/** Parses the flags `bench:compare` and `bench:broker` share and runs the suite. */
export async function suiteMain(name: string, scenarios: readonly SuiteScenario[], argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      rounds: { type: 'string' },
      quick: { type: 'boolean' },
      brokers: { type: 'string' },
      only: { type: 'string' },
      'no-pin': { type: 'boolean' },
      'no-warmup': { type: 'boolean' },
      'warmup-runs': { type: 'string' },
      'results-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(
      `usage: npm run bench:${name === 'compare' ? 'compare' : 'broker'} -- [--rounds N] [--quick] [--brokers mqlog,aedes,mosquitto[,relay][,relay-scan][,relay-store]] [--only id,...] [--no-pin] [--warmup-runs N | --no-warmup] [--results-dir DIR]\n\nscenarios:\n${scenarios.map((s) => `  ${s.id.padEnd(22)} ${s.title}`).join('\n')}\n`,
    );
    return 0;
  }
  const rounds = Number(values.rounds ?? '3');
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) {
    process.stderr.write(`--rounds must be an integer in [1, 20], got ${values.rounds}\n`);
    return 2;
  }
  const warmupRuns = values['no-warmup'] === true ? 0 : Number(values['warmup-runs'] ?? String(DEFAULT_WARMUP_RUNS));
  if (!Number.isInteger(warmupRuns) || warmupRuns < 0 || warmupRuns > 10) {
    process.stderr.write(`--warmup-runs must be an integer in [0, 10], got ${values['warmup-runs']}\n`);
    return 2;
  }
  const brokers = (values.brokers ?? DEFAULT_BROKERS.join(',')).split(',').filter((b) => b !== '');
  const bad = brokers.filter((b) => !(BROKER_NAMES as readonly string[]).includes(b));
  if (bad.length > 0) {
    process.stderr.write(`--brokers: unknown broker(s) ${bad.join(', ')}; known: ${BROKER_NAMES.join(', ')}\n`);
    return 2;
  }
  const only = values.only?.split(',');
  const chosen = only === undefined ? scenarios : scenarios.filter((s) => only.includes(s.id));
  if (chosen.length === 0) {
    process.stderr.write(`--only matched no scenario; known: ${scenarios.map((s) => s.id).join(', ')}\n`);
    return 2;
  }
  const pin = values['no-pin'] !== true;
  const { jsonPath, table } = await runSuite({
    name,
    scenarios: chosen,
    brokers: brokers as BrokerName[],
    rounds,
    quick: values.quick === true,
    brokerCpu: pin ? 0 : null,
    loadCpu: pin ? 1 : null,
    warmupRuns,
    resultsDir: values['results-dir'] ?? join(ROOT, 'benches/results'),
    command: `npm run bench:${name} --${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`\n${table}\n\nmedians of ${rounds} round(s), each after ${warmupRuns} discarded warm-up run(s); broker pinned to CPU ${pin ? 0 : '-'}, load to CPU ${pin ? 1 : '-'}\nJSON: ${jsonPath}\n`);
  return 0;
}
