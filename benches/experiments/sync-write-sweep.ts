/**
 * Experiment: up to which batch size a commit log write is cheaper on the calling thread than on
 * libuv's threadpool (StoreOptions.syncWriteMaxBytes). For batches of 32 KiB .. 2 MiB of 1 KiB
 * records, durability 'never', it times "append the batch, await flush()" with every write on
 * the threadpool (syncWriteMaxBytes 0) and with every write on the calling thread, beside
 * bench:commitlog's raw pwritev of the same buffers through the threadpool and on the calling
 * thread; three alternating repetitions. Prints the threadpool raw write's µs per batch and each
 * other variant's speed as a ratio to it (higher is faster).
 * Run: npx tsx benches/experiments/sync-write-sweep.ts   (figures: notes/2026-11-24-sync-writes.md)
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LogStore } from '../../commitlog/index.js';
import { benchDataDir } from '../lib/data-dir.js';
import { RawWriter } from '../lib/raw-writer.js';

const MIB = 1024 * 1024;
const RECORD = 1024;
const SIZES_KIB = [32, 64, 128, 256, 512, 1024, 2048];
const WARM_BATCHES = 50;
/** Every write on the calling thread: far above any batch here (the option accepts up to 2^30 - 1). */
const ALL_SYNC = 512 * MIB;

const root = await benchDataDir('mqlog-sync-sweep-');
let seq = 0;

function records(count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => Buffer.alloc(RECORD, i & 0xff));
}

/** Mean ms per "append `count` records, await flush()" with the given threshold. */
async function logBatch(count: number, syncWriteMaxBytes: number, batches: number): Promise<number> {
  const recs = records(count);
  const dir = join(root, `log-${seq++}`);
  const store = await LogStore.open(dir, { retentionCheckMs: 0, syncWriteMaxBytes });
  try {
    const log = await store.open('sweep', { segmentBytes: 32 * MIB, retentionBytes: 64 * MIB, durability: { mode: 'never' }, tailBytes: 4 * MIB });
    const one = async (): Promise<void> => {
      for (const r of recs) log.append(r);
      await log.flush();
    };
    for (let i = 0; i < WARM_BATCHES; i++) await one();
    const t0 = performance.now();
    for (let i = 0; i < batches; i++) await one();
    return (performance.now() - t0) / batches;
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Mean ms per raw pwritev of the same buffers, through the threadpool or on the calling thread (the bench's RawWriter). */
async function rawBatch(count: number, batches: number, onThread = false): Promise<number> {
  const recs = records(count);
  const dir = join(root, `raw-${seq++}`);
  const raw = new RawWriter(dir, 32 * MIB, onThread);
  const one = (): Promise<void> => raw.batch(recs, count * RECORD, false);
  try {
    for (let i = 0; i < WARM_BATCHES; i++) await one();
    const t0 = performance.now();
    for (let i = 0; i < batches; i++) await one();
    return (performance.now() - t0) / batches;
  } finally {
    raw.close();
    await rm(dir, { recursive: true, force: true });
  }
}

try {
  console.log('batch     raw µs  threadpool ×raw  calling thread ×raw  raw writevSync ×raw   (3 repetitions)');
  for (const kib of SIZES_KIB) {
    const batches = Math.max(200, Math.round(200_000 / kib));
    const raws: string[] = [];
    const pool: string[] = [];
    const sync: string[] = [];
    const rs: string[] = [];
    for (let rep = 0; rep < 3; rep++) {
      const raw = await rawBatch(kib, batches);
      const rawSync = await rawBatch(kib, batches, true);
      rs.push((raw / rawSync).toFixed(2));
      const a = await logBatch(kib, 0, batches);
      const s = await logBatch(kib, ALL_SYNC, batches);
      raws.push((raw * 1000).toFixed(0));
      pool.push((raw / a).toFixed(2));
      sync.push((raw / s).toFixed(2));
    }
    console.log(`${`${kib} KiB`.padEnd(9)} ${raws.join('/').padEnd(12)} ${pool.join(' ').padEnd(16)} ${sync.join(' ').padEnd(20)} ${rs.join(' ')}`);
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
