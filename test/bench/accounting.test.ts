/** Receiver accounting on crafted sequences: losses, duplicates, reordering, strangers. */
import test from 'ava';
import { ReceiverAccounting } from '../../benches/load/accounting.js';
import { HEADER_BYTES, payloadTemplate, readPayloadHeader, stampPayload } from '../../benches/load/payload.js';

const RUN = 77;

function msg(sender: number, seq: number, sentNs: bigint, run = RUN): Buffer {
  const p = payloadTemplate(64, run, sender);
  stampPayload(p, 0, seq, sentNs);
  return p;
}

test('a payload carries run id, sender, sequence and send time, and reads back', (t) => {
  const h = readPayloadHeader(msg(3, 41, 123_456_789n));
  t.deepEqual(h, { runId: RUN, sender: 3, seq: 41, sentNs: 123_456_789n });
  t.is(readPayloadHeader(Buffer.alloc(HEADER_BYTES - 1)), null);
  t.is(readPayloadHeader(Buffer.alloc(64)), null);
});

test('counts every 10th message missing as lost', (t) => {
  const a = new ReceiverAccounting(RUN);
  a.expect(0, 100);
  for (let seq = 0; seq < 100; seq++) if (seq % 10 !== 9) a.record(msg(0, seq, 0n), 1000n);
  const c = a.counts();
  t.is(c.unique, 90);
  t.is(c.lost, 10);
  t.is(c.duplicates, 0);
  t.is(c.reordered, 0);
  t.false(a.complete);
});

test('counts a repeated sequence number as a duplicate, not a second delivery', (t) => {
  const a = new ReceiverAccounting(RUN);
  a.expect(0, 5);
  for (const seq of [0, 1, 1, 2, 3, 3, 3, 4]) a.record(msg(0, seq, 0n), 1n);
  const c = a.counts();
  t.is(c.unique, 5);
  t.is(c.duplicates, 3);
  t.is(c.lost, 0);
  t.true(a.complete);
});

test('counts a first arrival below the highest seen sequence as reordered', (t) => {
  const a = new ReceiverAccounting(RUN);
  a.expect(0, 6);
  for (const seq of [0, 2, 1, 3, 5, 4]) a.record(msg(0, seq, 0n), 1n);
  const c = a.counts();
  t.is(c.reordered, 2);
  t.is(c.unique, 6);
  t.is(c.lost, 0);
});

test('keeps senders apart: reordering across senders is not reordering', (t) => {
  const a = new ReceiverAccounting(RUN);
  a.expect(0, 3);
  a.expect(1, 3);
  for (const [s, q] of [[0, 0], [1, 0], [0, 1], [1, 1], [1, 2], [0, 2]] as const) a.record(msg(s, q, 0n), 1n);
  t.is(a.counts().reordered, 0);
  t.true(a.complete);
});

test('counts other runs and headerless payloads as foreign, strangers and overflows as unexpected', (t) => {
  const a = new ReceiverAccounting(RUN);
  a.expect(0, 2);
  a.record(msg(0, 0, 0n, RUN + 1), 1n);
  a.record(Buffer.from('hello'), 1n);
  a.record(msg(5, 0, 0n), 1n);
  a.record(msg(0, 2, 0n), 1n);
  const c = a.counts();
  t.is(c.foreign, 2);
  t.is(c.unexpected, 2);
  t.is(c.unique, 0);
  t.is(c.lost, 2);
});

test('measures latency as receive time minus send time, in microseconds', (t) => {
  const a = new ReceiverAccounting(RUN);
  a.expect(0, 3);
  a.record(msg(0, 0, 1_000_000n), 1_250_000n);
  a.record(msg(0, 1, 2_000_000n), 2_100_000n);
  a.record(msg(0, 2, 3_000_000n), 3_500_000n);
  t.deepEqual([...a.latencies(0)], [250, 100, 500]);
  t.deepEqual([...a.latencies()], [250, 100, 500]);
});
