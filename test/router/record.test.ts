/** The stored record layout: flags survive, and the payload comes back as a view, not a copy. */
import test from 'ava';
import { encodeRecord, isRecord, recordExpiry, recordOrigin, recordPayload, recordProperties, recordQos, recordRetain } from '../../router/record.js';

test('round-trips QoS, retain, origin, expiry, properties and payload', (t) => {
  const rec = encodeRecord(2, true, 42, 3600, Buffer.from([1, 2, 3]), Buffer.from('payload'));
  t.is(recordExpiry(rec), 3600);
  t.is(recordExpiry(encodeRecord(0, false, 0, -1, null, Buffer.alloc(0))), -1);
  t.is(recordExpiry(encodeRecord(0, false, 0, 0, null, Buffer.alloc(0))), 0);
  t.true(isRecord(rec));
  t.is(recordQos(rec), 2);
  t.true(recordRetain(rec));
  t.is(recordOrigin(rec), 42);
  t.deepEqual(recordProperties(rec), Buffer.from([1, 2, 3]));
  t.is(recordPayload(rec).toString(), 'payload');
});

test('the payload is a view sharing the record memory', (t) => {
  const rec = encodeRecord(1, false, 0, -1, null, Buffer.from('abc'));
  const payload = recordPayload(rec);
  t.is(payload.buffer, rec.buffer);
  rec[rec.length - 1] = 0x7a; // 'z'
  t.is(payload.toString(), 'abz');
  t.is(recordProperties(rec), null);
});

test('rejects records of another version or with a lying properties length', (t) => {
  const rec = encodeRecord(0, false, 0, -1, null, Buffer.from('x'));
  const wrongVersion = Buffer.from(rec);
  wrongVersion[0] = 9;
  t.false(isRecord(wrongVersion));
  const lying = Buffer.from(rec);
  lying.writeUInt32BE(1000, 10);
  t.false(isRecord(lying));
  t.false(isRecord(Buffer.alloc(3)));
});
