/** Persisting a session's inflight set as deltas: only what changed since the last record. */
import test from 'ava';
import type { TopicId } from '../../router/ids.js';
import { type Inflight, newTopicState, Session } from '../../router/session.js';

const topic = newTopicState(3 as TopicId, 't');

function sent(offset: number, record: Buffer | null = null): Inflight {
  return { topic, offset, qos: 1, state: 'publish', record, retain: false, storedAt: 1000 + offset, subscriptionIds: null };
}

test('reports additions, stage changes and removals once each, and ids reused by unpersisted deliveries', (t) => {
  const s = new Session('c', 1, -1, 256);
  t.deepEqual(s.inflightSnapshot(), []);
  s.inflight.set(1, sent(10));
  s.inflight.set(2, sent(11));
  t.deepEqual(s.inflightDelta(), {
    added: [
      [1, 3, 10, 1, 0, 1010],
      [2, 3, 11, 1, 0, 1011],
    ],
    removed: [],
  });
  t.deepEqual(s.inflightDelta(), { added: [], removed: [] }, 'nothing changed, nothing written');
  (s.inflight.get(2) as Inflight).state = 'pubrel';
  s.inflight.delete(1);
  t.deepEqual(s.inflightDelta(), { added: [[2, 3, 11, 1, 1, 1011]], removed: [1] });
  s.inflight.delete(2);
  s.inflight.set(2, sent(12, Buffer.from('retained'))); // id 2 reused by a retained delivery
  t.deepEqual(s.inflightDelta(), { added: [], removed: [2] });
  s.inflight.set(5, sent(13));
  t.deepEqual(s.inflightSnapshot(), [[5, 3, 13, 1, 0, 1013]], 'a snapshot lists persistable entries only');
  t.deepEqual(s.inflightDelta(), { added: [], removed: [] }, 'and counts as persisted');
});
