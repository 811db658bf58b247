/**
 * The shared benchmark reporter: turns measurements (tinybench tasks or hand-timed runs) into
 * rows, prints them as a table and writes benches/results/<name>.json with the machine, Node
 * version, git commit and time, so every figure quoted in notes/ can be traced to a run.
 *
 * General on purpose (the load client reuses it): a row is a name plus any of the standard
 * metrics; extra columns go in `extra`. Knows nothing about the commit log or MQTT.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem, release, platform } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Task } from 'tinybench';

/** Where results go: benches/results/. */
export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

/** One line of a benchmark report. Every metric is optional. */
export interface BenchRow {
  name: string;
  /** Operations (iterations) per second. */
  opsPerSec?: number;
  /** Latency percentiles of one operation, ms. */
  p50Ms?: number;
  p99Ms?: number;
  /** Payload megabytes (10^6 bytes) per second. */
  mbPerSec?: number;
  /** Records (messages) per second. */
  recordsPerSec?: number;
  /** Samples behind the figures. */
  samples?: number;
  /** Anything else worth keeping (ratios, ceilings, counts). */
  extra?: Record<string, number | string | boolean>;
}

/** The machine and software a run happened on. */
export interface RunInfo {
  date: string;
  node: string;
  platform: string;
  kernel: string;
  cpu: string;
  cores: number;
  memTotalBytes: number;
  memFreeBytes: number;
  loadAvg1m: number;
  gitCommit: string;
  gitDirty: boolean;
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

/** Facts about this machine and checkout, taken now. */
export function runInfo(): RunInfo {
  const cpu = cpus();
  return {
    date: new Date().toISOString(),
    node: process.version,
    platform: platform(),
    kernel: release(),
    cpu: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memTotalBytes: totalmem(),
    memFreeBytes: freemem(),
    loadAvg1m: loadavg()[0] ?? 0,
    gitCommit: git(['rev-parse', '--short', 'HEAD']),
    gitDirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
  };
}

/**
 * A row from a finished tinybench task. `perOp` says what one iteration moves, so throughput
 * in bytes and records follows from the iteration rate.
 */
export function rowFromTask(task: Task, perOp: { bytes?: number; records?: number } = {}, extra?: BenchRow['extra']): BenchRow {
  const r = task.result;
  if (r.state !== 'completed' && r.state !== 'aborted-with-statistics') {
    throw new Error(`benchmark ${task.name} did not complete: ${r.state === 'errored' ? r.error.message : r.state}`);
  }
  const ops = r.throughput.mean;
  const row: BenchRow = { name: task.name, opsPerSec: ops, p50Ms: r.latency.p50, p99Ms: r.latency.p99, samples: r.latency.samplesCount };
  if (perOp.bytes !== undefined) row.mbPerSec = (ops * perOp.bytes) / 1e6;
  if (perOp.records !== undefined) row.recordsPerSec = ops * perOp.records;
  if (extra !== undefined) row.extra = extra;
  return row;
}

/** The q-quantile (0..1) of samples (nearest rank); NaN when there are none. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

/**
 * A row from hand-timed operations (a load run, say): `latenciesMs` has one entry per
 * operation, `elapsedMs` is the wall time of the whole run.
 */
export function rowFromSamples(
  name: string,
  latenciesMs: readonly number[],
  elapsedMs: number,
  perOp: { bytes?: number; records?: number } = {},
  extra?: BenchRow['extra'],
): BenchRow {
  const ops = latenciesMs.length / (elapsedMs / 1000);
  const row: BenchRow = { name, opsPerSec: ops, p50Ms: quantile(latenciesMs, 0.5), p99Ms: quantile(latenciesMs, 0.99), samples: latenciesMs.length };
  if (perOp.bytes !== undefined) row.mbPerSec = (ops * perOp.bytes) / 1e6;
  if (perOp.records !== undefined) row.recordsPerSec = ops * perOp.records;
  if (extra !== undefined) row.extra = extra;
  return row;
}

function fmt(x: number | undefined, digits = 0): string {
  if (x === undefined) return '';
  if (Math.abs(x) >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (Math.abs(x) >= 1e4) return `${(x / 1e3).toFixed(1)} k`;
  return x.toFixed(digits);
}

/** Prints rows as an aligned table on stdout. */
export function printTable(title: string, rows: readonly BenchRow[]): void {
  const extraKeys = [...new Set(rows.flatMap((r) => Object.keys(r.extra ?? {})))];
  const header = ['benchmark', 'ops/s', 'p50 ms', 'p99 ms', 'MB/s', 'records/s', ...extraKeys];
  const lines = rows.map((r) => [
    r.name,
    fmt(r.opsPerSec),
    r.p50Ms === undefined ? '' : r.p50Ms.toFixed(3),
    r.p99Ms === undefined ? '' : r.p99Ms.toFixed(3),
    fmt(r.mbPerSec, 1),
    fmt(r.recordsPerSec),
    ...extraKeys.map((k) => {
      const v = r.extra?.[k];
      return typeof v === 'number' ? fmt(v, v < 10 ? 2 : 1) : String(v ?? '');
    }),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const row = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  console.log(`\n${title}`);
  console.log(row(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(row(l));
}

/** Writes benches/results/<name>.json: run info, rows and any notes. Returns the path. */
export function writeResults(name: string, rows: readonly BenchRow[], notes: Record<string, unknown> = {}): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(path, JSON.stringify({ name, run: runInfo(), rows, notes }, null, 2) + '\n');
  return path;
}
