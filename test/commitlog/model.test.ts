/**
 * Property-based: random sequences of append / flush / read / readTail / reopen (clean and
 * unclean) / retention, checked after every step against an in-memory model (an array of the
 * appended records plus the retained start).
 */
import test from 'ava';
import fc from 'fast-check';
import { LogStore, type CommitLog, type ReadBatch } from '../../commitlog/index.js';
import { crc32 } from 'node:zlib';
import { CRC32_IMPLEMENTATION, INDEX_ENTRY_BYTES, checksum, crc32Js, entryWords, writeEntry, writeEntryWords } from '../../commitlog/format.js';
import { readAll, tempDir } from './helpers.js';

type Op =
  | { kind: 'append'; sizes: number[] }
  | { kind: 'flush' }
  | { kind: 'read'; rel: number; maxRecords: number; maxBytes: number; tail: boolean }
  | { kind: 'reopen'; clean: boolean }
  | { kind: 'retain' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('append' as const), sizes: fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 12 }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'flush' as const }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      rel: fc.integer({ min: -3, max: 150 }),
      maxRecords: fc.integer({ min: 1, max: 40 }),
      maxBytes: fc.integer({ min: 1, max: 3000 }),
      tail: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const), clean: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'retain' as const }) },
);

function recordOf(offset: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (offset * 31 + i) & 0xff;
  return b;
}

test('random operation sequences agree with an in-memory model', async (t) => {
  const root = await tempDir(t);
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(opArb, { minLength: 1, maxLength: 30 }),
      fc.integer({ min: 64, max: 2048 }),
      fc.oneof(fc.constant(Number.POSITIVE_INFINITY), fc.integer({ min: 0, max: 6000 })),
      fc.integer({ min: 0, max: 4000 }),
      async (ops, segmentBytes, retentionBytes, tailBytes) => {
        const dir = `${root}/run-${run++}`;
        const opts = { segmentBytes, retentionBytes, tailBytes, durability: { mode: 'never' as const } };
        const stores: LogStore[] = [];
        const openLog = async (): Promise<CommitLog> => {
          const store = await LogStore.open(dir, { retentionCheckMs: 0 });
          stores.push(store);
          return store.open('m', opts);
        };
        const model: Buffer[] = [];
        let start = 0; // the model's retained start
        let log = await openLog();
        try {
          for (const op of ops) {
            switch (op.kind) {
              case 'append':
                for (const size of op.sizes) {
                  const off = model.length;
                  const rec = recordOf(off, size);
                  if (log.append(rec, off) !== off) return false;
                  model.push(rec);
                }
                break;
              case 'flush':
                await log.flush();
                if (log.committed !== model.length) return false;
                break;
              case 'read': {
                const from = start + op.rel;
                const before = { start: log.start, committed: log.committed };
                const batch: ReadBatch | null = op.tail
                  ? log.readTail(from, op.maxRecords, op.maxBytes)
                  : await log.read(from, op.maxRecords, op.maxBytes);
                if (!check(batch, from, op.maxRecords, op.maxBytes, log, model, before)) return false;
                break;
              }
              case 'reopen':
                await log.flush();
                await log.enforceRetention(); // a dead process runs nothing on: let it finish first
                if (op.clean) await (stores.at(-1) as LogStore).close();
                log = await openLog();
                break;
              case 'retain': {
                await log.flush();
                await log.enforceRetention();
                break;
              }
            }
            // Retention may run on its own (after commits, on open): start only moves forward,
            // never past the committed records, and never without a byte limit.
            if (log.end !== model.length || log.start < start || log.start > log.committed) return false;
            if (retentionBytes === Number.POSITIVE_INFINITY && log.start !== 0) return false;
            start = log.start;
          }
          await log.flush();
          await log.enforceRetention();
          start = log.start;
          const all = await readAll(log, start, 17, 1000);
          return all.length === model.length - start && all.every((r, i) => r.equals(model[start + i] as Buffer));
        } finally {
          for (const s of stores) await s.close();
        }
      },
    ),
    { numRuns: 100 },
  );
  t.pass();
});

function check(
  batch: ReadBatch | null,
  from: number,
  maxRecords: number,
  maxBytes: number,
  log: CommitLog,
  model: Buffer[],
  before: { start: number; committed: number },
): boolean {
  if (from < before.start) return batch !== null && batch.status === 'belowStart' && batch.next === log.start;
  if (batch === null) return from < before.committed || from < log.committed; // readTail: not in memory
  switch (batch.status) {
    case 'belowStart': // retention ran during the read
      return from < log.start && batch.next === log.start;
    case 'caughtUp':
      return from >= before.committed && from <= log.end && batch.records.length === 0 && batch.next === from;
    case 'beyondEnd':
      return from > log.end && batch.records.length === 0;
    case 'records': {
      const n = batch.records.length;
      if (n < 1 || n > maxRecords || from + n > log.committed || batch.next !== from + n) return false;
      let bytes = 0;
      for (let i = 0; i < n; i++) {
        const rec = batch.records[i] as Buffer;
        if (!rec.equals(model[from + i] as Buffer) || batch.timestamps[i] !== from + i) return false;
        bytes += rec.length;
      }
      return n === 1 || bytes <= maxBytes;
    }
  }
}

test('the JS CRC-32 for small records equals zlib.crc32 for any bytes and seed', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), (bytes, seed) => {
      return crc32Js(bytes, seed) === crc32(bytes, seed) && checksum(bytes, seed) === crc32(bytes, seed);
    }),
    { numRuns: 2000 },
  );
  t.is(checksum(new Uint8Array(0), 1234), 1234);
});

test('the native CRC-32 the log uses for chunks equals zlib.crc32 for any bytes and seed, views included', (t) => {
  // On linux-x64 (this project's CI) the @node-rs/crc32 binary must load; elsewhere zlib stands in.
  if (process.platform === 'linux' && process.arch === 'x64') t.is(CRC32_IMPLEMENTATION, '@node-rs/crc32');
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 96, maxLength: 70_000 }),
      fc.nat({ max: 50 }),
      fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      (bytes, cut, seed) => {
        const view = Buffer.from(bytes.buffer, bytes.byteOffset + Math.min(cut, bytes.length - 96), bytes.length - Math.min(cut, bytes.length - 96));
        return checksum(bytes, seed) === crc32(bytes, seed) && checksum(view, seed) === crc32(view, seed);
      },
    ),
    { numRuns: 300 },
  );
});

test('index entries written through a Uint32Array view equal those written with writeUInt32LE, and an unaligned buffer gets no view', (t) => {
  fc.assert(
    fc.property(
      fc.nat({ max: 2 ** 32 - 1 }),
      fc.nat({ max: 2 ** 30 - 1 }),
      fc.nat({ max: Number.MAX_SAFE_INTEGER }),
      fc.boolean(),
      (pos, len, ts, first) => {
        const slow = Buffer.alloc(2 * INDEX_ENTRY_BYTES, 0xaa);
        const fast = Buffer.alloc(2 * INDEX_ENTRY_BYTES, 0xaa);
        writeEntry(slow, INDEX_ENTRY_BYTES, pos, len, ts, first);
        writeEntryWords(entryWords(fast) as Uint32Array, INDEX_ENTRY_BYTES, pos, len, ts, first);
        return slow.equals(fast);
      },
    ),
  );
  t.not(entryWords(Buffer.alloc(40)), null, 'this host is little-endian and the buffer aligned');
  t.is(entryWords(Buffer.alloc(41).subarray(1)), null);
});
