/**
 * The journal's commit delay (StoreOptions.commitDelayMs): a round nobody waits on starts no
 * sooner than the delay after the previous one, so commits share its fdatasync; a writer that
 * waits for each commit (it wrote less than the delay after its previous commit) is never
 * delayed. Timed against a 200-300 ms delay, far above a fdatasync on any disk CI runs on, so
 * "waited" and "did not wait" cannot be mistaken for each other.
 */
import test from 'ava';
import { LogStore, nodeFileOps, type FileOps } from '../../commitlog/index.js';
import { FileCache } from '../../commitlog/file-cache.js';
import { Journal, JOURNAL_PREFIX, type JournalFrame } from '../../commitlog/journal.js';
import { recordFor, tempDir } from './helpers.js';

/** nodeFileOps counting the journal's fdatasyncs, each made to take at least `slowMs`. */
function countJournalSyncs(slowMs = 0): { ops: FileOps; syncs: () => number } {
  const journalFds = new Set<number>();
  let syncs = 0;
  const ops: FileOps = {
    ...nodeFileOps,
    async open(path, create) {
      const fd = await nodeFileOps.open(path, create);
      if (path.includes(`/${JOURNAL_PREFIX}`)) journalFds.add(fd);
      return fd;
    },
    async fdatasync(fd) {
      if (!journalFds.has(fd)) return nodeFileOps.fdatasync(fd);
      syncs++;
      await Promise.all([nodeFileOps.fdatasync(fd), new Promise((r) => setTimeout(r, slowMs))]);
    },
  };
  return { ops, syncs: () => syncs };
}

function frame(i: number): JournalFrame {
  return { log: 'l', segmentBase: 0, segmentPos: i * 8, segment: [Buffer.alloc(8, i)], indexPos: i * 4, index: Buffer.alloc(4, i) };
}

/** Milliseconds `p` takes to settle. */
async function took(p: Promise<unknown>): Promise<number> {
  const start = performance.now();
  await p;
  return performance.now() - start;
}

const DELAY = 300;

test('Journal.commit: urgent commits start at once, the others wait for the delay after the previous round', async (t) => {
  const root = await tempDir(t);
  const { ops, syncs } = countJournalSyncs();
  const journal = new Journal(ops, new FileCache(ops, 16), root, 1, 1 << 20, 1 << 16, DELAY);
  t.teardown(() => journal.close());

  t.true((await took(journal.commit([frame(0)], [], Infinity))) < DELAY / 2, 'the first round has no previous one to wait for');
  const idle = await took(journal.commit([frame(1)], [], Infinity));
  t.true(idle >= DELAY - 100, `a writer idle for longer than the delay waits for it (${idle.toFixed(0)} ms)`);
  t.true((await took(journal.commit([frame(2)], [], 5))) < DELAY / 2, 'written 5 ms after its previous commit: urgent');
  const pipelined = await took(journal.commit([frame(3)], [], -1));
  t.true(pipelined >= DELAY - 100, `written while its previous commit was in flight: waits (${pipelined.toFixed(0)} ms)`);
  t.true(pipelined < DELAY * 3, 'and no longer than about the delay');

  // an urgent commit arriving during a wait starts the round at once, for both
  const before = syncs();
  const both = took(Promise.all([journal.commit([frame(4)], [], -1), journal.commit([frame(5)], [], 1)]));
  t.true((await both) < DELAY / 2, 'the waiting commit went with the urgent one');
  t.is(syncs() - before, 1, 'in one fdatasync');
});

test('Journal.close ends a commit delay early; a delay of 0 never waits', async (t) => {
  const root = await tempDir(t);
  const journal = new Journal(nodeFileOps, new FileCache(nodeFileOps, 16), root, 1, 1 << 20, 1 << 16, DELAY);
  await journal.commit([frame(0)], [], Infinity);
  const waiting = journal.commit([frame(1)], [], -1);
  t.true((await took(Promise.all([waiting, journal.close()]))) < DELAY / 2, 'close() did not sit out the delay');

  const none = new Journal(nodeFileOps, new FileCache(nodeFileOps, 16), await tempDir(t), 1, 1 << 20, 1 << 16, 0);
  t.teardown(() => none.close());
  await none.commit([frame(0)], [], Infinity);
  for (let i = 1; i <= 5; i++) t.true((await took(none.commit([frame(i)], [], -1))) < DELAY / 2);
});

test('a log that waits for each flush is never delayed; one that writes on meanwhile shares rounds', async (t) => {
  // 20 ms fdatasyncs: the pipelined writer below writes every 10 ms, so always during a round
  const { ops, syncs } = countJournalSyncs(20);
  const store = await LogStore.open(await tempDir(t), { journal: true, commitDelayMs: DELAY, fileOps: ops, logDefaults: { durability: { mode: 'batch' } } });
  t.teardown(() => store.close());
  const log = await store.open('t');

  // lock step: 10 commits, each written right after the previous one committed
  const lockStep = performance.now();
  for (let i = 0; i < 10; i++) {
    log.append(recordFor(i));
    await log.flush();
  }
  const elapsed = performance.now() - lockStep;
  t.true(elapsed < DELAY * 3, `10 lock-step commits took ${elapsed.toFixed(0)} ms (delayed, they would take ${DELAY * 9} ms or more)`);

  // pipelined: a record every 10 ms for ~900 ms, none waiting for its commit
  await new Promise((r) => setTimeout(r, DELAY + 50)); // nothing recent to wait for
  const before = syncs();
  const flushes: Promise<unknown>[] = [];
  const started = performance.now();
  for (let i = 0; i < 90; i++) {
    log.append(recordFor(100 + i));
    flushes.push(log.flush());
    await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.all(flushes);
  const span = performance.now() - started;
  const rounds = syncs() - before;
  // without the delay: a round every ~20 ms (~45 fdatasyncs); with it, one per 300 ms
  t.true(rounds <= Math.ceil(span / DELAY) + 2, `${rounds} journal fdatasyncs in ${span.toFixed(0)} ms`);
  t.is(log.end, 100);
});

test('Journal.hurry: a writer gap under the delay starts a waiting round now; others leave it waiting', async (t) => {
  const journal = new Journal(nodeFileOps, new FileCache(nodeFileOps, 16), await tempDir(t), 1, 1 << 20, 1 << 16, DELAY);
  t.teardown(() => journal.close());
  await journal.commit([frame(0)], [], Infinity);
  const slow = journal.commit([frame(1)], [], -1);
  journal.hurry(-1); // the writer sent on before its commit: not waiting
  journal.hurry(DELAY + 1); // idle longer than the delay: not waiting
  const waited = await took(slow);
  t.true(waited >= DELAY - 100, `gaps that are not urgent did not hurry the round (${waited.toFixed(0)} ms)`);

  const pending = journal.commit([frame(2)], [], -1);
  setTimeout(() => journal.hurry(2), 20);
  t.true((await took(pending)) < DELAY / 2, 'a writer 2 ms after its commit started the waiting round');
});

test("a lock-step writer sharing its log with a pipelining one keeps its pace through requestSync's writer gap", async (t) => {
  // 20 ms fdatasyncs and a writer appending every 10 ms without waiting: the log always has a
  // round in flight, so by the log's own gap every round looks pipelined and waits the delay
  const { ops } = countJournalSyncs(20);
  const store = await LogStore.open(await tempDir(t), { journal: true, commitDelayMs: DELAY, fileOps: ops, logDefaults: { durability: { mode: 'batch' } } });
  t.teardown(() => store.close());
  const log = await store.open('t');
  let stop = false;
  const pipelined: Promise<unknown>[] = [];
  const pipeline = (async () => {
    for (let i = 0; !stop; i++) {
      log.append(recordFor(1000 + i));
      pipelined.push(log.flush());
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  await new Promise((r) => setTimeout(r, 50));

  // the lock-step writer: each record after its previous commit, saying how long after
  let lastCommit = performance.now();
  const started = lastCommit;
  for (let i = 0; i < 8; i++) {
    log.append(recordFor(i));
    log.requestSync(performance.now() - lastCommit);
    await log.flush();
    lastCommit = performance.now();
  }
  const elapsed = performance.now() - started;
  stop = true;
  await pipeline;
  await Promise.all(pipelined);
  t.true(elapsed < DELAY * 3, `8 lock-step commits took ${elapsed.toFixed(0)} ms; delayed, they would take ${DELAY * 7} ms or more`);
});
