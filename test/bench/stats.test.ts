/** Latency math: median and nearest-rank percentiles on inputs whose answers are known. */
import test from 'ava';
import { median, percentileSorted, SampleBuffer, summarize } from '../../benches/load/stats.js';

test('summarizes 1..100 with median 50.5, p90 90, p99 99, max 100', (t) => {
  const s = summarize(Array.from({ length: 100 }, (_, i) => 100 - i));
  t.is(s.count, 100);
  t.is(s.min, 1);
  t.is(s.median, 50.5);
  t.is(s.p90, 90);
  t.is(s.p99, 99);
  t.is(s.max, 100);
  t.is(s.mean, 50.5);
});

test('takes the middle value as median of an odd count and does not reorder the input', (t) => {
  const input = [9, 1, 5];
  t.is(summarize(input).median, 5);
  t.deepEqual(input, [9, 1, 5]);
});

test('nearest-rank percentile picks the smallest sample covering p percent', (t) => {
  const sorted = [10, 20, 30, 40, 50, 60, 70, 80, 90, 1000];
  t.is(percentileSorted(sorted, 90), 90);
  t.is(percentileSorted(sorted, 99), 1000);
  t.is(percentileSorted(sorted, 50), 50);
  t.is(percentileSorted([], 99), 0);
});

test('an empty sample set summarizes to zeros', (t) => {
  t.deepEqual(summarize([]), { count: 0, min: 0, mean: 0, median: 0, p90: 0, p99: 0, max: 0 });
});

test('median of round figures averages the two middle values', (t) => {
  t.is(median([4, 1, 3, 2]), 2.5);
});

test('a sample buffer grows past its capacity and keeps every value', (t) => {
  const b = new SampleBuffer(16);
  for (let i = 0; i < 1000; i++) b.push(i);
  const a = b.toArray();
  t.is(a.length, 1000);
  t.is(a[999], 999);
  t.is(summarize(a).median, 499.5);
});
