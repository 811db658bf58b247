/**
 * The journal (default; `--no-journal` turns it off): the broker's topic logs commit through the
 * store-wide journal (commitlog/journal.ts); acknowledged messages are there after a restart,
 * and a clean stop leaves no journal.
 */
import test from 'ava';
import { readdir } from 'node:fs/promises';
import { parseStartArgs } from '../../src/cli/start.js';
import { Broker } from '../../src/server/broker.js';
import { collect, connect, tempDir } from '../helpers/broker.js';

test('the journal is on by default; --no-journal turns it off, --journal on', async (t) => {
  t.like(await parseStartArgs(['--no-journal']), { journal: false });
  t.like(await parseStartArgs(['--journal']), { journal: true });
  const none = await parseStartArgs([]);
  t.true(none !== 'help' && none.journal === undefined);
  for (const journal of [undefined, false]) {
    const dataDir = await tempDir(t);
    const broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir, sysIntervalSec: 0, ...(journal === undefined ? {} : { journal }) });
    try {
      const pub = await connect(t, broker.port);
      await pub.publishAsync('d/1', 'v', { qos: 1 });
      const used = (await readdir(dataDir)).some((f) => f.startsWith('.journal-'));
      t.is(used, journal === undefined, journal === undefined ? 'default: the round went through the journal' : 'journal: false: no journal file');
      pub.end(true);
    } finally {
      await broker.close();
    }
  }
});

test('with the journal, acknowledged QoS 1 messages commit through it and survive a restart', async (t) => {
  const dataDir = await tempDir(t);
  let broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir, sysIntervalSec: 0, journal: true });
  const pub = await connect(t, broker.port);
  for (let i = 0; i < 5; i++) await pub.publishAsync(`j/${i}`, `v${i}`, { qos: 1, retain: true });
  t.true((await readdir(dataDir)).some((f) => f.startsWith('.journal-')), 'the rounds went through the journal');
  pub.end(true);
  await broker.close();
  t.false((await readdir(dataDir)).some((f) => f.startsWith('.journal-')), 'a clean stop checkpoints and deletes it');

  broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir, sysIntervalSec: 0 });
  t.teardown(() => broker.close());
  const sub = await connect(t, broker.port);
  const inbox = collect(sub);
  await sub.subscribeAsync('j/#', { qos: 1 });
  const got = await inbox.waitFor(5);
  t.deepEqual(got.map((m) => m.payload).sort(), ['v0', 'v1', 'v2', 'v3', 'v4']);
});
