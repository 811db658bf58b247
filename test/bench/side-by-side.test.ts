/**
 * The side-by-side driver: interleaving, medians, the table with ratios and skipped brokers,
 * the generated mosquitto config, and one real short run against aedes started as a child
 * process, writing its JSON result.
 */
import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_BROKERS, mosquittoConfig } from '../../benches/brokers/launchers.js';
import { BROKER_SCENARIOS, COMPARE_SCENARIOS } from '../../benches/load/scenario-tables.js';
import { formatSuiteTable, medianFigures, rotate, type RunFigures, runSuite } from '../../benches/load/side-by-side.js';

const fig = (deliveredPerSec: number, brokerUsPerMsg: number | null, complete = true): RunFigures => ({
  deliveredPerSec, brokerUsPerMsg, latencyP50Us: 100, latencyP99Us: 900, latencyMaxUs: 1000, lost: 0, duplicates: 0, setupP50Ms: 1,
  setupP99Ms: 2, connected: 2, brokerRssMiB: 10, clientCpuPercent: 50, clientSaturated: false, complete, durationMs: 1000, loadAvg1m: 1,
});

test('rotates the broker order so no broker always runs first', (t) => {
  t.deepEqual(rotate(['a', 'b', 'c'], 0), ['a', 'b', 'c']);
  t.deepEqual(rotate(['a', 'b', 'c'], 1), ['b', 'c', 'a']);
  t.deepEqual(rotate(['a', 'b', 'c'], 5), ['c', 'a', 'b']);
  t.deepEqual(rotate([], 3), []);
});

test('takes the median of every figure over the rounds', (t) => {
  const m = medianFigures([fig(100, 5), fig(300, 1), fig(200, 3, false)]);
  t.is(m?.deliveredPerSec, 200);
  t.is(m?.brokerUsPerMsg, 3);
  t.false(m?.complete);
  t.is(m?.rounds, 3);
  t.is(m?.completeRounds, 2);
  t.is(m?.brokerUsPerMsgMin, 1);
  t.is(m?.brokerUsPerMsgMax, 5);
  // A round that delivered nothing has no µs/msg: the median is over the rounds that have one.
  t.is(medianFigures([fig(0, null), fig(2, 4), fig(3, 6)])?.brokerUsPerMsg, 5);
  t.is(medianFigures([fig(0, null)])?.brokerUsPerMsg, null);
  t.is(medianFigures([]), null);
});

test('prints ratios against mosquitto and says when mqlog was skipped', (t) => {
  const s = BROKER_SCENARIOS[1];
  if (s === undefined) return t.fail();
  const withRounds = (f: RunFigures) => ({ ...f, rounds: 3, completeRounds: 3, brokerUsPerMsgMin: (f.brokerUsPerMsg ?? 0) - 2, brokerUsPerMsgMax: (f.brokerUsPerMsg ?? 0) + 3 });
  const medians = new Map([[s.id, new Map([['aedes', withRounds(fig(10_000, 24))], ['mosquitto', withRounds(fig(20_000, 20))]] as const)]]);
  const table = formatSuiteTable([s], ['aedes', 'mosquitto'], medians, new Map([['mqlog', 'mqlog broker not built yet, skipped']]));
  const lines = table.split('\n');
  t.is(lines.length, 5);
  t.regex(lines[0] ?? '', /msg\/s vs mosquitto/);
  t.regex(table, /mqlog\s+\| mqlog broker not built yet, skipped/);
  t.regex(table, /\| aedes\s+\| 3\/3\s+\| 10000\s+\| 24\.00 \(22\.0–27\.0\) .*\| 0\.50×\s+\| 1\.20×/);
  t.regex(table, /\| mosquitto\s+\| 3\/3\s+\| 20000 .*\| 1\.00×\s+\| 1\.00×/);
});

test('the scenario lists name issue 4\'s scenarios, the rate-limited telemetry ones and the 1,000-device fleet, and compare adds the idle hold', (t) => {
  t.deepEqual(BROKER_SCENARIOS.map((s) => s.id), [
    'qos0-pairs-x1-64B', 'qos1-pairs-x1-64B', 'qos0-pairs-x10-1KiB', 'qos1-pairs-x10-1KiB', 'qos0-fanout-1to50', 'qos0-fanin-50to1', 'qos1-fanin-50to1', 'qos1-pingpong',
    'qos0-telemetry-200to1', 'qos1-telemetry-200to1', 'qos1-fleet-1000to1',
  ]);
  const telemetry = BROKER_SCENARIOS.find((s) => s.id === 'qos0-telemetry-200to1');
  t.deepEqual(telemetry?.args.slice(-2), ['--rate', '50'], 'telemetry is rate-limited');
  t.is(COMPARE_SCENARIOS.length, BROKER_SCENARIOS.length + 1);
  t.is(COMPARE_SCENARIOS.at(-1)?.id, 'idle-1000');
});

test('mosquitto listens on loopback only at the given port, without a queue limit', (t) => {
  const conf = mosquittoConfig(18_999);
  t.regex(conf, /^listener 18999 127\.0\.0\.1$/m);
  t.regex(conf, /^allow_anonymous true$/m);
  t.regex(conf, /^max_queued_messages 0$/m);
  t.regex(conf, /^persistence false$/m);
});

test('runs a short round against aedes as a child process and writes the JSON result', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mqlog-suite-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const log: string[] = [];
  const scenario = { id: 'tiny', title: 'tiny pairs', args: ['--scenario', 'pairs', '--clients', '2', '--qos', '1'], messages: 200 };
  const { jsonPath, table } = await runSuite({
    name: 'suite-test', scenarios: [scenario], brokers: ['aedes'], rounds: 1, quick: false, brokerCpu: null, loadCpu: null, warmupRuns: 1,
    resultsDir: dir, command: 'test', log: (l) => log.push(l),
  });
  t.regex(table, /tiny pairs \| aedes/);
  const json = JSON.parse(await readFile(jsonPath, 'utf8')) as {
    name: string; node: string; gitCommit: string; machine: { cores: number }; conditions: { warmupRuns: number }; brokers: Record<string, { ok: boolean }>;
    scenarios: { id: string; results: Record<string, { rounds: RunFigures[]; median: RunFigures }> }[];
  };
  t.is(json.name, 'suite-test');
  t.is(json.conditions.warmupRuns, 1);
  t.is(json.node, process.version);
  t.regex(json.gitCommit, /^[0-9a-f]{40}$|^unknown$/);
  t.true(json.machine.cores > 0);
  t.true(json.brokers.aedes?.ok);
  const r = json.scenarios[0]?.results.aedes;
  t.is(r?.rounds.length, 1);
  t.is(r?.median.lost, 0);
  t.true((r?.median.deliveredPerSec ?? 0) > 0);
  t.true((r?.median.brokerUsPerMsg ?? 0) > 0, 'broker CPU read from /proc of the aedes child');
  t.is(typeof r?.rounds[0]?.loadAvg1m, 'number');
  t.true(log.some((l) => l.startsWith('aedes 1.')));
});

test("runs the Node-floor relays when asked for, but not by default", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mqlog-suite-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  t.false(DEFAULT_BROKERS.includes('relay'));
  t.false(DEFAULT_BROKERS.includes('relay-scan'));
  t.false(DEFAULT_BROKERS.includes('relay-store'));
  // QoS 1 fan-in reaches the scanner's QoS 1 path (per-subscriber header, PUBACK by hand);
  // QoS 0 fanout its shared QoS 0 header
  const scenarios = [
    { id: 'tiny', title: 'tiny fan-in', args: ['--scenario', 'fanin', '--clients', '3', '--qos', '1'], messages: 100 },
    { id: 'tiny-out', title: 'tiny fanout', args: ['--scenario', 'fanout', '--clients', '3', '--qos', '0'], messages: 100 },
  ];
  const { jsonPath, table } = await runSuite({
    name: 'suite-relay', scenarios, brokers: ['relay', 'relay-scan', 'relay-store'], rounds: 1, quick: false, brokerCpu: null, loadCpu: null, warmupRuns: 0,
    resultsDir: dir, command: 'test', log: () => undefined,
  });
  t.regex(table, /tiny fan-in \| relay /);
  t.regex(table, /tiny fan-in \| relay-scan/);
  t.regex(table, /tiny fan-in \| relay-store/);
  const json = JSON.parse(await readFile(jsonPath, 'utf8')) as { scenarios: { results: Record<string, { median: RunFigures }> }[] };
  for (const s of json.scenarios) {
    for (const name of ['relay', 'relay-scan', 'relay-store']) {
      const r = s.results[name];
      t.is(r?.median.lost, 0, name);
      t.is(r?.median.duplicates, 0, name);
      t.true((r?.median.deliveredPerSec ?? 0) > 0, name);
    }
  }
});
