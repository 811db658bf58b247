/**
 * Receiver-side accounting: what one subscribing client got from each publisher it expects.
 * From the payload header alone (see payload.ts) it counts unique deliveries, duplicates,
 * reordering and, at the end, losses; and it keeps every end-to-end latency sample.
 *
 * Definitions (per sender, sequence numbers 0..expected-1):
 * - duplicate: a sequence number already seen;
 * - reordered: a first arrival whose sequence number is below the highest one seen before it;
 * - lost: expected minus unique deliveries, known only when the run is over;
 * - unexpected: a well-formed payload of this run from a sender not expected, or with a sequence
 *   number past the expected count (a broker delivering to the wrong subscriber).
 * Payloads of other runs or without the header are counted as `foreign` and otherwise ignored.
 */
import { readPayloadHeader } from './payload.js';
import { SampleBuffer } from './stats.js';

/** Summable totals of one or many receivers. */
export interface DeliveryCounts {
  expected: number;
  unique: number;
  duplicates: number;
  reordered: number;
  lost: number;
  unexpected: number;
  foreign: number;
}

/** An all-zero {@link DeliveryCounts}. */
export function zeroCounts(): DeliveryCounts {
  return { expected: 0, unique: 0, duplicates: 0, reordered: 0, lost: 0, unexpected: 0, foreign: 0 };
}

/** Adds `b` into `a`. */
export function addCounts(a: DeliveryCounts, b: DeliveryCounts): void {
  a.expected += b.expected;
  a.unique += b.unique;
  a.duplicates += b.duplicates;
  a.reordered += b.reordered;
  a.lost += b.lost;
  a.unexpected += b.unexpected;
  a.foreign += b.foreign;
}

class SenderState {
  readonly expected: number;
  readonly seen: Uint8Array;
  readonly latencyUs = new SampleBuffer(256);
  unique = 0;
  duplicates = 0;
  reordered = 0;
  highest = -1;

  constructor(expected: number) {
    this.expected = expected;
    this.seen = new Uint8Array(expected);
  }
}

/** Accounting of one receiving client. */
export class ReceiverAccounting {
  readonly #runId: number;
  readonly #senders = new Map<number, SenderState>();
  #expectedTotal = 0;
  #uniqueTotal = 0;
  #unexpected = 0;
  #foreign = 0;

  constructor(runId: number) {
    this.#runId = runId;
  }

  /** Declares that `count` messages (sequence 0..count-1) are expected from `sender`. */
  expect(sender: number, count: number): void {
    if (this.#senders.has(sender)) throw new Error(`sender ${sender} is already expected`);
    this.#senders.set(sender, new SenderState(count));
    this.#expectedTotal += count;
  }

  /** True once every expected message has arrived at least once. */
  get complete(): boolean {
    return this.#uniqueTotal >= this.#expectedTotal;
  }

  /** Unique deliveries so far. */
  get unique(): number {
    return this.#uniqueTotal;
  }

  /**
   * Records one delivered payload received at `nowNs` (process.hrtime.bigint()).
   * Returns the sender index, or -1 when the payload was foreign or unexpected.
   */
  record(payload: Buffer, nowNs: bigint): number {
    const h = readPayloadHeader(payload);
    if (h === null || h.runId !== this.#runId) {
      this.#foreign++;
      return -1;
    }
    const s = this.#senders.get(h.sender);
    if (s === undefined || h.seq >= s.expected) {
      this.#unexpected++;
      return -1;
    }
    s.latencyUs.push(Number(nowNs - h.sentNs) / 1000);
    if (s.seen[h.seq] === 1) {
      s.duplicates++;
      return h.sender;
    }
    s.seen[h.seq] = 1;
    s.unique++;
    this.#uniqueTotal++;
    if (h.seq < s.highest) s.reordered++;
    else s.highest = h.seq;
    return h.sender;
  }

  /** Totals so far; `lost` counts whatever has not arrived yet. */
  counts(): DeliveryCounts {
    const c = zeroCounts();
    for (const s of this.#senders.values()) {
      c.expected += s.expected;
      c.unique += s.unique;
      c.duplicates += s.duplicates;
      c.reordered += s.reordered;
    }
    c.lost = c.expected - c.unique;
    c.unexpected = this.#unexpected;
    c.foreign = this.#foreign;
    return c;
  }

  /** Latency samples (µs) of one sender, or of all senders when omitted. */
  latencies(sender?: number): Float64Array {
    if (sender !== undefined) return this.#senders.get(sender)?.latencyUs.toArray() ?? new Float64Array(0);
    const parts = [...this.#senders.values()].map((s) => s.latencyUs.toArray());
    const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /** The senders this receiver expects. */
  senders(): number[] {
    return [...this.#senders.keys()];
  }
}
