/**
 * Where benchmarks keep the files they measure: the commit log bench's logs and raw files, and
 * the data directory of every mqlog broker that bench:broker and cpu-split.sh start. Not the
 * system's temp directory: on a tmpfs /tmp (the default on Fedora, Arch and Debian 13)
 * fdatasync costs nothing, so a durable log would be measured without its durability, and the
 * comparison with brokers that keep nothing on disk would flatter it.
 *
 * The root is `$MQLOG_BENCH_DIR`, else `.bench-data/` in the repository (git ignores it); a
 * tmpfs or ramfs root is refused. A broker's production data directory lives on a disk, in a
 * directory of its own (`--data-dir`, default ./data): this is the same.
 */
import { mkdirSync, statfsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** statfs f_type of tmpfs (linux/magic.h) and of ramfs. */
const MEMORY_FS_TYPES = new Set([0x01021994, 0x858458f6]);

export class BenchDirError extends Error {
  readonly code = 'ERR_BENCH_DATA_DIR';
}

/** The benchmarks' data root, created if needed; throws BenchDirError when it is in memory. */
export function benchDataRoot(): string {
  const dir = resolve(process.env.MQLOG_BENCH_DIR ?? join(ROOT, '.bench-data'));
  mkdirSync(dir, { recursive: true });
  const { type } = statfsSync(dir);
  if (MEMORY_FS_TYPES.has(type)) {
    throw new BenchDirError(`benchmark data directory ${dir} is on tmpfs/ramfs, where fdatasync is free: set MQLOG_BENCH_DIR to a directory on a disk`);
  }
  return dir;
}

/** A fresh directory under benchDataRoot(), named `<prefix>XXXXXX`. */
export function benchDataDir(prefix: string): Promise<string> {
  return mkdtemp(join(benchDataRoot(), prefix));
}
