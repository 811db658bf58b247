/**
 * Worker-thread host of one shard. Speaks a small message protocol with runner.ts; times are
 * passed as remaining milliseconds because each thread has its own performance.now() origin.
 *
 *   main → worker: setup {remainingMs} | run {live, remainingMs} | all-published | finish
 *   worker → main: setup-done {records} | published | run-done | progress {p} | result {r} | error {message}
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ShardPlan } from './plan.js';
import { Shard } from './shard.js';

/** Messages the main thread sends. */
export type ToWorker =
  | { type: 'setup'; remainingMs: number }
  | { type: 'run'; live: number[]; remainingMs: number }
  | { type: 'all-published' }
  | { type: 'finish' };

/** How often a worker reports progress counters, in ms. */
const PROGRESS_INTERVAL_MS = 200;

const port = parentPort;
if (port !== null) {
  const shard = new Shard(workerData as ShardPlan);
  const progress = setInterval(() => port.postMessage({ type: 'progress', p: shard.progress() }), PROGRESS_INTERVAL_MS);
  shard.onPublished = () => port.postMessage({ type: 'published' });
  const fail = (err: unknown): void => port.postMessage({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'setup':
        shard.setup(performance.now() + m.remainingMs).then((records) => port.postMessage({ type: 'setup-done', records }), fail);
        break;
      case 'run':
        shard.run(m.live, performance.now() + m.remainingMs).then(() => port.postMessage({ type: 'run-done' }), fail);
        break;
      case 'all-published':
        shard.allPublished();
        break;
      case 'finish':
        shard.finish().then((r) => {
          clearInterval(progress);
          port.postMessage({ type: 'result', r }, [r.latencyUs.buffer as ArrayBuffer]);
        }, fail);
        break;
    }
  });
}
