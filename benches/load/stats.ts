/**
 * Summary statistics of samples (latencies, connect times). Pure functions, no I/O.
 * Median is the middle value (mean of the two middle ones for an even count); p90/p99 are
 * nearest-rank percentiles (the smallest sample with at least p% of samples at or below it).
 */

/** Summary of a set of samples; all fields 0 when there are none. */
export interface Summary {
  count: number;
  min: number;
  mean: number;
  median: number;
  p90: number;
  p99: number;
  max: number;
}

const EMPTY: Summary = Object.freeze({ count: 0, min: 0, mean: 0, median: 0, p90: 0, p99: 0, max: 0 });

/** Nearest-rank percentile of ascending-sorted samples, `p` in (0, 100]. */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? 0;
}

/** Median of ascending-sorted samples. */
export function medianSorted(sorted: ArrayLike<number>): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const mid = n >> 1;
  return n % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Summarizes samples. Sorts a copy; the input is left as it was. */
export function summarize(samples: ArrayLike<number>): Summary {
  if (samples.length === 0) return { ...EMPTY };
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    min: sorted[0] ?? 0,
    mean: sum / sorted.length,
    median: medianSorted(sorted),
    p90: percentileSorted(sorted, 90),
    p99: percentileSorted(sorted, 99),
    max: sorted[sorted.length - 1] ?? 0,
  };
}

/** The median of plain numbers (used for the medians of benchmark rounds). */
export function median(values: readonly number[]): number {
  return medianSorted(Float64Array.from(values).sort());
}

/** A growable array of doubles: pushes without boxing, hands out a trimmed view. */
export class SampleBuffer {
  #data: Float64Array;
  #length = 0;

  constructor(initialCapacity = 1024) {
    this.#data = new Float64Array(Math.max(16, initialCapacity));
  }

  get length(): number {
    return this.#length;
  }

  push(value: number): void {
    if (this.#length === this.#data.length) {
      const next = new Float64Array(this.#data.length * 2);
      next.set(this.#data);
      this.#data = next;
    }
    this.#data[this.#length++] = value;
  }

  /** A copy holding exactly the pushed samples (transferable to another thread). */
  toArray(): Float64Array {
    return this.#data.slice(0, this.#length);
  }
}
