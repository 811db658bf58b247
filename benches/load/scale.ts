/**
 * The scale profile (seed 003's master test case): ramp clients up in steps, each client
 * sending more messages per step, then ramp back down; keep every client's figures; write
 * them as CSV and draw the plots as SVG.
 *
 *   step k of the ramp up (k = 1..steps):   k × stepClients pairs, k × stepMessages messages each
 *   then the ramp down:                     steps-1, ..., 1 with the same sizes
 *
 * Files written to `outDir`: clients.csv (one row per pair per step), steps.csv (one row per
 * step), scale.json (all step figures), connect-time.svg, median-rtt.svg,
 * throughput-vs-clients.svg, latency-vs-clients.svg.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CsvValue, toCsv } from './csv.js';
import { LoadClientError } from './errors.js';
import type { LoadFigures } from './figures.js';
import { type LoadOptions, MAX_CLIENTS } from './options.js';
import { type RunProgress, runLoad } from './runner.js';
import { renderChart } from './svg.js';

/** Options of the scale profile; the load options apply to every step. */
export interface ScaleOptions extends Omit<LoadOptions, 'scenario' | 'clients' | 'messages'> {
  /** Steps of the ramp up (the ramp down has steps-1). @default 4 */
  steps?: number;
  /** Pairs added per step. @default 5 */
  stepClients?: number;
  /** Messages per client added per step. @default 100 */
  stepMessages?: number;
  /** Directory the CSV and SVG files go to. */
  outDir: string;
}

export const SCALE_DEFAULTS = Object.freeze({ steps: 4, stepClients: 5, stepMessages: 100 });

export const CLIENT_COLUMNS = [
  'globalId', 'step', 'phase', 'stepClients', 'index', 'pubClientId', 'subClientId', 'pubSetupMs', 'subSetupMs',
  'sent', 'received', 'lost', 'duplicates', 'reordered', 'medianRttUs', 'p90RttUs', 'p99RttUs', 'maxRttUs', 'error',
] as const;
export const STEP_COLUMNS = [
  'step', 'phase', 'clients', 'messagesPerClient', 'connected', 'setupMedianMs', 'setupP99Ms', 'deliveredPerSec',
  'deliveredMBPerSec', 'latencyMedianUs', 'latencyP99Us', 'lost', 'duplicates', 'clientCpuPercent', 'errors',
] as const;

export type ClientRow = Record<(typeof CLIENT_COLUMNS)[number], CsvValue>;
export type StepRow = Record<(typeof STEP_COLUMNS)[number], CsvValue>;

export interface ScaleResult {
  outDir: string;
  files: string[];
  clientRows: ClientRow[];
  stepRows: StepRow[];
  steps: LoadFigures[];
}

/** Hooks: progress of the current step. */
export interface ScaleHooks {
  onProgress?: (step: number, totalSteps: number, clients: number, p: RunProgress) => void;
}

/** The (clients, messages) of every step, ramp up then down. */
export function scalePlan(steps: number, stepClients: number, stepMessages: number): { phase: 'up' | 'down'; clients: number; messages: number }[] {
  const up = Array.from({ length: steps }, (_, k) => ({ phase: 'up' as const, clients: (k + 1) * stepClients, messages: (k + 1) * stepMessages }));
  const down = up.slice(0, -1).reverse().map((s) => ({ ...s, phase: 'down' as const }));
  return [...up, ...down];
}

function rowsOf(f: LoadFigures, step: number, phase: string, firstGlobalId: number): ClientRow[] {
  const pubs = new Map(f.clients.filter((c) => c.role === 'pub').map((c) => [c.index, c]));
  const subs = f.clients.filter((c) => c.role === 'sub').sort((a, b) => a.index - b.index);
  return subs.map((sub, k) => {
    const pub = pubs.get(sub.index);
    const lat = sub.latencyUs;
    return {
      globalId: firstGlobalId + k,
      step,
      phase,
      stepClients: subs.length,
      index: sub.index,
      pubClientId: pub?.clientId ?? '',
      subClientId: sub.clientId,
      pubSetupMs: pub?.setupMs ?? null,
      subSetupMs: sub.setupMs,
      sent: pub?.sent ?? 0,
      received: sub.received,
      lost: sub.lost,
      duplicates: sub.duplicates,
      reordered: sub.reordered,
      medianRttUs: lat !== null && lat.count > 0 ? lat.median : null,
      p90RttUs: lat !== null && lat.count > 0 ? lat.p90 : null,
      p99RttUs: lat !== null && lat.count > 0 ? lat.p99 : null,
      maxRttUs: lat !== null && lat.count > 0 ? lat.max : null,
      error: pub?.error ?? sub.error ?? null,
    };
  });
}

/** Runs the ramp, writes CSV/SVG/JSON into `opts.outDir`, returns the rows and file paths. */
export async function runScale(opts: ScaleOptions, hooks: ScaleHooks = {}): Promise<ScaleResult> {
  const { steps = SCALE_DEFAULTS.steps, stepClients = SCALE_DEFAULTS.stepClients, stepMessages = SCALE_DEFAULTS.stepMessages, outDir, ...load } = opts;
  for (const [field, v] of [['steps', steps], ['stepClients', stepClients], ['stepMessages', stepMessages]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new LoadClientError('ERR_LOAD_INVALID_OPTION', `option '${field}' must be an integer >= 1, got ${String(v)}`);
  }
  if (steps * stepClients > MAX_CLIENTS) throw new LoadClientError('ERR_LOAD_INVALID_OPTION', `option 'steps' × 'stepClients' must be <= ${MAX_CLIENTS}`);
  const plan = scalePlan(steps, stepClients, stepMessages);
  const clientRows: ClientRow[] = [];
  const stepRows: StepRow[] = [];
  const figures: LoadFigures[] = [];
  let globalId = 0;
  for (const [k, s] of plan.entries()) {
    const stepNo = k + 1;
    const progress = hooks.onProgress;
    const f = await runLoad(
      { ...load, scenario: 'pairs', clients: s.clients, messages: s.messages, clientPrefix: `${load.clientPrefix ?? 'mqlog-bench'}-k${stepNo}` },
      progress === undefined ? {} : { onProgress: (p) => progress(stepNo, plan.length, s.clients, p) },
    );
    figures.push(f);
    const rows = rowsOf(f, stepNo, s.phase, globalId);
    globalId += rows.length;
    clientRows.push(...rows);
    stepRows.push({
      step: stepNo,
      phase: s.phase,
      clients: s.clients,
      messagesPerClient: s.messages,
      connected: f.connect.connected,
      setupMedianMs: f.connect.setupMs.median,
      setupP99Ms: f.connect.setupMs.p99,
      deliveredPerSec: f.throughput.deliveredPerSec,
      deliveredMBPerSec: f.throughput.deliveredMBPerSec,
      latencyMedianUs: f.latencyUs.median,
      latencyP99Us: f.latencyUs.p99,
      lost: f.messages.lost,
      duplicates: f.messages.duplicates,
      clientCpuPercent: f.clientCpu.percentOfOneCore,
      errors: Object.entries(f.connect.errors).map(([c, n]) => `${c}:${n}`).join(' '),
    });
  }
  await mkdir(outDir, { recursive: true });
  const pts = (rows: readonly ClientRow[], key: keyof ClientRow): [number, number][] =>
    rows.filter((r) => typeof r[key] === 'number').map((r) => [r.globalId as number, r[key] as number]);
  const byPhase = (phase: string, key: keyof StepRow): [number, number][] =>
    stepRows.filter((r) => r.phase === phase).map((r) => [r.clients as number, r[key] as number]);
  const files: Record<string, string> = {
    'clients.csv': toCsv(CLIENT_COLUMNS, clientRows),
    'steps.csv': toCsv(STEP_COLUMNS, stepRows),
    'scale.json': `${JSON.stringify({ plan, steps: figures.map(({ clients: _c, ...rest }) => rest) }, null, 2)}\n`,
    'connect-time.svg': renderChart({
      title: 'Connect (setup) time per client',
      xLabel: 'client id (in order of creation over the ramp)',
      yLabel: 'setup time, ms (TCP + CONNACK)',
      kind: 'scatter',
      series: [
        { name: 'publisher', points: pts(clientRows, 'pubSetupMs') },
        { name: 'subscriber', points: pts(clientRows, 'subSetupMs') },
      ],
    }),
    'median-rtt.svg': renderChart({
      title: 'Median end-to-end latency per client',
      xLabel: 'client id (in order of creation over the ramp)',
      yLabel: 'median latency, µs',
      kind: 'scatter',
      series: [{ name: 'median', points: pts(clientRows, 'medianRttUs') }],
    }),
    'throughput-vs-clients.svg': renderChart({
      title: 'Throughput vs number of clients',
      xLabel: 'publisher/subscriber pairs',
      yLabel: 'delivered msg/s',
      kind: 'line',
      series: [
        { name: 'ramp up', points: byPhase('up', 'deliveredPerSec') },
        { name: 'ramp down', points: byPhase('down', 'deliveredPerSec') },
      ],
    }),
    'latency-vs-clients.svg': renderChart({
      title: 'Latency vs number of clients',
      xLabel: 'publisher/subscriber pairs',
      yLabel: 'latency, µs',
      kind: 'line',
      series: [
        { name: 'median (up)', points: byPhase('up', 'latencyMedianUs') },
        { name: 'p99 (up)', points: byPhase('up', 'latencyP99Us') },
        { name: 'median (down)', points: byPhase('down', 'latencyMedianUs') },
        { name: 'p99 (down)', points: byPhase('down', 'latencyP99Us') },
      ],
    }),
  };
  const written: string[] = [];
  for (const [name, text] of Object.entries(files)) {
    const path = join(outDir, name);
    await writeFile(path, text);
    written.push(path);
  }
  return { outDir, files: written, clientRows, stepRows, steps: figures };
}
