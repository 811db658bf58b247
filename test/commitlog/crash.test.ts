/**
 * Real crash tests: a child process appends and reports each commit, and is SIGKILLed at a
 * random moment; the reopened log must hold every record the child saw committed, intact, and
 * nothing that was not written (every record equals recordFor(its offset)).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LogStore } from '../../commitlog/index.js';
import { bigRecordFor, readAll, recordFor, tempDir } from './helpers.js';

const WRITER = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));

/** Runs the writer until it has reported a commit, waits `killAfterMs` more, SIGKILLs it. */
function runAndKill(dir: string, mode: string, size: 'small' | 'big', killAfterMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import=tsx', WRITER, dir, mode, size], { stdio: ['ignore', 'pipe', 'pipe'] });
    let reported = -1;
    let pending = '';
    let armed = false;
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) reported = Math.max(reported, Number(line));
      if (!armed && reported > 0) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (signal !== 'SIGKILL') reject(new Error(`writer exited with ${code}: ${stderr}`));
      else resolve(reported);
    });
  });
}

for (const [mode, size, rounds] of [
  ['batch', 'small', 4],
  ['lazy', 'small', 2],
  ['never', 'small', 2],
  ['interval', 'small', 2],
  ['batch', 'big', 2],
  ['never', 'big', 2],
  ['journal', 'small', 3],
  ['journal', 'big', 2],
] as const) {
  const make = size === 'big' ? bigRecordFor : recordFor;
  test(`after SIGKILL at random moments (${mode}, ${size} records), every reported commit survives intact`, async (t) => {
    const dir = await tempDir(t);
    let seed = mode.length * 7919;
    let replayed = 0;
    for (let round = 0; round < rounds; round++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const reported = await runAndKill(dir, mode, size, 5 + (seed % 200));
      const store = await LogStore.open(dir, { retentionCheckMs: 0 });
      const log = await store.open('crash');
      t.false(log.recovery.clean);
      replayed += store.journalReplay.files;
      t.true(log.end >= reported, `round ${round}: child reported ${reported} committed, log ends at ${log.end}`);
      const records = await readAll(log, 0, 5000, 8 << 20);
      t.is(records.length, log.end);
      let bad = -1;
      for (let i = 0; i < records.length && bad < 0; i++) if (!(records[i] as Buffer).equals(make(i))) bad = i;
      t.is(bad, -1, `round ${round}: record ${bad} differs from what was written`);
      t.log(`round ${round}: reported ${reported}, recovered ${log.end}, truncated ${log.recovery.truncatedRecords}`);
      await store.close();
    }
    // A single kill may land after a checkpoint deleted the old journal file and before the next
    // frame started the new one (the logs' files were synced then, so nothing is lost); across
    // the rounds, the killed writer must have left a journal that the open replayed.
    if (mode === 'journal') t.true(replayed >= 1, 'a killed writer left its journal, replayed at open');
  });
}
