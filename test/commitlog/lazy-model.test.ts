/**
 * A randomised model of 'batch' durability with lazyMs (deferred writes) across segment rolls,
 * retention, trimBefore, dropTail, a tiny tail budget, injected write and fdatasync failures,
 * delayed syncs and kill -9 snapshots. After every step and at the end it checks:
 *   C1 a commit through c follows completed fdatasyncs of every segment and index byte below c;
 *   C2 records someone asked to sync (requestSync) commit or fail within 2 s;
 *   C3 flush() and close() settle;
 *   C4 reads (synced and unsynced) return exactly the bytes appended at those offsets;
 *   C5 a copy of the files taken at any moment (a kill -9) reopens with every record committed
 *      by then, intact, and holds no other bytes at an offset readers could already read
 *      (below `flushed`): records a failure took back must not return there;
 *   C6 after close and reopen every record appended and not failed is there, and offsets are
 *      never handed out twice;
 *   C7 committed ≤ flushed ≤ end.
 * Seeds are fixed, so a failure names its seed; the run is bounded (about 10–20 s).
 */
import test from 'ava';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { LogStore, nodeFileOps, type CommitLog, type FileOps } from '../../commitlog/index.js';
import { pathAwareOps, tempDir } from './helpers.js';

const HEADER = 16;
const ENTRY = 20;
const SEGMENT_BYTES = 2048;

/** A small deterministic generator (numbers in [0, 1)). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`C3 HANG: ${what} not settled in ${ms} ms`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

async function readFrom(log: CommitLog, from: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let next = from; ; ) {
    const b = await log.read(next, 1000, 1 << 24);
    if (b.status !== 'records') return out;
    out.push(...b.records);
    next = b.next;
  }
}

interface Faults {
  failSync: number;
  failWrite: number;
  syncDelayMs: number;
}

/** FileOps that inject failures and delays and remember how far each file was fdatasynced. */
function modelOps(r: () => number, faults: Faults): { ops: FileOps; synced: Map<string, number> } {
  const synced = new Map<string, number>();
  const errno = (code: string) => Object.assign(new Error(`injected ${code}`), { code });
  const ops = pathAwareOps((pathOf) => ({
    async fdatasync(fd) {
      const path = pathOf(fd);
      const size = fs.fstatSync(fd).size;
      if (faults.syncDelayMs > 0) await sleep(Math.floor(r() * faults.syncDelayMs));
      if (faults.failSync > 0) {
        faults.failSync--;
        throw errno('EIO');
      }
      await nodeFileOps.fdatasync(fd);
      synced.set(path, Math.max(synced.get(path) ?? 0, size));
    },
    async ftruncate(fd, length) {
      const path = pathOf(fd);
      const was = synced.get(path);
      if (was !== undefined) synced.set(path, Math.min(was, length));
      return nodeFileOps.ftruncate(fd, length);
    },
    async unlink(path) {
      synced.delete(path);
      return nodeFileOps.unlink(path);
    },
    writev(fd, buffers, position) {
      if (faults.failWrite > 0) {
        faults.failWrite--;
        return Promise.reject(errno('ENOSPC'));
      }
      return nodeFileOps.writev(fd, buffers, position);
    },
    writevSync(fd, buffers, position) {
      if (faults.failWrite > 0) {
        faults.failWrite--;
        throw errno('ENOSPC');
      }
      nodeFileOps.writevSync?.(fd, buffers, position);
    },
  }));
  return { ops, synced };
}

/** Copies the log's files one by one, as a kill -9 would leave them (a file deleted meanwhile is skipped). */
function snapshot(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  let names: string[] = [];
  try {
    names = fs.readdirSync(from);
  } catch {
    return;
  }
  for (const n of names) {
    try {
      fs.writeFileSync(join(to, n), fs.readFileSync(join(from, n)));
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw e;
    }
  }
}

/** Runs one seed; resolves to null, or to the first violated check. */
async function runSeed(root: string, seed: number, lazyMs: number): Promise<string | null> {
  const r = rng(seed);
  const faults: Faults = { failSync: 0, failWrite: 0, syncDelayMs: 0 };
  const { ops, synced } = modelOps(r, faults);
  const dir = join(root, `seed-${seed}`);
  const store = await LogStore.open(dir, { retentionCheckMs: 0, fileOps: ops, tailBudgetBytes: r() < 0.5 ? 0 : 1 << 20 });
  // a second log, so the store's tail budget drops ours on the other's commits
  const other = await store.open('o', { durability: { mode: 'batch' } });
  const retention = r() < 0.5 ? { retentionBytes: SEGMENT_BYTES * 3 } : {};
  const log = await store.open('m', { durability: { mode: 'batch', lazyMs }, segmentBytes: SEGMENT_BYTES, tailBytes: r() < 0.5 ? 0 : 4096, ...retention });
  const logDir = join(dir, 'm');
  const contents: Buffer[] = [];
  const requests: { target: number; at: number }[] = [];
  let failures = 0;
  let error: string | null = null;

  log.on('commit', (c) => {
    // C1: each segment holding records below c is synced up to them, index included
    let names: string[] = [];
    try {
      names = fs.readdirSync(logDir);
    } catch {
      // not created yet
    }
    const bases = names.filter((n) => n.endsWith('.segment')).map((n) => Number(n.slice(0, 20))).sort((a, b) => a - b);
    for (let k = 0; k < bases.length; k++) {
      const base = bases[k] as number;
      if (base >= c) break;
      if (base < log.start) continue;
      const until = Math.min(c, bases[k + 1] ?? c);
      let pos = HEADER;
      for (let i = base; i < until; i++) pos += (contents[i] as Buffer).length;
      const seg = join(logDir, `${String(base).padStart(20, '0')}.segment`);
      const idx = seg.replace(/\.segment$/, '.index');
      if ((synced.get(seg) ?? 0) < pos || (synced.get(idx) ?? 0) < HEADER + (until - base) * ENTRY) {
        error ??= `C1 commit ${c} before segment ${base} was synced through offset ${until}`;
      }
    }
    for (let i = requests.length - 1; i >= 0; i--) if ((requests[i] as { target: number }).target <= c) requests.splice(i, 1);
  });
  log.on('failed', (_err, from) => {
    failures++;
    contents.length = from;
    for (let i = requests.length - 1; i >= 0; i--) if ((requests[i] as { target: number }).target > from) requests.splice(i, 1);
  });

  const flushes: Promise<unknown>[] = [];
  const snaps: { path: string; committed: number; contents: Buffer[] }[] = [];
  // contents: every record below `flushed` at the snapshot
  const steps = 60 + Math.floor(r() * 80);
  for (let s = 0; s < steps && error === null; s++) {
    const x = r();
    if (x < 0.3) {
      const n = 1 + Math.floor(r() * 4);
      for (let k = 0; k < n; k++) {
        const rec = Buffer.alloc(1 + Math.floor(r() * 200), (contents.length * 7 + 1) & 0xff);
        if (rec.length >= 4) rec.writeUInt32LE(contents.length, 0);
        const off = log.append(rec);
        contents[off] = Buffer.from(rec);
      }
      if (r() < 0.3) other.append(Buffer.alloc(100));
    } else if (x < 0.4) {
      log.requestSync();
      if (log.end > log.committed) requests.push({ target: log.end, at: Date.now() });
    } else if (x < 0.45) flushes.push(within(log.flush().catch(() => undefined), 5000, `flush() at step ${s}`));
    else if (x < 0.48) faults.failSync = 1;
    else if (x < 0.5) faults.failWrite = 1;
    else if (x < 0.56) faults.syncDelayMs = Math.floor(r() * 15);
    else if (x < 0.6) log.dropTail();
    else if (x < 0.62) void log.trimBefore(Math.floor(r() * log.end)).catch(() => undefined);
    else if (x < 0.64) void log.enforceRetention().catch(() => undefined);
    else if (x < 0.7) {
      // C4
      const unsynced = r() < 0.7;
      const visible = unsynced ? log.flushed : log.committed;
      if (visible > log.start) {
        const from = log.start + Math.floor(r() * (visible - log.start));
        const want = contents.slice(from, visible).map((b) => Buffer.from(b));
        const failuresBefore = failures;
        try {
          const b = await log.read(from, 50, 1 << 20, unsynced);
          if (failures === failuresBefore && b.status === 'records') {
            b.records.forEach((rec, i) => {
              const w = want[i];
              if (w !== undefined && !rec.equals(w)) error ??= `C4 offset ${from + i} (unsynced ${unsynced}) reads other bytes`;
            });
          } else if (failures === failuresBefore && b.status !== 'belowStart') error ??= `C4 read(${from}) answered ${b.status} below ${visible}`;
        } catch (e) {
          error ??= `C4 read threw ${(e as Error).message}`;
        }
      }
    } else if (x < 0.74) {
      // C5: the files as a kill -9 would leave them now
      const path = join(root, `seed-${seed}-snap-${snaps.length}`);
      snapshot(logDir, join(path, 'm'));
      snaps.push({ path, committed: log.committed, contents: contents.slice(0, log.flushed) });
    } else if (x < 0.88) await new Promise((res) => setImmediate(res));
    else await sleep(Math.floor(r() * 8));
    // C7, C2
    if (!(log.committed <= log.flushed && log.flushed <= log.end)) error ??= `C7 committed ${log.committed} flushed ${log.flushed} end ${log.end}`;
    for (const q of requests) if (Date.now() - q.at > 2000) error ??= `C2 requestSync() at end ${q.target} not committed after 2 s`;
  }
  const deadline = Date.now() + 2500;
  while (error === null && requests.length > 0 && Date.now() < deadline) await sleep(5);
  if (error === null && requests.length > 0) error = `C2 requestSync() at end ${(requests[0] as { target: number }).target} never committed`;

  try {
    await Promise.all(flushes);
    faults.failSync = faults.failWrite = 0;
    await within(log.close(), 5000, 'close()');
    const endAtClose = log.end;
    const again = await store.open('m', { segmentBytes: SEGMENT_BYTES });
    if (again.end < endAtClose) error ??= `C6 closed at end ${endAtClose}, reopened at ${again.end}: offsets would be reused`;
    const got = await readFrom(again, again.start);
    const want = contents.slice(again.start);
    const differs = want.some((c, i) => !c.equals(got[i] ?? Buffer.alloc(0)));
    if (got.length < want.length || differs || (failures === 0 && got.length !== want.length)) {
      error ??= `C6 reopened ${got.length} records from ${again.start}, expected ${want.length}`;
    }
    await within(store.close(), 5000, 'store.close()');
    for (const snap of snaps) {
      if (error !== null) break;
      const s2 = await LogStore.open(snap.path, { retentionCheckMs: 0 });
      try {
        const l2 = await s2.open('m', { segmentBytes: SEGMENT_BYTES });
        if (l2.end < snap.committed) error = `C5 a kill -9 snapshot reopened at end ${l2.end}, below committed ${snap.committed}`;
        else {
          const g = await readFrom(l2, l2.start);
          const n = Math.min(g.length, snap.contents.length - l2.start);
          for (let i = 0; i < n && error === null; i++) {
            if (!(snap.contents[l2.start + i] as Buffer).equals(g[i] as Buffer)) error = `C5 after a kill -9, offset ${l2.start + i} holds other bytes than readers saw`;
          }
        }
      } catch (e) {
        error = `C5 a kill -9 snapshot does not reopen: ${(e as Error).message}`;
      } finally {
        await s2.close();
      }
    }
  } catch (e) {
    error ??= (e as Error).message;
  }
  return error;
}

for (const [lazyMs, first, count] of [
  [3_600_000, 1, 60],
  [3, 101, 60],
] as const) {
  test(`lazyMs ${lazyMs}: seeds ${first}..${first + count - 1} keep every check`, async (t) => {
    t.timeout(60_000);
    const root = await tempDir(t);
    const failed: string[] = [];
    for (let seed = first; seed < first + count; seed++) {
      const err = await within(runSeed(root, seed, lazyMs), 30_000, `seed ${seed}`).catch((e: Error) => e.message);
      if (err !== null) failed.push(`seed ${seed}: ${err}`);
    }
    t.deepEqual(failed, []);
  });
}
