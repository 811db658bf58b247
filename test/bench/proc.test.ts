/** Broker CPU and RSS from /proc, and the per-delivered-message figure built on them. */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { clockTicksPerSecond, parseStatTicks, parseVmRssBytes, sampleProcess, schedstatCpuNs } from '../../benches/load/proc.js';
import { runLoad } from '../../benches/load/runner.js';
import { startAedes } from './helpers/brokers.js';

test('reads utime+stime after a command name with spaces and parentheses', (t) => {
  const stat = '1234 (my (odd) broker) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 1 0 100 1000000 200 18446744073709551615';
  t.is(parseStatTicks(stat), 325);
});

test('reads VmRSS in bytes', (t) => {
  t.is(parseVmRssBytes('Name:\tnode\nVmRSS:\t   51200 kB\nThreads: 7\n'), 51_200 * 1024);
  t.is(parseVmRssBytes('Name: x\n'), 0);
});

test('samples a live process and returns null for one that does not exist', (t) => {
  const s = sampleProcess(process.pid);
  t.truthy(s);
  t.true((s?.cpuUs ?? 0) > 0);
  t.true((s?.rssBytes ?? 0) > 10 * 1024 * 1024);
  t.is(sampleProcess(2 ** 31 - 2), null);
  t.true(clockTicksPerSecond() > 0);
});

test('sums CPU time over all threads from schedstat, agreeing with the tick count of /proc/PID/stat', (t) => {
  const end = performance.now() + 300;
  while (performance.now() < end) Math.sqrt(Math.random());
  const ns = schedstatCpuNs(process.pid);
  const ticksUs = (parseStatTicks(readFileSync(`/proc/${process.pid}/stat`, 'utf8')) * 1e6) / clockTicksPerSecond();
  t.truthy(ns, 'this kernel has schedstats');
  // The two clocks differ in accounting details; they agree within a few ticks plus 10 %.
  t.true(Math.abs((ns ?? 0) / 1000 - ticksUs) < 50_000 + ticksUs * 0.1, `schedstat ${(ns ?? 0) / 1000} µs, stat ${ticksUs} µs`);
  t.is(sampleProcess(process.pid)?.cpuSource, 'schedstat');
});

test('charges the broker process CPU per delivered message when given its pid', async (t) => {
  const b = await startAedes(t);
  // aedes runs in this very process, so its pid is ours.
  const f = await runLoad({ port: b.port, scenario: 'pairs', clients: 2, messages: 2000, qos: 1, brokerPid: process.pid, drainMs: 3_000 });
  t.truthy(f.broker);
  t.is(f.broker?.pid, process.pid);
  t.true((f.broker?.cpuUs ?? 0) > 0);
  t.is(f.broker?.cpuSource, 'schedstat');
  t.is(f.broker?.cpuResolutionUs, 1);
  t.true(Math.abs((f.broker?.cpuUsPerDelivered ?? 0) - (f.broker?.cpuUs ?? 0) / 4000) < 0.01);
  t.true((f.broker?.rssBytesAfter ?? 0) > 0);
});
