/**
 * A new topic's first message: its log opens beside the name's registration, but nothing is
 * written to it until the name is durable in the topics log, so a crash can never leave records
 * under a TopicId the registry would give another name.
 */
import test from 'ava';
import { readdir } from 'node:fs/promises';
import type { FileOps } from '../../commitlog/index.js';
import { Broker } from '../../src/server/broker.js';
import { tempDir } from '../helpers/broker.js';
import { holdWritesTo } from '../helpers/file-faults.js';
import { RawClient } from '../helpers/raw-client.js';

test("a new topic's log opens while its name is registered, and is written only once the name is durable", async (t) => {
  const dataDir = await tempDir(t);
  const held = holdWritesTo('topics');
  const topicLogReads: string[] = [];
  const ops: FileOps = {
    ...held.ops,
    readdir: (path) => {
      if (/\/t-\d+$/.test(path)) topicLogReads.push(path);
      return held.ops.readdir(path);
    },
  };
  const broker = await Broker.start({ host: '127.0.0.1', port: 0, dataDir, sysIntervalSec: 0 }, undefined, { fileOps: ops });
  t.teardown(() => broker.close());
  const pub = await RawClient.open(broker.port);
  t.teardown(() => pub.destroy());
  await pub.handshake('new-topic-pub');

  held.hold(true);
  t.teardown(() => held.release()); // runs first (teardowns run last-in first-out): close() flushes the topics log
  pub.send({ cmd: 'publish', topic: 'fresh/one', payload: Buffer.from('first'), qos: 1, messageId: 1, retain: false, dup: false });
  // the registration cannot reach the topics log: no PUBACK, and no file of the topic's log
  await t.throwsAsync(pub.nextPacket('puback', 300), { message: /no puback/ });
  t.is(topicLogReads.length, 1, "the topic's log was opened while its name waited");
  const topicDirs = (names: string[]) => names.filter((n) => n.startsWith('t-'));
  t.deepEqual(topicDirs(await readdir(dataDir)), [], 'nothing of the new topic is on disk before its name is');

  held.release();
  const ack = await pub.nextPacket('puback');
  t.is(ack.messageId, 1);
  const dirs = topicDirs(await readdir(dataDir));
  t.is(dirs.length, 1);
  t.true((await readdir(`${dataDir}/${dirs[0]}`)).some((n) => n.endsWith('.segment')), 'the record is in its log');
});
