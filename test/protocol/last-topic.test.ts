/**
 * The connection's one-entry topic cache (src/protocol/last-topic.ts): it may only say "same
 * topic" for exactly the remembered bytes.
 */
import test from 'ava';
import { LastTopic } from '../../src/protocol/last-topic.js';

function framed(topic: string): { packet: Buffer; from: number; to: number } {
  // three bytes of something before the topic, as in a PUBLISH after its fixed header
  const packet = Buffer.concat([Buffer.from([0x30, 0x00, 0x00]), Buffer.from(topic), Buffer.from('payload')]);
  return { packet, from: 3, to: 3 + Buffer.byteLength(topic) };
}

test('matches only the remembered bytes, at any position of any packet', (t) => {
  const cache = new LastTopic<number>(-1);
  const a = framed('sensors/a1');
  t.false(cache.matches(a.packet, a.from, a.to), 'nothing remembered yet');
  cache.remember(a.packet, a.from, a.to, 'sensors/a1', 7);
  t.is(cache.name, 'sensors/a1');
  t.is(cache.id, 7);
  const again = Buffer.concat([Buffer.from('xx'), Buffer.from('sensors/a1')]);
  t.true(cache.matches(again, 2, again.length));
  const b = framed('sensors/a2'); // same length, last byte differs
  t.false(cache.matches(b.packet, b.from, b.to));
  const shorter = framed('sensors/a');
  t.false(cache.matches(shorter.packet, shorter.from, shorter.to));
  t.false(cache.matches(a.packet, a.from, a.from), 'an empty topic never matches');
});

test('keeps a copy: a later change of the packet bytes does not change what matches', (t) => {
  const cache = new LastTopic<number>(-1);
  const a = framed('t/1');
  cache.remember(a.packet, a.from, a.to, 't/1', 1);
  a.packet[a.from + 2] = 0x32; // the socket chunk is reused or changed: now 't/2'
  t.false(cache.matches(a.packet, a.from, a.to));
  const fresh = framed('t/1');
  t.true(cache.matches(fresh.packet, fresh.from, fresh.to));
});

test('topics longer than 64 bytes compare whole, and an empty topic is not remembered', (t) => {
  const cache = new LastTopic<number>(-1);
  const long = `${'x'.repeat(80)}/a`;
  const a = framed(long);
  cache.remember(a.packet, a.from, a.to, long, 3);
  t.true(cache.matches(framed(long).packet, a.from, a.to));
  t.false(cache.matches(framed(`${'x'.repeat(80)}/b`).packet, a.from, a.to));
  t.false(cache.matches(framed(`y${'x'.repeat(79)}/a`).packet, a.from, a.to));
  cache.remember(a.packet, a.from, a.from, '', 9); // an alias-only PUBLISH
  t.is(cache.id, 3);
  t.true(cache.matches(framed(long).packet, a.from, a.to));
});

test('a shorter topic after a longer one reuses the buffer and matches only its own length', (t) => {
  const cache = new LastTopic<number>(-1);
  const long = framed('sensors/room-12/temp');
  cache.remember(long.packet, long.from, long.to, 'sensors/room-12/temp', 1);
  const short = framed('sensors/r');
  cache.remember(short.packet, short.from, short.to, 'sensors/r', 2);
  t.true(cache.matches(short.packet, short.from, short.to));
  t.false(cache.matches(long.packet, long.from, long.to), 'the old bytes beyond the new length do not count');
  t.is(cache.id, 2);
});
