/**
 * The topic logs' share of the open-file limit: half the soft limit by default, or the
 * configured maxOpenFiles, which the store's LRU then holds to while many topics are written.
 */
import test from 'ava';
import { resolveOptions } from '../../src/config.js';
import { Broker } from '../../src/server/broker.js';
import { defaultLogFds, LOG_FDS_MAX_DEFAULT, LOG_FDS_UNKNOWN_LIMIT, readFdLimits } from '../../src/server/fd-limits.js';
import { connect, fdsUnder, tempDir } from '../helpers/broker.js';

test('by default the logs get half the soft open-file limit, within bounds', (t) => {
  t.is(defaultLogFds({ soft: 20_000, hard: 20_000 }), 10_000);
  t.is(defaultLogFds({ soft: 1_048_576, hard: 1_048_576 }), LOG_FDS_MAX_DEFAULT);
  t.is(defaultLogFds({ soft: Infinity, hard: Infinity }), LOG_FDS_MAX_DEFAULT);
  t.is(defaultLogFds({ soft: 50, hard: 50 }), 64);
  t.is(defaultLogFds(null), LOG_FDS_UNKNOWN_LIMIT);
});

test('maxOpenFiles is 0 (from the limit) or 4 .. 1048576', (t) => {
  t.is(resolveOptions({}).maxOpenFiles, 0);
  t.is(resolveOptions({ maxOpenFiles: 64 }).maxOpenFiles, 64);
  t.throws(() => resolveOptions({ maxOpenFiles: 3 }), { message: /maxOpenFiles/ });
  t.throws(() => resolveOptions({ maxOpenFiles: 1.5 }), { message: /maxOpenFiles/ });
});

for (const [maxOpenFiles, expect] of [
  [8, 'bounded'],
  [0, 'open'],
] as const) {
  test(`30 topics written through a broker with maxOpenFiles ${maxOpenFiles} keep ${expect === 'bounded' ? 'at most 8 + 2' : 'every log file'} open`, async (t) => {
    const dataDir = await tempDir(t);
    const broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir, sysIntervalSec: 0, maxOpenFiles });
    t.teardown(() => broker.close());
    const pub = await connect(t, broker.port);
    for (let i = 0; i < 30; i++) await pub.publishAsync(`fd/${i}`, `m${i}`, { qos: 1 });
    const held = (await fdsUnder(dataDir)).length;
    // 2 per topic log and meta log in the LRU; the boot list's append fd is outside it
    if (expect === 'bounded') t.true(held <= 8 + 2, `${held} fds under the data directory`);
    else t.true(held >= 60, `${held} fds under the data directory: the default limit evicted nothing`);
  });
}

test("the broker's default budget is the one the process's limit gives, and it says so when it starts", async (t) => {
  const said: Array<Record<string, unknown>> = [];
  const logger = { debug() {}, info: (o: object, m: string) => void (m === 'mqlog listening' && said.push(o as Record<string, unknown>)), warn() {}, error() {} };
  const broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir: await tempDir(t), sysIntervalSec: 0 }, logger);
  t.teardown(() => broker.close());
  const limits = readFdLimits();
  t.not(limits, null, 'Linux: /proc/self/limits is readable');
  t.is(said[0]?.maxOpenFiles, defaultLogFds(limits));
  t.true((said[0]?.maxOpenFiles as number) > 1024 || (limits?.soft ?? 0) <= 2048, 'more than the old fixed 1024 wherever the limit allows');
});
