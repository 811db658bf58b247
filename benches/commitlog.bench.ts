/**
 * Commit log benchmarks (`npm run bench:commitlog`): append throughput (64 B and 1 KiB records,
 * durability 'never' and 'batch'), tail and cold reads, each beside the raw ceiling of plain
 * `fs` calls moving the same bytes in the same run; then the experiments behind the design
 * choices in notes/commitlog.md: record-only segments + crc index vs Kafka-style framing
 * (append and recovery), open time of a big log, and the cost of 10k idle logs.
 *
 * Every benchmark checks its result before it is timed. Results: benches/results/commitlog.json.
 * Set COMMITLOG_BENCH_QUICK=1 for a short smoke run (fewer logs, shorter timings).
 */
import { Bench } from 'tinybench';
import * as fs from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { crc32 } from 'node:zlib';
import { LogStore, nodeFileOps, type CommitLog, type FileOps, type LogOptions } from '../commitlog/index.js';
import { benchDataDir } from './lib/data-dir.js';
import { RawWriter } from './lib/raw-writer.js';
import { printTable, rowFromTask, writeResults, type BenchRow } from './lib/reporter.js';

const QUICK = process.env.COMMITLOG_BENCH_QUICK === '1';
const MIB = 1024 * 1024;
const TASK_TIME_MS = QUICK ? 300 : 1500;
const SEGMENT_BYTES = 64 * MIB;
/** Append benchmarks: 32 MiB segments, at most ~64 MiB kept; the raw writer rotates alike. */
const APPEND_SEGMENT_BYTES = 32 * MIB;
const RETENTION_BYTES = 64 * MIB;
const READ_LOG_BYTES = QUICK ? 16 * MIB : 64 * MIB;
const MANY_LOGS = QUICK ? 1000 : 10_000;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

// not os.tmpdir(): see benches/lib/data-dir.ts
const root = await benchDataDir('mqlog-bench-');
const rows: BenchRow[] = [];
const notes: Record<string, unknown> = {};
let logSeq = 0;

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`benchmark self-check failed: ${what}`);
}

function makeRecords(count: number, size: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => {
    const b = Buffer.allocUnsafe(size);
    b.fill(i & 0xff);
    b.writeUInt32LE(i, 0);
    return b;
  });
}

/** Kafka-style framing for the layout experiment: [len u32 | crc u32 | ts u64] before each record. */
const FRAME_BYTES = 16;
class FramedWriter {
  readonly raw: RawWriter;
  constructor(dir: string, rotateBytes: number) {
    this.raw = new RawWriter(dir, rotateBytes);
  }
  async batch(recs: Buffer[], sync: boolean): Promise<void> {
    const bufs: Buffer[] = [];
    const headers = Buffer.allocUnsafe(recs.length * FRAME_BYTES);
    let bytes = 0;
    const ts = Date.now();
    for (let i = 0; i < recs.length; i++) {
      const rec = recs[i] as Buffer;
      const at = i * FRAME_BYTES;
      headers.writeUInt32LE(rec.length, at);
      headers.writeUInt32LE(crc32(rec, rec.length), at + 4);
      headers.writeUInt32LE(ts % 2 ** 32, at + 8);
      headers.writeUInt32LE(Math.floor(ts / 2 ** 32), at + 12);
      bufs.push(headers.subarray(at, at + FRAME_BYTES), rec);
      bytes += FRAME_BYTES + rec.length;
    }
    await this.raw.batch(bufs, bytes, sync);
  }
}

/** Validates a framed file the way Kafka's recovery does: walk frames, check each crc. */
function scanFramed(path: string): number {
  const fd = fs.openSync(path, 'r');
  const size = fs.fstatSync(fd).size;
  const win = Buffer.allocUnsafe(8 * MIB);
  let pos = 0;
  let count = 0;
  while (pos < size) {
    const got = fs.readSync(fd, win, 0, Math.min(win.length, size - pos), pos);
    let p = 0;
    while (p + FRAME_BYTES <= got) {
      const len = win.readUInt32LE(p);
      if (p + FRAME_BYTES + len > got) break;
      const rec = win.subarray(p + FRAME_BYTES, p + FRAME_BYTES + len);
      if (crc32(rec, len) !== win.readUInt32LE(p + 4)) throw new Error('framed crc mismatch');
      p += FRAME_BYTES + len;
      count++;
    }
    pos += p;
  }
  fs.closeSync(fd);
  return count;
}

/** A FileOps that counts calls, for syscalls per batch. */
function countingOps(): { ops: FileOps; calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  const ops = Object.fromEntries(
    Object.entries(nodeFileOps).map(([k, f]) => [
      k,
      (...args: unknown[]) => {
        calls[k] = (calls[k] ?? 0) + 1;
        return (f as (...a: unknown[]) => Promise<unknown>)(...args);
      },
    ]),
  ) as unknown as FileOps;
  return { ops, calls };
}

async function openLog(opts: LogOptions, fileOps?: FileOps): Promise<{ store: LogStore; log: CommitLog; dir: string }> {
  const dir = join(root, `store-${logSeq++}`);
  const store = await LogStore.open(dir, { retentionCheckMs: 0, ...(fileOps === undefined ? {} : { fileOps }) });
  const log = await store.open('bench', opts);
  return { store, log, dir };
}

function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

// ---------------------------------------------------------------- appends vs raw writes
async function appendBenches(): Promise<void> {
  const cases = [
    { size: 64, batch: 1024, mode: 'never' as const },
    { size: 1024, batch: 256, mode: 'never' as const },
    { size: 64, batch: 1024, mode: 'batch' as const },
    { size: 1024, batch: 256, mode: 'batch' as const },
  ];
  for (const c of cases) {
    const recs = makeRecords(c.batch, c.size);
    const bytes = c.size * c.batch;
    const { store, log } = await openLog({
      segmentBytes: APPEND_SEGMENT_BYTES,
      retentionBytes: RETENTION_BYTES,
      durability: { mode: c.mode },
      tailBytes: 4 * MIB,
    });
    // Self-check: one batch round-trips through the disk path.
    const first = log.end;
    for (const r of recs) log.append(r);
    await log.flush();
    log.dropTail();
    const back = await log.read(first, c.batch, 64 * MIB);
    check(back.records.length === c.batch && back.records.every((r, i) => r.equals(recs[i] as Buffer)), `append ${c.size} B round trip`);
    const raw = new RawWriter(join(root, `raw-${logSeq++}`), APPEND_SEGMENT_BYTES);
    const rawOnThread = new RawWriter(join(root, `raw-${logSeq++}`), APPEND_SEGMENT_BYTES, true);
    const sync = c.mode === 'batch';
    const bench = new Bench({ time: TASK_TIME_MS, warmupTime: 200 });
    const logName = `append ${c.size} B x${c.batch} (${c.mode})`;
    const rawName = `raw pwritev ${c.batch} bufs${sync ? ' + fdatasync' : ''}`;
    bench
      .add(`${rawName} (threadpool)`, async () => {
        await raw.batch(recs, bytes, sync);
      })
      .add(`${rawName} (calling thread)`, async () => {
        await rawOnThread.batch(recs, bytes, sync);
      })
      .add(logName, async () => {
        for (const r of recs) log.append(r);
        await log.flush();
      });
    await bench.run();
    const [rawTask, rawOnThreadTask, logTask] = bench.tasks;
    const logRow = rowFromTask(logTask as NonNullable<typeof logTask>, { bytes, records: c.batch });
    const rawRows = [rawTask, rawOnThreadTask].map((task) => rowFromTask(task as NonNullable<typeof task>, { bytes, records: c.batch }));
    const ceiling = Math.max(...rawRows.map((r) => r.mbPerSec ?? 0));
    logRow.extra = { 'x raw': (logRow.mbPerSec ?? 0) / ceiling };
    rows.push(logRow, ...rawRows);
    raw.close();
    rawOnThread.close();
    await store.close();
  }
}

// ---------------------------------------------------------------- appends pipelined, wall clock
/**
 * Throughput the way a producer drives a log: batch k+1 is appended while batch k is written
 * (one batch in flight; the caller awaits batch k before appending k+2). tinybench times each
 * call and leaves out the time between calls, during which a write in the background moves on,
 * so these rows are timed by the wall clock over whole rounds instead: rounds of `batches`
 * batches, log and raw alternating, and each row is the median round. The raw round is the
 * same sequential pwritevs as above, back to back; they cannot overlap (one file, in order).
 */
async function pipelinedAppends(): Promise<void> {
  const rounds = QUICK ? 3 : 7;
  const batches = QUICK ? 200 : 1000;
  for (const mode of ['never', 'batch'] as const) {
    const size = 1024;
    const batch = 256;
    const bytes = size * batch;
    const sync = mode === 'batch';
    const perRound = sync ? batches / 4 : batches;
    const recs = makeRecords(batch, size);
    const { store, log } = await openLog({ segmentBytes: APPEND_SEGMENT_BYTES, retentionBytes: RETENTION_BYTES, durability: { mode }, tailBytes: 4 * MIB });
    const raw = new RawWriter(join(root, `raw-${logSeq++}`), APPEND_SEGMENT_BYTES);
    const rawOnThread = new RawWriter(join(root, `raw-${logSeq++}`), APPEND_SEGMENT_BYTES, true);
    const logMs: number[] = [];
    const rawMs: number[] = [];
    const rawOnThreadMs: number[] = [];
    for (let round = -1; round < rounds; round++) {
      let t0 = performance.now();
      for (let b = 0; b < perRound; b++) await raw.batch(recs, bytes, sync);
      const rawRound = performance.now() - t0;
      t0 = performance.now();
      for (let b = 0; b < perRound; b++) await rawOnThread.batch(recs, bytes, sync);
      const rawOnThreadRound = performance.now() - t0;
      const first = log.end;
      t0 = performance.now();
      let inFlight: Promise<void> = Promise.resolve();
      for (let b = 0; b < perRound; b++) {
        for (const r of recs) log.append(r);
        const previous = inFlight;
        inFlight = log.flush();
        await previous;
      }
      await inFlight;
      const logRound = performance.now() - t0;
      check(log.committed === first + perRound * batch, 'pipelined appends all committed');
      if (round >= 0) {
        // round -1 warms both up
        logMs.push(logRound);
        rawMs.push(rawRound);
        rawOnThreadMs.push(rawOnThreadRound);
      }
    }
    const logRound = medianOf(logMs);
    const rawRound = medianOf(rawMs);
    const rawOnThreadRound = medianOf(rawOnThreadMs);
    // no per-batch latencies here (batches overlap): rates from the median round only
    const row = (name: string, ms: number): BenchRow => {
      const opsPerSec = perRound / (ms / 1000);
      return { name, opsPerSec, mbPerSec: (opsPerSec * bytes) / 1e6, recordsPerSec: opsPerSec * batch, samples: rounds };
    };
    const logRow = row(`append ${size} B x${batch} (${mode}, pipelined; wall clock)`, logRound);
    const rawName = `raw pwritev ${batch} bufs${sync ? ' + fdatasync' : ''}`;
    const rawRow = row(`${rawName} (threadpool; wall clock)`, rawRound);
    const rawOnThreadRow = row(`${rawName} (calling thread; wall clock)`, rawOnThreadRound);
    logRow.extra = { 'x raw': Math.min(rawRound, rawOnThreadRound) / logRound };
    rows.push(logRow, rawRow, rawOnThreadRow);
    const ms = (xs: number[]): number[] => xs.map((x) => +x.toFixed(1));
    notes[`pipelined_${mode}_roundsMs`] = { log: ms(logMs), raw: ms(rawMs), rawCallingThread: ms(rawOnThreadMs), batchesPerRound: perRound };
    raw.close();
    rawOnThread.close();
    await store.close();
  }
}

// ---------------------------------------------------------------- where an append's time goes
/**
 * 1 KiB x 256 appends ('never') interleaved with raw pwritevs of the same buffers: medians of the
 * whole append+flush, of the 256 append() calls alone (the copy into the tail), of the segment
 * pwritev and of the index pwrite inside the flush (timed through the FileOps seam, on whichever
 * thread they run), and of the raw pwritev on the threadpool and on the calling thread.
 */
async function appendLatencySplit(): Promise<void> {
  const seg: number[] = [];
  const idx: number[] = [];
  /** The 256 KiB segment write and the ~5 KiB index write of a batch, told apart by size. */
  const timed = (bufs: readonly Buffer[], ms: number): void => {
    let bytes = 0;
    for (const b of bufs) bytes += b.length;
    (bytes >= 64 * 1024 ? seg : idx).push(ms);
  };
  const ops: FileOps = {
    ...nodeFileOps,
    writev: async (fd, bufs, pos) => {
      const t0 = performance.now();
      await nodeFileOps.writev(fd, bufs, pos);
      timed(bufs, performance.now() - t0);
    },
    writevSync: (fd, bufs, pos) => {
      const t0 = performance.now();
      (nodeFileOps.writevSync as NonNullable<FileOps['writevSync']>)(fd, bufs, pos);
      timed(bufs, performance.now() - t0);
    },
  };
  const { store, log } = await openLog({ durability: { mode: 'never' }, segmentBytes: APPEND_SEGMENT_BYTES, retentionBytes: RETENTION_BYTES }, ops);
  const recs = makeRecords(256, 1024);
  const raw = new RawWriter(join(root, `raw-${logSeq++}`), APPEND_SEGMENT_BYTES);
  const rawOnThread = new RawWriter(join(root, `raw-${logSeq++}`), APPEND_SEGMENT_BYTES, true);
  const total: number[] = [];
  const appends: number[] = [];
  const rawT: number[] = [];
  const rawOnThreadT: number[] = [];
  const rounds = QUICK ? 500 : 3000;
  for (let i = 0; i < rounds; i++) {
    let t0 = performance.now();
    for (const r of recs) log.append(r);
    appends.push(performance.now() - t0);
    await log.flush();
    total.push(performance.now() - t0);
    t0 = performance.now();
    await raw.batch(recs, 256 * 1024, false);
    rawT.push(performance.now() - t0);
    t0 = performance.now();
    await rawOnThread.batch(recs, 256 * 1024, false);
    rawOnThreadT.push(performance.now() - t0);
  }
  raw.close();
  rawOnThread.close();
  await store.close();
  notes.appendLatencySplit1KiBx256 = {
    rounds,
    appendFlushMedianMs: medianOf(total),
    appendCallsMedianMs: medianOf(appends),
    segmentPwritevMedianMs: medianOf(seg),
    indexPwriteMedianMs: medianOf(idx),
    rawPwritevMedianMs: medianOf(rawT),
    rawPwritevCallingThreadMedianMs: medianOf(rawOnThreadT),
  };
}

// ---------------------------------------------------------------- syscalls per batch
async function syscallCount(): Promise<void> {
  for (const mode of ['batch', 'never'] as const) {
    const { ops, calls } = countingOps();
    const { store, log } = await openLog({ durability: { mode } }, ops);
    const recs = makeRecords(512, 100);
    for (const r of recs) log.append(r);
    await log.flush(); // first batch creates the segment: not counted
    for (const k of Object.keys(calls)) delete calls[k];
    const batches = 50;
    for (let b = 0; b < batches; b++) {
      for (const r of recs) log.append(r);
      await log.flush();
    }
    notes[`fileOpsPerBatch_${mode}`] = Object.fromEntries(Object.entries(calls).map(([k, v]) => [k, v / batches]));
    await store.close();
  }
}

// ---------------------------------------------------------------- reads: tail, cold, raw
async function readBenches(): Promise<void> {
  for (const size of [64, 1024]) {
    const count = READ_LOG_BYTES / size;
    const recs = makeRecords(count, size);
    const { store, log, dir } = await openLog({ segmentBytes: 2 * READ_LOG_BYTES, tailBytes: 2 * READ_LOG_BYTES, durability: { mode: 'never' } });
    for (let i = 0; i < count; i += 4096) {
      for (let k = i; k < Math.min(count, i + 4096); k++) log.append(recs[k] as Buffer);
      await log.flush();
    }
    const maxRecords = 1 << 20;
    const maxBytes = MIB;
    const readTailAll = (): number => {
      let next = 0;
      let n = 0;
      for (;;) {
        const b = log.readTail(next, maxRecords, maxBytes);
        if (b === null || b.status !== 'records') return n;
        n += b.records.length;
        next = b.next;
      }
    };
    const readDiskAll = async (): Promise<number> => {
      let next = 0;
      let n = 0;
      for (;;) {
        const b = await log.read(next, maxRecords, maxBytes);
        if (b.status !== 'records') return n;
        n += b.records.length;
        next = b.next;
      }
    };
    check(readTailAll() === count, 'tail read count');
    const t0 = log.readTail(count - 1, 1, 1);
    const t1 = log.readTail(count - 1, 1, 1);
    check(t0?.records[0]?.equals(recs[count - 1] as Buffer) === true, 'tail read returns the appended bytes');
    check(t0?.records[0]?.buffer === t1?.records[0]?.buffer && t0?.records[0]?.byteOffset === t1?.records[0]?.byteOffset, 'tail reads are views of one slab');
    const bench = new Bench({ time: TASK_TIME_MS, warmupTime: 200 });
    bench.add(`tail read ${size} B (${READ_LOG_BYTES / MIB} MiB)`, () => {
      readTailAll();
    });
    await bench.run();
    // Cold: drop the tail; reads go to the segment (which the OS still caches).
    log.dropTail();
    check(log.readTail(0, 1, 1) === null, 'tail dropped');
    const sample = await log.read(12345 % count, 3, MIB);
    check(sample.records.every((r, i) => r.equals(recs[(12345 % count) + i] as Buffer)), 'cold read content');
    check((await readDiskAll()) === count, 'cold read count');
    const segPath = join(dir, 'bench', '00000000000000000000.segment');
    const fd = fs.openSync(segPath, 'r');
    const segSize = fs.fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(MIB);
    const rawRead = async (): Promise<number> => {
      let pos = 16;
      let total = 0;
      while (pos < segSize) {
        const got = await nodeFileOps.read(fd, buf, 0, Math.min(MIB, segSize - pos), pos);
        pos += got;
        total += got;
      }
      return total;
    };
    check((await rawRead()) === READ_LOG_BYTES, 'raw read size');
    const cold = new Bench({ time: TASK_TIME_MS, warmupTime: 200 });
    cold.add(`cold read ${size} B (${READ_LOG_BYTES / MIB} MiB, page cache)`, async () => {
      await readDiskAll();
    });
    cold.add(`raw pread 1 MiB (${READ_LOG_BYTES / MIB} MiB, page cache)`, async () => {
      await rawRead();
    });
    await cold.run();
    const tailRow = rowFromTask(bench.tasks[0] as NonNullable<(typeof bench.tasks)[0]>, { bytes: READ_LOG_BYTES, records: count });
    const coldRow = rowFromTask(cold.tasks[0] as NonNullable<(typeof cold.tasks)[0]>, { bytes: READ_LOG_BYTES, records: count });
    const rawRow = rowFromTask(cold.tasks[1] as NonNullable<(typeof cold.tasks)[1]>, { bytes: READ_LOG_BYTES });
    tailRow.extra = { 'x raw': (tailRow.mbPerSec ?? 0) / (rawRow.mbPerSec ?? 1) };
    coldRow.extra = { 'x raw': (coldRow.mbPerSec ?? 0) / (rawRow.mbPerSec ?? 1) };
    rows.push(tailRow, coldRow, rawRow);
    fs.closeSync(fd);
    await store.close();
  }
}

// ---------------------------------------------------------------- layout experiment
async function layoutExperiment(): Promise<void> {
  for (const [size, batch] of [
    [64, 1024],
    [1024, 256],
  ] as const) {
    const recs = makeRecords(batch, size);
    const framedDir = join(root, `framed-${logSeq++}`);
    const framed = new FramedWriter(framedDir, APPEND_SEGMENT_BYTES);
    await framed.batch(recs, false);
    check(scanFramed(join(framedDir, 'raw-0')) === batch, 'framed batch scans back');
    const bench = new Bench({ time: TASK_TIME_MS, warmupTime: 200 });
    bench.add(`framed append ${size} B x${batch} (never)`, async () => {
      await framed.batch(recs, false);
    });
    await bench.run();
    rows.push(rowFromTask(bench.tasks[0] as NonNullable<(typeof bench.tasks)[0]>, { bytes: size * batch, records: batch }));
    framed.raw.close();
  }
  // Recovery of one full 64 MiB segment of 1 KiB records, both layouts, page cache warm.
  const recs = makeRecords(1024, 1024);
  const fill = 48 * MIB; // all in one segment: the newest, which an unclean open validates
  const { store, log, dir } = await openLog({ segmentBytes: SEGMENT_BYTES, durability: { mode: 'never' } });
  for (let written = 0; written < fill; written += 1024 * 1024) {
    for (const r of recs) log.append(r);
    await log.flush();
  }
  const records = log.end;
  await log.flush();
  const framedDir = join(root, `framed-rec-${logSeq++}`);
  const fw = new FramedWriter(framedDir, Number.POSITIVE_INFINITY);
  for (let written = 0; written < fill; written += 1024 * 1024) await fw.batch(recs, false);
  fw.raw.close();
  const ours: number[] = [];
  const kafka: number[] = [];
  for (let round = 0; round < 3; round++) {
    // Unclean open: not in the store's clean-shutdown list, so the whole newest segment is validated.
    const s2 = await LogStore.open(dir, { retentionCheckMs: 0 });
    const t0 = performance.now();
    const again = await s2.open('bench');
    ours.push(performance.now() - t0);
    check(again.end === records && !again.recovery.clean, 'unclean reopen recovers every record');
    await s2.close();
    fs.rmSync(join(dir, '.clean-shutdown'), { force: true });
    const t1 = performance.now();
    const n = scanFramed(join(framedDir, 'raw-0'));
    kafka.push(performance.now() - t1);
    check(n === records, 'framed scan count');
  }
  notes.recovery64MiB = {
    records,
    recordOnlyCrcIndexMs: medianOf(ours),
    kafkaFramedScanMs: medianOf(kafka),
    note: 'median of 3; framed scan is synchronous readSync in 8 MiB windows, ours is async pread in 8 MiB windows',
  };
  await store.close();
}

// ---------------------------------------------------------------- open time of a big log
async function bigLogOpen(): Promise<void> {
  const segments = QUICK ? 2 : 4;
  const recs = makeRecords(1024, 1024);
  const { store, log, dir } = await openLog({ segmentBytes: SEGMENT_BYTES, durability: { mode: 'never' } });
  while (log.diskBytes < segments * SEGMENT_BYTES - 2 * MIB) {
    for (const r of recs) log.append(r);
    await log.flush();
  }
  const end = log.end;
  const bytes = log.diskBytes;
  await store.close();
  const timeOpen = async (): Promise<number> => {
    const s = await LogStore.open(dir, { retentionCheckMs: 0 });
    const t0 = performance.now();
    const l = await s.open('bench');
    const ms = performance.now() - t0;
    check(l.end === end, 'big log reopens whole');
    await s.close();
    return ms;
  };
  const clean: number[] = [];
  const unclean: number[] = [];
  for (let i = 0; i < 3; i++) {
    clean.push(await timeOpen());
    fs.rmSync(join(dir, '.clean-shutdown'));
    unclean.push(await timeOpen());
  }
  notes.bigLogOpen = { bytes, records: end, segments: Math.ceil(bytes / SEGMENT_BYTES), cleanOpenMs: medianOf(clean), uncleanOpenMs: medianOf(unclean) };
}

// ---------------------------------------------------------------- many idle logs
async function manyLogs(): Promise<void> {
  const dir = join(root, 'many');
  let store = await LogStore.open(dir, { retentionCheckMs: 0, maxOpenFiles: 1024 });
  const rec = Buffer.alloc(100, 1);
  const tCreate = performance.now();
  for (let i = 0; i < MANY_LOGS; i += 500) {
    const batch = [];
    for (let k = i; k < Math.min(MANY_LOGS, i + 500); k++) {
      const log = await store.open(`topic-${k}`, { durability: { mode: 'never' } });
      log.append(rec);
      batch.push(log.flush());
    }
    await Promise.all(batch);
  }
  const createMs = performance.now() - tCreate;
  const tClose = performance.now();
  await store.close();
  const closeMs = performance.now() - tClose;
  let diskBytes = 0;
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    diskBytes += fs.statSync(join(dir, ent.name)).blocks * 512; // the store's two lists are counted too
    if (!ent.isDirectory()) continue;
    for (const f of fs.readdirSync(join(dir, ent.name))) diskBytes += fs.statSync(join(dir, ent.name, f)).blocks * 512;
  }
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const fdsBefore = fs.readdirSync('/proc/self/fd').length;
  const tOpen = performance.now();
  store = await LogStore.open(dir, { retentionCheckMs: 0, maxOpenFiles: 1024 });
  const logs: CommitLog[] = [];
  for (const name of store.names()) logs.push(await store.open(name));
  const openMs = performance.now() - tOpen;
  check(logs.length === MANY_LOGS && logs.every((l) => l.end === 1), 'every log reopened with its record');
  const fdsOpen = fs.readdirSync('/proc/self/fd').length - fdsBefore;
  // Touch each once (a read from disk, then idle).
  for (const l of logs) await l.read(0, 1, 1000);
  gc();
  const heapPerLog = (process.memoryUsage().heapUsed - heapBefore) / MANY_LOGS;
  const fdsIdle = fs.readdirSync('/proc/self/fd').length - fdsBefore;
  await store.close();
  // The same, all opens issued at once (recoveries compete for the fd LRU's slots).
  store = await LogStore.open(dir, { retentionCheckMs: 0, maxOpenFiles: 1024 });
  const tConcurrent = performance.now();
  const opened = await Promise.all(store.names().map((name) => store.open(name)));
  const openConcurrentMs = performance.now() - tConcurrent;
  check(opened.length === MANY_LOGS && opened.every((l) => l.end === 1), 'every log reopened concurrently');
  notes.manyLogs = {
    logs: MANY_LOGS,
    createMs,
    closeAllMs: closeMs,
    openAllCleanMs: openMs,
    openAllCleanConcurrentMs: openConcurrentMs,
    heapBytesPerIdleLog: Math.round(heapPerLog),
    fdsAfterOpeningAll: fdsOpen,
    fdsAfterReadingAll: fdsIdle,
    maxOpenFiles: 1024,
    diskBytesPerLog: Math.round(diskBytes / MANY_LOGS),
  };
  await store.close();
}

try {
  const t0 = performance.now();
  await appendBenches();
  await pipelinedAppends();
  if (process.env.COMMITLOG_BENCH_ONLY === 'append') {
    // no process.exit() here: it would skip the finally below and leave the logs on disk
    printTable('commit log appends only (COMMITLOG_BENCH_ONLY=append)', rows);
    console.log(JSON.stringify(notes));
  } else await allBenches(t0);
} finally {
  await rm(root, { recursive: true, force: true });
}

async function allBenches(t0: number): Promise<void> {
  await appendLatencySplit();
  await syscallCount();
  await readBenches();
  await layoutExperiment();
  await bigLogOpen();
  await manyLogs();
  printTable('commit log (tinybench; MB = 10^6 bytes; x raw = log MB/s / the faster raw write in the same run)', rows);
  console.log('\nexperiments:', JSON.stringify(notes, null, 2));
  const path = writeResults(QUICK ? 'commitlog-quick' : 'commitlog', rows, { ...notes, totalSeconds: (performance.now() - t0) / 1000 });
  console.log(`\nwrote ${path}`);
}
