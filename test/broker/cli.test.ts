/** `mqlog start` as a process: it serves MQTT, and it fails with a clear message on a taken port or a bad data dir. */
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { collect, connect, tempDir } from '../helpers/broker.js';
import { runBrokerExpectingExit, spawnBroker } from '../helpers/child-broker.js';

test('mqlog start serves MQTT and stops cleanly on SIGTERM', async (t) => {
  const dataDir = await tempDir(t);
  const broker = await spawnBroker(['--data-dir', dataDir]);
  t.teardown(() => broker.child.kill('SIGKILL'));
  const client = await connect(t, broker.port);
  await client.subscribeAsync('cli/t', { qos: 1 });
  await client.publishAsync('cli/t', 'hello', { qos: 1 });
  const [m] = await collect(client).waitFor(1);
  t.is(m?.payload, 'hello');
  client.end(true);
  broker.child.kill('SIGTERM');
  t.is(await broker.exited, 0);
});

test('reports an occupied port by name and exits non-zero', async (t) => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const { code, output } = await runBrokerExpectingExit(['--port', String(port), '--data-dir', await tempDir(t)]);
  t.is(code, 1);
  t.regex(output, new RegExp(`127\\.0\\.0\\.1:${port} is already in use`));
});

test('reports a data directory it cannot create', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'not-a-dir');
  await writeFile(file, 'x');
  const { code, output } = await runBrokerExpectingExit(['--port', '0', '--data-dir', join(file, 'data')]);
  t.is(code, 1);
  t.regex(output, /data directory .* cannot be created or written/);
});

test('refuses an invalid option naming the field', async (t) => {
  const { code, output } = await runBrokerExpectingExit(['--port', '0', '--max-inflight', '0', '--data-dir', await tempDir(t)]);
  t.is(code, 1);
  t.regex(output, /option 'maxInflight' must be an integer in 1\.\.65535/);
});
