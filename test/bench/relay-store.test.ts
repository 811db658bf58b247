/**
 * The durable floor relay (`benches/brokers/relay.ts --store DIR`): a QoS 1 PUBLISH is
 * acknowledged only after a sync round that covers it (the relay's --sync-delay-ms holds each
 * round, so the wait shows), it is in the store's file by then, QoS 0 is stored too, and
 * deliveries do not wait for the round. Driven by the `mqtt` client against a relay child process.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** How long each of the relay's sync rounds is held in the test, in ms. */
const SYNC_DELAY_MS = 400;

async function startRelay(dir: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const args = ['--import=tsx', join(ROOT, 'benches/brokers/relay.ts'), '--port', '0', '--batch', '--scan', '--store', dir, '--sync-delay-ms', String(SYNC_DELAY_MS)];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const port = await new Promise<number>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`relay did not start: ${err}`)), 15_000);
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /relay ready on [^:]+:(\d+).*\(store: /.exec(err);
      if (m !== null) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  return {
    port,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function stored(dir: string): Promise<string> {
  let all = '';
  for (const f of await readdir(dir)) all += (await readFile(join(dir, f))).toString('latin1');
  return all;
}

test('relay --store: a QoS 1 PUBACK waits for the sync round and finds the message in the file; QoS 0 is stored; deliveries do not wait', async (t) => {
  t.timeout(30_000);
  const dir = await mkdtemp(join(tmpdir(), 'mqlog-relay-store-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const relay = await startRelay(dir);
  t.teardown(relay.stop);
  const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.port}`, { protocolVersion: 4, reconnectPeriod: 0 });
  const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.port}`, { protocolVersion: 4, reconnectPeriod: 0 });
  t.teardown(() => {
    sub.end(true);
    pub.end(true);
  });
  await sub.subscribeAsync('floor/+', { qos: 1 });
  const got: string[] = [];
  let deliveredAt = 0;
  const both = new Promise<void>((resolve) =>
    sub.on('message', (_topic, payload) => {
      got.push(payload.toString());
      if (got.length === 2) {
        deliveredAt = performance.now();
        resolve();
      }
    }),
  );
  await pub.publishAsync('floor/a', 'qos0-payload-7c1', { qos: 0 });
  const sent = performance.now();
  await pub.publishAsync('floor/b', 'qos1-payload-9e4', { qos: 1 });
  const ackedAt = performance.now();
  // the PUBACK waited for a held sync round (an ack sent at once comes back in ~1 ms) ...
  t.true(ackedAt - sent >= SYNC_DELAY_MS - 50, `PUBACK after ${Math.round(ackedAt - sent)} ms`);
  // ... and the message was in the file by then (the QoS 0 one too, written in an earlier turn)
  const file = await stored(dir);
  t.true(file.includes('qos1-payload-9e4'));
  t.true(file.includes('qos0-payload-7c1'));
  await both;
  t.deepEqual(got.sort(), ['qos0-payload-7c1', 'qos1-payload-9e4']);
  // deliveries go out when the message is read, not after the round
  t.true(deliveredAt < ackedAt, 'the subscriber had both messages before the publisher had its PUBACK');
});
