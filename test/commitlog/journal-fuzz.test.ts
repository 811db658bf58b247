/**
 * Power-loss fuzzing of the journal: random appends, flushes and trims over four logs (two with
 * retention) through a small, often rotating journal, with "the disk after a power loss" taken
 * at random instants (test/helpers/power-loss-disk.ts: only fdatasynced bytes and fsynced
 * directory entries survive). Every image must reopen holding every record committed at its
 * instant, intact. One run without faults, one with EIO/ENOSPC injected into writes and syncs;
 * both again with journalDirectBytes low enough that many rounds bypass the journal.
 * Seeded, so a failure names its seed; bounded in steps and images.
 */
import test from 'ava';
import { join } from 'node:path';
import { LogStore, type CommitLog } from '../../commitlog/index.js';
import { PowerLossDisk } from '../helpers/power-loss-disk.js';
import { tempDir } from './helpers.js';

const STEPS = 300;
const MAX_IMAGES = 80;
const NAMES = ['a', 'b', 'c', 'd'] as const;

/** A small deterministic PRNG (LCG), so a failing seed reproduces. */
function prng(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
}

const record = (log: string, i: number): Buffer => {
  const b = Buffer.alloc(10 + ((i * 97 + log.length * 13) % 300), i & 0xff);
  b.write(`${log}:${i}:`);
  return b;
};

const logOptions = (name: string) => ({
  segmentBytes: 512 + (name.charCodeAt(0) % 3) * 512,
  retentionBytes: name === 'a' ? 2048 : name === 'b' ? 6000 : Number.MAX_SAFE_INTEGER,
});

interface Committed {
  start: number;
  committed: number;
  records: Buffer[];
}

// journalDirectBytes 600: rounds of a few records go through the journal, larger ones sync
// their log's own files, so one run mixes both ways of committing on the same files
for (const [seed, faults, direct] of [
  [7, false, Infinity],
  [11, true, Infinity],
  [13, false, 600],
  [17, true, 600],
] as const) {
  const how = `${faults ? ', EIO/ENOSPC injected' : ''}${direct === Infinity ? '' : `, rounds of ${direct} B or more direct`}`;
  test(`power-loss images at random instants hold every committed record (seed ${seed}${how})`, async (t) => {
    t.timeout(60_000);
    const base = await tempDir(t);
    const root = join(base, 'data');
    const disk = new PowerLossDisk(root);
    const rnd = prng(seed);
    if (faults) disk.fault = (op) => ((op === 'fdatasync' || op === 'write') && rnd() < 0.01 ? (rnd() < 0.5 ? 'EIO' : 'ENOSPC') : undefined);
    const store = await LogStore.open(root, {
      fileOps: disk.ops,
      journal: true,
      journalRotateBytes: 4096 + Math.floor(rnd() * 8192),
      journalDirectBytes: direct,
      maxOpenFiles: 4 + Math.floor(rnd() * 6),
      retentionCheckMs: 0,
      bootId: 'before',
    });
    const logs = new Map<string, CommitLog>();
    const content = new Map<string, Buffer[]>();
    for (const name of NAMES) {
      const log = await store.open(name, logOptions(name));
      logs.set(name, log);
      content.set(name, []);
      // a failed round takes its records back: the model forgets them too
      log.on('failed', (_err: unknown, from: number) => {
        (content.get(name) as Buffer[]).length = from;
      });
    }
    const images: Array<{ dir: string; committed: Map<string, Committed> }> = [];
    const snap = (): void => {
      const dir = join(base, `image-${images.length}`);
      disk.image(dir);
      const committed = new Map<string, Committed>();
      for (const [name, log] of logs) {
        committed.set(name, { start: log.start, committed: log.committed, records: (content.get(name) as Buffer[]).slice(0, log.committed) });
      }
      images.push({ dir, committed });
    };
    let stop = false;
    const snapper = (async () => {
      while (!stop && images.length < MAX_IMAGES - 2) {
        await new Promise((r) => setTimeout(r, 1 + Math.floor(rnd() * 8)));
        if (!stop) snap();
      }
    })();
    const pending: Promise<unknown>[] = [];
    for (let step = 0; step < STEPS; step++) {
      const name = NAMES[Math.floor(rnd() * NAMES.length)] as string;
      const log = logs.get(name) as CommitLog;
      const records = content.get(name) as Buffer[];
      for (let k = 1 + Math.floor(rnd() * 6); k > 0; k--) {
        const r = record(name, log.end);
        records[log.end] = r;
        records.length = log.end + 1;
        log.append(r);
      }
      const flushed = log.flush().catch(() => undefined);
      pending.push(flushed);
      if (rnd() < 0.3) await flushed;
      if (rnd() < 0.03) void log.trimBefore(Math.floor(log.committed * rnd())).catch(() => undefined);
      if (rnd() < 0.1) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(pending);
    stop = true;
    await snapper;
    snap();
    await new Promise((r) => setTimeout(r, 30)); // checkpoints in flight settle
    snap();
    await store.close().catch(() => undefined);

    const bad: string[] = [];
    for (const image of images) {
      let reopened: LogStore;
      try {
        reopened = await LogStore.open(image.dir, { retentionCheckMs: 0, bootId: 'after' });
      } catch (err) {
        bad.push(`${image.dir}: store open failed: ${(err as Error).message}`);
        continue;
      }
      try {
        for (const name of NAMES) {
          const want = image.committed.get(name) as Committed;
          try {
            const log = await reopened.open(name, logOptions(name));
            const from = Math.max(log.start, want.start); // retention at reopen may move start on
            const got: Buffer[] = [];
            for (let next = from; next < want.committed; ) {
              const batch = await log.read(next, 1000, 1 << 22);
              if (batch.status !== 'records') break;
              got.push(...batch.records);
              next = batch.next;
            }
            const expected = want.records.slice(from, want.committed);
            const intact = log.end >= want.committed && got.length >= expected.length && expected.every((r, i) => r.equals(got[i] as Buffer));
            if (!intact) bad.push(`${image.dir} log ${name}: committed [${want.start}, ${want.committed}), reopened [${log.start}, ${log.end}), read ${got.length}/${expected.length}`);
          } catch (err) {
            bad.push(`${image.dir} log ${name}: ${(err as Error).message}`);
          }
        }
      } finally {
        await reopened.close();
      }
    }
    t.true(images.length >= 10, `${images.length} images taken`);
    if (faults) t.true(disk.injected > 0, 'faults were injected');
    t.deepEqual(bad, [], `seed ${seed}: ${bad.length} of ${images.length} images lost committed records`);
    t.log(`${images.length} images, ${disk.injected} faults injected, none lost a committed record`);
  });
}
