/**
 * Acknowledgements leave in runs: the PUBACKs (PUBRECs, PUBCOMPs) a connection owes after one
 * group commit are packed into one chunk for the socket instead of one 4-byte chunk each, in
 * the order the PUBLISHes came [MQTT-4.6.0-2], ahead of any packet written after them, and with
 * every packet whole when deliveries to the same connection go out between them.
 * The socket's _write/_writev are wrapped (this file only: ava runs each file in its own
 * process) to count the chunks the broker hands to each server-side socket.
 */
import test, { type ExecutionContext } from 'ava';
import { Socket } from 'node:net';
import mqtt from 'mqtt-packet';
import { startBroker } from '../helpers/broker.js';
import { RawClient } from '../helpers/raw-client.js';

/** Chunks handed to each server-side socket, by the client's port (the socket's remotePort). */
const chunksTo = new Map<number, number>();
type WritevChunk = { chunk: Buffer | string };
const proto = Socket.prototype as unknown as {
  _writev(this: Socket, chunks: WritevChunk[], cb: (err?: Error | null) => void): void;
  _write(this: Socket, chunk: Buffer, enc: BufferEncoding, cb: (err?: Error | null) => void): void;
};
const writev = proto._writev;
const write = proto._write;
const count = (s: Socket, n: number): void => {
  const port = s.remotePort;
  if (port !== undefined && chunksTo.has(port)) chunksTo.set(port, (chunksTo.get(port) ?? 0) + n);
};
proto._writev = function (this: Socket, chunks, cb) {
  count(this, chunks.length);
  writev.call(this, chunks, cb);
};
proto._write = function (this: Socket, chunk, enc, cb) {
  count(this, 1);
  write.call(this, chunk, enc, cb);
};

/** `n` PUBLISHes with packet ids 1..n, as one buffer (so they arrive in one read). */
function publishes(topic: string, qos: 1 | 2, n: number): Buffer {
  const out: Buffer[] = [];
  for (let id = 1; id <= n; id++) out.push(mqtt.generate({ cmd: 'publish', topic, payload: Buffer.from(`m${id}`), qos, messageId: id, dup: false, retain: false }));
  return Buffer.concat(out);
}

/** The packet ids of the next `n` packets of type `cmd`. */
async function nextIds(c: RawClient, cmd: 'puback' | 'pubrec' | 'pubcomp', n: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) ids.push((await c.nextPacket(cmd)).messageId ?? -1);
  return ids;
}

const oneTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

/** A 3.1.1 client on a fresh broker, connected; `chunks()` counts what the broker handed its socket since. */
async function connected(t: ExecutionContext, clientId: string): Promise<{ c: RawClient; chunks: () => number }> {
  const broker = await startBroker(t);
  const c = await RawClient.open(broker.port);
  t.teardown(() => c.destroy());
  await c.handshake(clientId);
  const port = c.socket.localPort as number;
  chunksTo.set(port, 0);
  return { c, chunks: () => chunksTo.get(port) ?? 0 };
}

test('the PUBACKs of one group commit leave as one chunk, in the order of the PUBLISHes', async (t) => {
  const { c, chunks } = await connected(t, 'acks-q1');
  c.sendRaw(publishes('ack/run', 1, 64));
  t.deepEqual(await nextIds(c, 'puback', 64), oneTo(64));
  // 64 separate acknowledgements would be 64 chunks; a group commit may split the window in two or three
  t.true(chunks() >= 1 && chunks() <= 4, `${chunks()} chunks for 64 PUBACKs`);
});

test('PUBRECs and PUBCOMPs leave in runs too, in order', async (t) => {
  const { c, chunks } = await connected(t, 'acks-q2');
  c.sendRaw(publishes('ack/run2', 2, 32));
  const recs = await nextIds(c, 'pubrec', 32);
  t.deepEqual(recs, oneTo(32));
  c.sendRaw(Buffer.concat(recs.map((id) => mqtt.generate({ cmd: 'pubrel', messageId: id }))));
  t.deepEqual(await nextIds(c, 'pubcomp', 32), recs);
  t.true(chunks() >= 2 && chunks() <= 8, `${chunks()} chunks for 32 PUBRECs and 32 PUBCOMPs`);
});

test('a run of PUBACKs and deliveries to the same connection keep every packet whole', async (t) => {
  const { c } = await connected(t, 'acks-self');
  c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'ack/self', qos: 1 }] });
  await c.nextPacket('suback');
  c.sendRaw(publishes('ack/self', 1, 40));
  // the client's own messages come back at QoS 1 between its PUBACKs: a PUBACK written into
  // the middle of a PUBLISH would break the stream and the parser would fail or stall
  const acks: number[] = [];
  const got: string[] = [];
  const other: string[] = [];
  while (acks.length < 40 || got.length < 40) {
    const p = await c.nextAny(5000).catch(() => null);
    if (p === null) break;
    if (p.cmd === 'puback') acks.push(p.messageId ?? -1);
    else if (p.cmd === 'publish') {
      got.push(p.payload.toString());
      c.send({ cmd: 'puback', messageId: p.messageId ?? 0 });
    } else other.push(p.cmd);
  }
  t.deepEqual(other, []);
  t.deepEqual(acks, oneTo(40));
  t.deepEqual(got, Array.from({ length: 40 }, (_, i) => `m${i + 1}`));
});

test('an acknowledgement still pending leaves before a packet written after it', async (t) => {
  const { c } = await connected(t, 'acks-order');
  c.sendRaw(publishes('ack/order', 2, 1));
  t.deepEqual(await nextIds(c, 'pubrec', 1), [1]);
  // one read: the PUBREL's PUBCOMP goes into the pending run at once, then PINGRESP is written
  // in the same tick; the run must go out first, not at the tick's end
  c.sendRaw(Buffer.concat([mqtt.generate({ cmd: 'pubrel', messageId: 1 }), mqtt.generate({ cmd: 'pingreq' })]));
  const order = [(await c.nextAny()).cmd, (await c.nextAny()).cmd];
  t.deepEqual(order, ['pubcomp', 'pingresp']);
});
