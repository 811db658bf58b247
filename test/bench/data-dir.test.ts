/**
 * The benchmarks' data root (benches/lib/data-dir.ts): a directory on a disk, never tmpfs, so
 * a durable log is measured with the fdatasyncs it pays in production.
 */
import test from 'ava';
import { existsSync, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchDataDir, benchDataRoot } from '../../benches/lib/data-dir.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const TMPFS = 0x01021994;

// Each case sets MQLOG_BENCH_DIR for its own synchronous call and restores it before awaiting.
function withEnv<T>(value: string | undefined, f: () => T): T {
  const before = process.env.MQLOG_BENCH_DIR;
  if (value === undefined) delete process.env.MQLOG_BENCH_DIR;
  else process.env.MQLOG_BENCH_DIR = value;
  try {
    return f();
  } finally {
    if (before === undefined) delete process.env.MQLOG_BENCH_DIR;
    else process.env.MQLOG_BENCH_DIR = before;
  }
}

test('defaults to .bench-data/ in the repository, not the temp directory', (t) => {
  const root = withEnv(undefined, () => benchDataRoot());
  t.is(root, join(REPO, '.bench-data'));
  t.true(existsSync(root));
});

test('MQLOG_BENCH_DIR moves it, and fresh directories are made under it', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'mqlog-bench-root-'));
  try {
    const root = join(base, 'nested', 'root');
    const made = await withEnv(root, () => benchDataDir('case-'));
    t.true(made.startsWith(join(root, 'case-')));
    t.true(existsSync(made));
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('refuses a root on tmpfs, where fdatasync would cost nothing', (t) => {
  // /dev/shm is tmpfs on Linux; without one there is nothing to refuse here
  if (!existsSync('/dev/shm') || statfsSync('/dev/shm').type !== TMPFS) {
    t.log('no tmpfs at /dev/shm on this machine');
    t.pass();
    return;
  }
  const dir = join('/dev/shm', `mqlog-bench-test-${process.pid}`);
  try {
    const err = withEnv(dir, () => t.throws(() => benchDataRoot()));
    t.is((err as Error & { code?: string }).code, 'ERR_BENCH_DATA_DIR');
    t.regex((err as Error).message, /tmpfs/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
