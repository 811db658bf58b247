/**
 * Acknowledged means durable: a broker killed with SIGKILL while QoS 1 publishes stream in loses
 * none that it acknowledged — neither for a persistent subscriber nor as a retained message.
 * Round 1 runs the default (topics commit through the store-wide journal, which the restart
 * replays), round 2 `--no-journal` (each topic fsyncs its own files).
 */
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { collect, connect, tempDir } from '../helpers/broker.js';
import { spawnBroker } from '../helpers/child-broker.js';

for (const round of [1, 2]) {
  const journal = round === 1;
  const mode = journal ? [] : ['--no-journal'];
  test(`every acknowledged QoS 1 message and retained message survives kill -9 (round ${round}, ${journal ? 'journal' : '--no-journal'})`, async (t) => {
    t.timeout(45_000);
    const dataDir = await tempDir(t);
    const first = await spawnBroker(['--data-dir', dataDir, ...mode]);
    t.teardown(() => first.child.kill('SIGKILL'));

    const sub = await connect(t, first.port, { clientId: `crash-sub-${round}`, clean: false });
    await sub.subscribeAsync('c/#', { qos: 1 });
    await sub.endAsync();

    const pub = await connect(t, first.port, { clientId: `crash-pub-${round}` });
    pub.on('error', () => {});
    const acked: string[] = [];
    let lastRetainedAck = -1;
    let seq = 0;
    let killed = false;
    const killAfterMs = 300 + Math.floor(Math.random() * 700);
    const killer = sleep(killAfterMs).then(() => {
      killed = true;
      first.child.kill('SIGKILL');
    });
    while (!killed) {
      const batch: Promise<void>[] = [];
      for (let i = 0; i < 20; i++) {
        const n = seq++;
        const retain = n % 10 === 0;
        const topic = retain ? 'c/retained' : `c/t${n % 4}`;
        batch.push(
          pub.publishAsync(topic, `m${n}`, { qos: 1, retain }).then(
            () => {
              if (killed) return; // an ack racing the kill is not counted as seen
              acked.push(`m${n}`);
              if (retain && n > lastRetainedAck) lastRetainedAck = n;
            },
            () => {},
          ),
        );
      }
      await Promise.race([Promise.all(batch), killer]);
    }
    await first.exited;
    pub.end(true);
    t.true(acked.length > 0, 'some publishes were acknowledged before the kill');

    const second = await spawnBroker(['--data-dir', dataDir, ...mode, '--log-level', 'info']);
    t.teardown(() => second.child.kill('SIGKILL'));
    t.is(/journal replayed/.test(second.output()), journal, journal ? 'the restart replayed the journal the kill left' : 'no journal to replay');
    const back = await connect(t, second.port, { clientId: `crash-sub-${round}`, clean: false });
    const inbox = collect(back);
    const want = new Set(acked);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && [...want].some((m) => !inbox.messages.some((r) => r.payload === m))) await sleep(50);
    const got = new Set(inbox.messages.map((m) => m.payload));
    const missing = acked.filter((m) => !got.has(m));
    t.deepEqual(missing, [], `${missing.length} of ${acked.length} acknowledged messages lost`);

    if (lastRetainedAck >= 0) {
      const fresh = await connect(t, second.port);
      const freshInbox = collect(fresh);
      await fresh.subscribeAsync('c/retained', { qos: 1 });
      const [retained] = await freshInbox.waitFor(1);
      const n = Number(retained?.payload.slice(1));
      t.true(retained?.retain === true && n >= lastRetainedAck, `retained m${n} is older than acknowledged m${lastRetainedAck}`);
    }
    t.log(`${acked.length} acknowledged before kill -9 at ${killAfterMs} ms; all delivered after restart`);
  });
}
