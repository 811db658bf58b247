/**
 * The load client end to end on real sockets: every scenario against aedes (3.1.1) counts
 * N×M deliveries exactly once; against the fault-injecting relay it detects the losses,
 * duplicates and reordering the relay causes, and speaks MQTT 5.0.
 */
import test from 'ava';
import { runLoad } from '../../benches/load/runner.js';
import { startAedes, startRelay } from './helpers/brokers.js';

// A complete run ends as soon as everything arrived; drainMs only delays runs with losses, and
// must outlast scheduling delays when the machine is busy running other tests.
const QUICK = { drainMs: 3_000, timeLimitMs: 30_000 } as const;
const LOSSY = { drainMs: 1_000, timeLimitMs: 30_000 } as const;

for (const qos of [0, 1, 2] as const) {
  test(`pairs at QoS ${qos} against aedes deliver N×M messages once each, in order`, async (t) => {
    const b = await startAedes(t);
    const f = await runLoad({ ...QUICK, port: b.port, scenario: 'pairs', clients: 4, messages: 150, qos });
    t.is(f.connect.connected, 8);
    t.is(f.messages.published, 600);
    t.is(f.messages.expected, 600);
    t.is(f.messages.unique, 600);
    t.is(f.messages.lost, 0);
    t.is(f.messages.duplicates, 0);
    t.is(f.messages.reordered, 0);
    t.is(f.latencyUs.count, 600);
    t.true(f.latencyUs.median > 0 && f.latencyUs.median <= f.latencyUs.p99 && f.latencyUs.p99 <= f.latencyUs.max);
    t.true(f.throughput.deliveredPerSec > 0);
    t.true(f.complete);
  });
}

test('fanout 1→N delivers every message to every subscriber', async (t) => {
  const b = await startAedes(t);
  const f = await runLoad({ ...QUICK, port: b.port, scenario: 'fanout', clients: 6, messages: 100, qos: 1 });
  t.is(f.connect.connected, 7);
  t.is(f.messages.published, 100);
  t.is(f.messages.unique, 600);
  t.is(f.messages.lost, 0);
  t.true(f.complete);
});

test('fanin N→1 on a + wildcard delivers every publisher\'s messages to the one subscriber', async (t) => {
  const b = await startAedes(t);
  const f = await runLoad({ ...QUICK, port: b.port, scenario: 'fanin', clients: 5, messages: 100, qos: 1 });
  t.is(f.connect.connected, 6);
  t.is(f.messages.unique, 500);
  t.is(f.messages.reordered, 0);
  t.true(f.complete);
});

test('latency ping-pong sends the next message only after the previous came back', async (t) => {
  const b = await startRelay(t);
  const f = await runLoad({ ...QUICK, port: b.port, scenario: 'latency', clients: 2, messages: 100, qos: 1, inflight: 64 });
  t.is(f.connect.connected, 4);
  t.is(f.messages.unique, 200);
  t.is(f.latencyUs.count, 200);
  // With one message in flight per client, the relay never held more than one per client:
  // total time is at least the sum of round trips of one client.
  t.true(f.throughput.durationMs * 1000 >= (f.latencyUs.mean * 100) * 0.9);
  t.true(f.complete);
});

test('ping-pong against aedes at QoS 1 has no Nagle stalls: round trips well under 40 ms', async (t) => {
  const b = await startAedes(t);
  const f = await runLoad({ ...QUICK, port: b.port, scenario: 'latency', clients: 1, messages: 200, qos: 1 });
  t.is(f.messages.unique, 200);
  t.true(f.latencyUs.median < 20_000, `median ${f.latencyUs.median} µs`);
});

test('a lost ping does not stall the ping-pong: it is counted and the next one goes', async (t) => {
  const b = await startRelay(t, { dropEvery: 10 });
  const f = await runLoad({ port: b.port, scenario: 'latency', clients: 1, messages: 30, drainMs: 1_000, timeLimitMs: 20_000 });
  t.is(f.messages.published, 30);
  t.is(f.messages.lost, 3);
  t.is(f.messages.unique, 27);
});

test('idle holds N connections for the hold time and keeps them alive with PINGREQ', async (t) => {
  const b = await startAedes(t);
  const f = await runLoad({ ...QUICK, port: b.port, scenario: 'idle', clients: 20, keepaliveS: 2, holdMs: 2_200 });
  t.is(f.connect.connected, 20);
  t.is(f.connect.setupMs.count, 20);
  t.true(f.throughput.durationMs >= 2_100);
  // keepalive 2 s: each connection pings after 1 s of silence, so at least once in 2.2 s.
  t.true(f.keepalive.pings >= 20, `pings ${f.keepalive.pings}`);
  t.true(f.keepalive.pongs >= 20, `pongs ${f.keepalive.pongs}`);
  t.is(f.faults.total, 0);
  t.true(f.complete);
});

test('spreads clients over worker threads and still counts every delivery', async (t) => {
  const b = await startAedes(t);
  const f = await runLoad({ ...QUICK, port: b.port, scenario: 'pairs', clients: 4, messages: 200, qos: 1, workers: 2 });
  t.is(f.settings.workers, 2);
  t.is(f.connect.connected, 8);
  t.is(f.messages.unique, 800);
  t.is(f.latencyUs.count, 800);
  t.true(f.complete);
});

test('mqtt-packet parser mode counts the same as the framing scanner', async (t) => {
  const b = await startAedes(t);
  const f = await runLoad({ ...QUICK, port: b.port, scenario: 'pairs', clients: 2, messages: 300, qos: 2, parser: 'mqtt-packet' });
  t.is(f.settings.parser, 'mqtt-packet');
  t.is(f.messages.unique, 600);
  t.true(f.complete);
});

test('detects a broker that drops every 10th delivery as exactly those losses', async (t) => {
  const b = await startRelay(t, { dropEvery: 10 });
  const f = await runLoad({ ...LOSSY, port: b.port, scenario: 'pairs', clients: 2, messages: 100, qos: 0 });
  t.is(b.stats.dropped, 20);
  t.is(f.messages.lost, 20);
  t.is(f.messages.unique, 180);
  t.false(f.complete);
  t.true(f.notes.some((n) => /20 of 200 expected deliveries never arrived/.test(n)));
});

test('detects duplicated and swapped deliveries', async (t) => {
  const b = await startRelay(t, { duplicateEvery: 25, swapEvery: 10 });
  const f = await runLoad({ ...QUICK, port: b.port, scenario: 'fanout', clients: 1, messages: 99, qos: 1 });
  // Deliveries 25, 75 are duplicated (50 is swapped instead); 10, 20, ..., 90 arrive after their successor.
  t.is(f.messages.duplicates, 2);
  t.is(f.messages.reordered, 9);
  t.is(f.messages.lost, 0);
  t.is(f.messages.unique, 99);
});

test('speaks MQTT 5.0 with persistent sessions through the whole QoS 2 flow', async (t) => {
  const b = await startRelay(t);
  const f = await runLoad({ ...QUICK, port: b.port, scenario: 'pairs', clients: 3, messages: 100, qos: 2, protocolVersion: 5, clean: false });
  t.is(f.settings.protocolVersion, 5);
  t.is(f.messages.unique, 300);
  t.true(f.complete);
});

test('honours the broker\'s MQTT 5 Receive Maximum over its own inflight window', async (t) => {
  const b = await startRelay(t, { receiveMaximum: 10 });
  const f = await runLoad({ ...QUICK, port: b.port, scenario: 'pairs', clients: 2, messages: 200, qos: 1, inflight: 64, protocolVersion: 5 });
  t.is(b.stats.violations, 0);
  t.is(f.messages.unique, 400);
  t.true(f.complete);
});

test('a publish rate limit spreads the messages over the expected time', async (t) => {
  const b = await startRelay(t);
  const f = await runLoad({ ...QUICK, port: b.port, scenario: 'pairs', clients: 1, messages: 50, ratePerClient: 100 });
  t.is(f.messages.unique, 50);
  // 50 messages at 100/s: the last one is due at 490 ms.
  t.true(f.throughput.durationMs >= 450, `took ${f.throughput.durationMs} ms`);
});
