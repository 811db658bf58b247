/**
 * Shared helpers of the commit log tests: temp dirs removed at teardown, deterministic record
 * contents (so any recovered record can be checked against what was written), and a FileOps
 * wrapper that injects failures.
 */
import type { ExecutionContext } from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeLine, parseLines } from '../../commitlog/boot-list.js';
import { LogStore, nodeFileOps, type CommitLog, type FileOps, type LogOptions, type StoreOptions } from '../../commitlog/index.js';

/** A fresh temp directory, removed when the test ends. */
export async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mqlog-commitlog-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The deterministic record for offset `i` of a test log: length varies with i (0..300 B). */
export function recordFor(i: number, salt = 0): Buffer {
  const len = (i * 37 + salt) % 301;
  const buf = Buffer.allocUnsafe(len + 8);
  buf.writeUInt32LE(i >>> 0, 0);
  buf.writeUInt32LE(salt >>> 0, 4);
  for (let k = 0; k < len; k++) buf[8 + k] = (i + k * 7 + salt) & 0xff;
  return buf;
}

/** A large deterministic record for offset `i` (32–40 KiB), so a kill often lands mid-write. */
export function bigRecordFor(i: number): Buffer {
  const head = recordFor(i);
  const body = Buffer.alloc(32 * 1024 + ((i * 977) % 8192), i & 0xff);
  return Buffer.concat([head, body]);
}

/** Opens a store at `dir` and closes it at teardown. */
export async function openStore(t: ExecutionContext, dir: string, opts: StoreOptions = {}): Promise<LogStore> {
  const store = await LogStore.open(dir, { retentionCheckMs: 0, ...opts });
  t.teardown(() => store.close());
  return store;
}

/** Reads every committed record of `log` from `from`, through read(). */
export async function readAll(log: CommitLog, from = log.start, maxRecords = 1000, maxBytes = 1 << 20): Promise<Buffer[]> {
  const out: Buffer[] = [];
  let next = from;
  for (;;) {
    const batch = await log.read(next, maxRecords, maxBytes);
    if (batch.status !== 'records') return out;
    out.push(...batch.records);
    next = batch.next;
  }
}

/** Appends records [from, to) of recordFor(), flushes, returns them. */
export async function appendRange(log: CommitLog, from: number, to: number, salt = 0): Promise<Buffer[]> {
  const recs: Buffer[] = [];
  for (let i = from; i < to; i++) {
    const r = recordFor(i, salt);
    recs.push(r);
    log.append(r, 1_700_000_000_000 + i);
  }
  await log.flush();
  return recs;
}

/** nodeFileOps that remember which path each fd was opened for; `with` builds overrides on top. */
export function pathAwareOps(with_: (pathOf: (fd: number) => string) => Partial<FileOps>): FileOps {
  const paths = new Map<number, string>();
  return {
    ...nodeFileOps,
    async open(path, create) {
      const fd = await nodeFileOps.open(path, create);
      paths.set(fd, path);
      return fd;
    },
    ...with_((fd) => paths.get(fd) ?? ''),
  };
}

/** A FileOps whose operations can be made to fail on demand. */
export interface FaultyOps extends FileOps {
  /** When set, the named operation fails with this errno code. */
  fail: Partial<Record<'writev' | 'fdatasync' | 'open' | 'ftruncate', string>>;
  /** writev writes this many bytes for real before failing (simulates a short write). */
  partialBytes: number;
  calls: Record<string, number>;
}

export function faultyOps(): FaultyOps {
  const errno = (code: string): Error => Object.assign(new Error(`injected ${code}`), { code });
  const ops: FaultyOps = {
    ...nodeFileOps,
    fail: {},
    partialBytes: 0,
    calls: {},
    async writev(fd, buffers, position) {
      ops.calls.writev = (ops.calls.writev ?? 0) + 1;
      const code = ops.fail.writev;
      if (code !== undefined) {
        if (ops.partialBytes > 0) {
          const all = Buffer.concat(buffers as Buffer[]);
          await nodeFileOps.writev(fd, [all.subarray(0, Math.min(all.length, ops.partialBytes))], position);
        }
        throw errno(code);
      }
      return nodeFileOps.writev(fd, buffers, position);
    },
    // Batches within syncWriteMaxBytes take the synchronous path: it fails the same way.
    writevSync(fd, buffers, position) {
      ops.calls.writev = (ops.calls.writev ?? 0) + 1;
      ops.calls.writevSync = (ops.calls.writevSync ?? 0) + 1;
      const code = ops.fail.writev;
      if (code !== undefined) {
        if (ops.partialBytes > 0) {
          const all = Buffer.concat(buffers as Buffer[]);
          nodeFileOps.writevSync?.(fd, [all.subarray(0, Math.min(all.length, ops.partialBytes))], position);
        }
        throw errno(code);
      }
      nodeFileOps.writevSync?.(fd, buffers, position);
    },
    async fdatasync(fd) {
      ops.calls.fdatasync = (ops.calls.fdatasync ?? 0) + 1;
      if (ops.fail.fdatasync !== undefined) throw errno(ops.fail.fdatasync);
      return nodeFileOps.fdatasync(fd);
    },
    async open(path, create) {
      if (ops.fail.open !== undefined) throw errno(ops.fail.open);
      return nodeFileOps.open(path, create);
    },
    async ftruncate(fd, len) {
      ops.calls.ftruncate = (ops.calls.ftruncate ?? 0) + 1;
      if (ops.fail.ftruncate !== undefined) throw errno(ops.fail.ftruncate);
      return nodeFileOps.ftruncate(fd, len);
    },
  };
  return ops;
}

export type { LogOptions };

/**
 * Takes `name` out of the store's clean-shutdown list under `dir` (`.clean-shutdown`), as if the
 * log's last stop had been a crash: its next open runs the full check.
 */
export async function markUnclean(dir: string, name: string): Promise<void> {
  const path = join(dir, '.clean-shutdown');
  const rest = parseLines(await readFile(path).catch(() => Buffer.alloc(0))).filter((f) => f[0] !== name);
  if (rest.length === 0) await rm(path, { force: true });
  else await writeFile(path, rest.map((f) => encodeLine(f)).join(''));
}

/** The names in a store list file (`.boot-<id>`, `.clean-shutdown`), in file order; [] if there is none. */
export async function listNames(path: string): Promise<string[]> {
  return parseLines(await readFile(path).catch(() => Buffer.alloc(0))).map((f) => f[0] as string);
}
