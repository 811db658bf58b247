/**
 * The scenario lists of the side-by-side benchmarks. A scenario is the `mqlog bench` flags
 * that produce it, so any row can be rerun by hand; `bench:broker` (issue 4) and
 * `bench:compare` (issue 3) are the same driver over different lists.
 * Message counts keep one run to a few seconds on this machine even for the slowest broker
 * (aedes' QoS 0 fan-in at ~14k msg/s); `--quick` divides them by QUICK_DIVISOR.
 */

export interface SuiteScenario {
  /** Stable id used in JSON results and `--only`. */
  id: string;
  /** What a reader sees in the table. */
  title: string;
  /** `mqlog bench` flags (without --host/--port/--json/--broker-pid, which the driver adds). */
  args: string[];
  /** Messages per client in a full run; --quick uses less. */
  messages: number;
}

export const QUICK_DIVISOR = 5;

/** Issue 4's benchmark list: the broker core's targets are stated against these. */
export const BROKER_SCENARIOS: readonly SuiteScenario[] = [
  { id: 'qos0-pairs-x1-64B', title: 'QoS0 pairs ×1, 64 B', args: ['--scenario', 'pairs', '--clients', '1', '--qos', '0', '--payload', '64'], messages: 50_000 },
  { id: 'qos1-pairs-x1-64B', title: 'QoS1 pairs ×1, 64 B', args: ['--scenario', 'pairs', '--clients', '1', '--qos', '1', '--payload', '64'], messages: 20_000 },
  { id: 'qos0-pairs-x10-1KiB', title: 'QoS0 pairs ×10, 1 KiB', args: ['--scenario', 'pairs', '--clients', '10', '--qos', '0', '--payload', '1024'], messages: 5_000 },
  { id: 'qos1-pairs-x10-1KiB', title: 'QoS1 pairs ×10, 1 KiB', args: ['--scenario', 'pairs', '--clients', '10', '--qos', '1', '--payload', '1024'], messages: 3_000 },
  { id: 'qos0-fanout-1to50', title: 'QoS0 fanout 1→50, 64 B', args: ['--scenario', 'fanout', '--clients', '50', '--qos', '0', '--payload', '64'], messages: 2_000 },
  { id: 'qos0-fanin-50to1', title: 'QoS0 fanin 50→1, 64 B', args: ['--scenario', 'fanin', '--clients', '50', '--qos', '0', '--payload', '64'], messages: 1_000 },
  { id: 'qos1-fanin-50to1', title: 'QoS1 fanin 50→1, 64 B', args: ['--scenario', 'fanin', '--clients', '50', '--qos', '1', '--payload', '64'], messages: 1_000 },
  { id: 'qos1-pingpong', title: 'QoS1 ping-pong, 64 B', args: ['--scenario', 'latency', '--clients', '1', '--qos', '1', '--payload', '64'], messages: 10_000 },
  // An IoT fleet rather than a flood: 200 devices on their own topics, 50 msg/s each (10k msg/s
  // in all), so nearly every message arrives alone and nothing amortizes a wakeup or a write.
  { id: 'qos0-telemetry-200to1', title: 'QoS0 telemetry 200→1 @50/s', args: ['--scenario', 'fanin', '--clients', '200', '--qos', '0', '--payload', '64', '--rate', '50'], messages: 150 },
  { id: 'qos1-telemetry-200to1', title: 'QoS1 telemetry 200→1 @50/s', args: ['--scenario', 'fanin', '--clients', '200', '--qos', '1', '--payload', '64', '--rate', '50'], messages: 150 },
  // A larger fleet in its steady state: 1,000 devices at 5 msg/s each on topics that outlive a
  // run (the warm-up runs create them), so the row measures many active topics, not new ones.
  { id: 'qos1-fleet-1000to1', title: 'QoS1 fleet 1000→1 @5/s', args: ['--scenario', 'fanin', '--clients', '1000', '--qos', '1', '--payload', '64', '--rate', '5', '--topic', 'fleet/{i}'], messages: 30 },
];

/** Issue 3's comparison: the same list plus a connection hold (setup time and memory per connection). */
export const COMPARE_SCENARIOS: readonly SuiteScenario[] = [
  ...BROKER_SCENARIOS,
  { id: 'idle-1000', title: 'idle 1000 connections, 2 s', args: ['--scenario', 'idle', '--clients', '1000', '--hold-ms', '2000'], messages: 1 },
];
