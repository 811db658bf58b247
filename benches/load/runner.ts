/**
 * Runs one load: checks the fd budget, plans the shards, drives them (on this thread or on
 * worker threads) through setup → run → finish, samples the client's and the broker's CPU
 * around the traffic, and turns everything into one figures object (figures.ts).
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { extname } from 'node:path';
import { Worker } from 'node:worker_threads';
import { addCounts, zeroCounts } from './accounting.js';
import { LoadClientError } from './errors.js';
import { ensureFdLimit, FD_OVERHEAD } from './fd-limit.js';
import { buildFigures, type LoadFigures } from './figures.js';
import { type LoadOptions, resolveLoadOptions, type ResolvedLoadOptions } from './options.js';
import { connectionCount, planShards, type ShardPlan } from './plan.js';
import { sampleProcess } from './proc.js';
import { type SetupRecord, Shard, type ShardProgress, type ShardResult } from './shard.js';
import type { ToWorker } from './worker.js';

/** Progress of a run, for the progress bar. */
export interface RunProgress extends ShardProgress {
  phase: 'connect' | 'traffic' | 'finish';
  clients: number;
  expected: number;
}

/** Optional hooks of {@link runLoad}. */
export interface RunHooks {
  /** Called about every {@link PROGRESS_INTERVAL_MS} while the run is on. */
  onProgress?: (p: RunProgress) => void;
}

const PROGRESS_INTERVAL_MS = 200;

/** The same five steps for a shard on this thread or in a worker. */
interface ShardHandle {
  setup(remainingMs: number): Promise<SetupRecord[]>;
  run(live: number[], remainingMs: number): Promise<void>;
  allPublished(): void;
  finish(): Promise<ShardResult>;
  progress(): ShardProgress;
  onPublished: () => void;
}

function localHandle(plan: ShardPlan): ShardHandle {
  const shard = new Shard(plan);
  const h: ShardHandle = {
    setup: (ms) => shard.setup(performance.now() + ms),
    run: (live, ms) => shard.run(live, performance.now() + ms),
    allPublished: () => shard.allPublished(),
    finish: () => shard.finish(),
    progress: () => shard.progress(),
    onPublished: () => {},
  };
  shard.onPublished = () => h.onPublished();
  return h;
}

type FromWorker =
  | { type: 'setup-done'; records: SetupRecord[] }
  | { type: 'published' }
  | { type: 'run-done' }
  | { type: 'progress'; p: ShardProgress }
  | { type: 'result'; r: ShardResult }
  | { type: 'error'; message: string };

function workerHandle(plan: ShardPlan): ShardHandle {
  const here = fileURLToPath(import.meta.url);
  const url = new URL(`./worker${extname(here)}`, import.meta.url);
  // From TypeScript sources (tsx) a worker does not inherit the loader: register it first.
  const worker =
    extname(here) === '.ts'
      ? new Worker(`import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => { t.register(); return import(${JSON.stringify(url.href)}); });`, { eval: true, workerData: plan })
      : new Worker(url, { workerData: plan });
  let last: ShardProgress = { connected: 0, published: 0, delivered: 0 };
  const waiting = new Map<string, { resolve: (v: never) => void; reject: (e: Error) => void }>();
  const expect = <T>(type: string): Promise<T> =>
    new Promise<T>((resolve, reject) => waiting.set(type, { resolve: resolve as (v: never) => void, reject }));
  const failAll = (err: Error): void => {
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  };
  worker.on('error', (e) => failAll(new LoadClientError('ERR_LOAD_WORKER', `worker ${plan.shard} failed: ${e.message}`, { cause: e })));
  const send = (m: ToWorker): void => worker.postMessage(m);
  const h: ShardHandle = {
    setup: (remainingMs) => {
      const p = expect<SetupRecord[]>('setup-done');
      send({ type: 'setup', remainingMs });
      return p;
    },
    run: (live, remainingMs) => {
      const p = expect<undefined>('run-done');
      send({ type: 'run', live, remainingMs });
      return p;
    },
    allPublished: () => send({ type: 'all-published' }),
    finish: async () => {
      const p = expect<ShardResult>('result');
      send({ type: 'finish' });
      const r = await p;
      await worker.terminate();
      return r;
    },
    progress: () => last,
    onPublished: () => {},
  };
  worker.on('message', (m: FromWorker) => {
    const settle = (type: string, value: unknown): void => {
      const w = waiting.get(type);
      waiting.delete(type);
      w?.resolve(value as never);
    };
    switch (m.type) {
      case 'progress':
        last = m.p;
        break;
      case 'published':
        h.onPublished();
        break;
      case 'setup-done':
        settle('setup-done', m.records);
        break;
      case 'run-done':
        settle('run-done', undefined);
        break;
      case 'result':
        settle('result', m.r);
        break;
      case 'error':
        failAll(new LoadClientError('ERR_LOAD_WORKER', `worker ${plan.shard}: ${m.message}`));
        break;
    }
  });
  return h;
}

/** Messages the receivers of a run expect, given the publishers that connected. */
function expectedDeliveries(opts: ResolvedLoadOptions, livePubs: number, liveSubs: number): number {
  switch (opts.scenario) {
    case 'fanout':
      return livePubs * liveSubs * opts.messages;
    case 'fanin':
      return liveSubs > 0 ? livePubs * opts.messages : 0;
    case 'idle':
      return 0;
    default:
      return Math.min(livePubs, liveSubs) * opts.messages;
  }
}

/** Runs one load and returns its figures. Faults of the load become figures; bad options throw. */
export async function runLoad(options: LoadOptions, hooks: RunHooks = {}): Promise<LoadFigures> {
  const opts = resolveLoadOptions(options);
  if (opts.scenario === 'scale') throw new LoadClientError('ERR_LOAD_INVALID_OPTION', "option 'scenario' 'scale' runs through runScale(), not runLoad()");
  const connections = connectionCount(opts);
  const fd = ensureFdLimit(connections + FD_OVERHEAD, opts.raiseFdLimit);
  const t0 = performance.now();
  const endMs = t0 + opts.timeLimitMs;
  const remaining = (): number => Math.max(1, endMs - performance.now());
  const plans = planShards(opts);
  const handles = plans.map((p) => (opts.workers > 1 ? workerHandle(p) : localHandle(p)));
  let phase: RunProgress['phase'] = 'connect';
  let expected = 0;
  const tick = hooks.onProgress;
  const report = (): void => {
    if (tick === undefined) return;
    const p: RunProgress = { phase, clients: connections, expected, connected: 0, published: 0, delivered: 0 };
    for (const h of handles) {
      const s = h.progress();
      p.connected += s.connected;
      p.published += s.published;
      p.delivered += s.delivered;
    }
    tick(p);
  };
  const progressTimer = tick === undefined ? null : setInterval(report, PROGRESS_INTERVAL_MS);
  try {
    const setup = (await Promise.all(handles.map((h) => h.setup(remaining())))).flat();
    const setupMs = performance.now() - t0;
    const live = setup.filter((r) => r.connected && (r.role === 'pub' || r.role === 'ping')).map((r) => r.index);
    const liveSubs = setup.filter((r) => r.connected && r.role === 'sub').length;
    expected = expectedDeliveries(opts, live.length, liveSubs);

    let publishedShards = 0;
    for (const h of handles) {
      h.onPublished = () => {
        if (++publishedShards === handles.length) for (const x of handles) x.allPublished();
      };
    }
    report();
    phase = 'traffic';
    const brokerBefore = opts.brokerPid === null ? null : sampleProcess(opts.brokerPid);
    const cpuBefore = process.cpuUsage();
    const startNs = process.hrtime.bigint();
    const trafficStart = performance.now();
    await Promise.all(handles.map((h) => h.run(live, remaining())));
    const trafficEndNs = process.hrtime.bigint();
    const cpu = process.cpuUsage(cpuBefore);
    const trafficWallMs = performance.now() - trafficStart;
    const brokerAfter = opts.brokerPid === null ? null : sampleProcess(opts.brokerPid);
    report();
    phase = 'finish';
    const results = await Promise.all(handles.map((h) => h.finish()));

    const counts = zeroCounts();
    for (const r of results) addCounts(counts, r.counts);
    const lastDeliveryNs = Math.max(0, ...results.map((r) => r.lastDeliveryNs));
    const endNs = counts.unique > 0 && lastDeliveryNs > 0 ? BigInt(lastDeliveryNs) : trafficEndNs;
    return buildFigures({
      opts,
      fd,
      results,
      setupPhaseMs: setupMs,
      trafficMs: Math.max(0.001, Number(endNs - startNs) / 1e6),
      trafficWallMs,
      cpu,
      usableCores: availableParallelism(),
      brokerBefore,
      brokerAfter,
    });
  } finally {
    if (progressTimer !== null) clearInterval(progressTimer);
  }
}
