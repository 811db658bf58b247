/**
 * Experiment: N new topics through a running broker. One mqtt.js publisher sends one QoS 1
 * message to each of N distinct topics (windows of 200), a `many/#` subscriber receives them;
 * prints the rate and the broker's RSS and open fds (from /proc).
 * Run: npx tsx benches/experiments/many-topics.ts PORT BROKER_PID [N=10000]
 *      against e.g. `taskset -c 0 node dist/src/cli/main.js start --port PORT --data-dir $(mktemp -d)`
 * (figures: notes/2026-11-23-broker-core.md). Loopback only, bounded by N and 60 s.
 */
import fs from 'node:fs';
import mqtt from 'mqtt';

const [portArg, pidArg, nArg] = process.argv.slice(2);
const port = Number(portArg);
const pid = Number(pidArg);
const n = Number(nArg ?? 10_000);
if (!Number.isInteger(port) || !Number.isInteger(pid)) throw new Error('usage: many-topics.ts PORT BROKER_PID [N]');
const WINDOW = 200;

const rssMiB = () => Math.round(Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024);
const fds = () => fs.readdirSync(`/proc/${pid}/fd`).length;

const sub = await mqtt.connectAsync({ host: '127.0.0.1', port });
let received = 0;
sub.on('message', () => received++);
await sub.subscribeAsync('many/#', { qos: 1 });
const pub = await mqtt.connectAsync({ host: '127.0.0.1', port });
console.log(`before: rss ${rssMiB()} MiB, fds ${fds()}`);
const t0 = performance.now();
let pending: Promise<unknown>[] = [];
for (let i = 0; i < n; i++) {
  pending.push(pub.publishAsync(`many/${i % 100}/t${i}`, `m${i}`, { qos: 1 }));
  if (pending.length >= WINDOW) {
    await Promise.all(pending);
    pending = [];
  }
}
await Promise.all(pending);
const ackedMs = performance.now() - t0;
while (received < n && performance.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 20));
console.log(
  `${n} new topics acknowledged in ${ackedMs.toFixed(0)} ms (${((n / ackedMs) * 1000).toFixed(0)}/s); ` +
    `delivered ${received}; rss ${rssMiB()} MiB, fds ${fds()}`,
);
await sub.endAsync();
await pub.endAsync();
