/**
 * Experiment: how long a store's open takes when a kill -9 left a full journal to replay, and
 * how many bytes the journal adds per record. A child process appends `RECORD` byte records
 * round-robin over `LOGS` logs (store journal on, durability 'batch') until its journal file
 * holds `MIB` MiB, just under the rotation bound, then SIGKILLs itself. The parent copies the
 * data directory twice and times `LogStore.open` (the replay) plus opening every log (their
 * recovery) on each copy: once with the page cache as the kill left it, once after dropping it
 * (when /proc/sys/vm/drop_caches is writable: root), which is the power-loss case.
 * Run: npx tsx benches/experiments/journal-replay.ts [LOGS=200] [RECORD=1024] [MIB=63]
 * (figures: notes/2026-11-23-journal-default.md). Local files only; bounded by MIB.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LogStore } from '../../commitlog/index.js';

const [logsArg, recordArg, mibArg, childDir] = process.argv.slice(2);
const LOGS = Number(logsArg ?? 200);
const RECORD = Number(recordArg ?? 1024);
const MIB = Number(mibArg ?? 63);

async function journalBytes(dir: string): Promise<number> {
  let n = 0;
  for (const f of await readdir(dir)) if (f.startsWith('.journal-')) n += (await stat(join(dir, f))).size;
  return n;
}

async function dirBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && !e.name.startsWith('.journal-')) n += (await stat(join(e.parentPath, e.name))).size;
  }
  return n;
}

/** The child: append until the journal is MIB MiB, print the counts, kill -9 itself. */
async function child(dir: string): Promise<never> {
  const store = await LogStore.open(dir, { journal: true, journalRotateBytes: 64 * 1024 * 1024 });
  const logs = await Promise.all(Array.from({ length: LOGS }, (_, i) => store.open(`t${i}`)));
  const record = Buffer.alloc(RECORD, 0x61);
  let records = 0;
  const target = MIB * 1024 * 1024;
  for (;;) {
    // one record per log per round, every log's round in one turn: the group commit's shape
    for (const log of logs) log.append(record);
    records += LOGS;
    await Promise.all(logs.map((l) => l.flush()));
    if ((await journalBytes(dir)) >= target) break;
  }
  writeFileSync(join(dir, 'child.json'), JSON.stringify({ records, journal: await journalBytes(dir), logBytes: await dirBytes(dir) }));
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

async function timeOpen(dir: string): Promise<{ replayMs: number; recoverMs: number; frames: number }> {
  const t0 = performance.now();
  const store = await LogStore.open(dir);
  const t1 = performance.now();
  await Promise.all(store.names().map((n) => store.open(n)));
  const t2 = performance.now();
  const frames = store.journalReplay.frames;
  await store.close();
  return { replayMs: t1 - t0, recoverMs: t2 - t1, frames };
}

function dropCaches(): boolean {
  const path = '/proc/sys/vm/drop_caches';
  if (!existsSync(path)) return false;
  try {
    spawnSync('sync');
    writeFileSync(path, '3\n');
    return true;
  } catch {
    return false;
  }
}

if (childDir !== undefined) {
  await child(childDir);
} else {
  const base = await mkdtemp(join(tmpdir(), 'mqlog-jreplay-'));
  try {
    const dir = join(base, 'data');
    const self = fileURLToPath(import.meta.url);
    spawnSync(process.execPath, ['--import=tsx', self, String(LOGS), String(RECORD), String(MIB), dir], { stdio: 'inherit' });
    const made = JSON.parse(await readFile(join(dir, 'child.json'), 'utf8')) as {
      records: number;
      journal: number;
      logBytes: number;
    };
    const warm = join(base, 'warm');
    const cold = join(base, 'cold');
    await cp(dir, warm, { recursive: true });
    await cp(dir, cold, { recursive: true });
    const w = await timeOpen(warm);
    const dropped = dropCaches();
    const c = await timeOpen(cold);
    const perRecord = made.journal / made.records;
    const row = {
      logs: LOGS,
      recordBytes: RECORD,
      records: made.records,
      journalMiB: +(made.journal / 2 ** 20).toFixed(1),
      journalBytesPerRecord: +perRecord.toFixed(1),
      logBytesPerRecord: +(made.logBytes / made.records).toFixed(1),
      warm: { replayMs: +w.replayMs.toFixed(0), recoverMs: +w.recoverMs.toFixed(0), frames: w.frames },
      cold: dropped ? { replayMs: +c.replayMs.toFixed(0), recoverMs: +c.recoverMs.toFixed(0), frames: c.frames } : 'page cache not dropped (not root)',
    };
    console.table([
      { case: 'warm (kill -9)', 'replay ms': row.warm.replayMs, 'log recovery ms': row.warm.recoverMs, frames: row.warm.frames },
      ...(dropped ? [{ case: 'cold (caches dropped)', 'replay ms': +c.replayMs.toFixed(0), 'log recovery ms': +c.recoverMs.toFixed(0), frames: c.frames }] : []),
    ]);
    console.log(JSON.stringify(row));
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}
