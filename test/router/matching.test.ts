/**
 * Topic filters and both tries: the subscription trie (filter → sessions, matched per new topic)
 * and the topic table (name → id, walked per new subscription) agree with the reference matcher.
 */
import test from 'ava';
import fc from 'fast-check';
import { SubscriptionTrie } from '../../router/subscriptions.js';
import { isValidTopicFilter, isValidTopicName, topicMatches } from '../../router/topic-filter.js';
import { TopicTable } from '../../router/topics.js';

test('validates topic names: no wildcards, not empty [MQTT-3.3.2-2] [MQTT-4.7.3-1]', (t) => {
  t.true(isValidTopicName('a/b/c'));
  t.true(isValidTopicName('/'));
  t.false(isValidTopicName(''));
  t.false(isValidTopicName('a/+/c'));
  t.false(isValidTopicName('a/#'));
  t.false(isValidTopicName('a\u0000b'));
});

test('validates filters: # last and alone, + alone in its level [MQTT-4.7.1-2] [MQTT-4.7.1-3]', (t) => {
  for (const ok of ['#', '+', 'a/#', 'a/+/b', '+/+', '/', 'a//b', '$SYS/#']) t.true(isValidTopicFilter(ok), ok);
  for (const bad of ['', 'a/#/b', 'a#', 'a/b#', 'a+/b', 'a/+b', '##']) t.false(isValidTopicFilter(bad), bad);
});

test('reference matcher follows the spec examples', (t) => {
  t.true(topicMatches('sport/tennis/player1/#', 'sport/tennis/player1'));
  t.true(topicMatches('sport/tennis/player1/#', 'sport/tennis/player1/ranking'));
  t.true(topicMatches('sport/#', 'sport'));
  t.true(topicMatches('sport/+', 'sport/'));
  t.false(topicMatches('sport/+', 'sport'));
  t.true(topicMatches('+/+', '/finance'));
  t.true(topicMatches('/+', '/finance'));
  t.false(topicMatches('+', '/finance'));
  t.false(topicMatches('#', '$SYS/uptime'));
  t.false(topicMatches('+/monitor/Clients', '$SYS/monitor/Clients'));
  t.true(topicMatches('$SYS/#', '$SYS/uptime'));
});

const level = fc.constantFrom('a', 'b', 'c', '', '$x');
const name = fc.array(level, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('/'));
const filter = fc
  .array(fc.constantFrom('a', 'b', '', '+', '$x'), { minLength: 1, maxLength: 4 })
  .chain((ls) => fc.boolean().map((hash) => (hash ? [...ls, '#'] : ls).join('/')))
  .filter(isValidTopicFilter);

test('the subscription trie matches exactly what the reference matcher matches', (t) => {
  fc.assert(
    fc.property(fc.array(filter, { maxLength: 12 }), fc.array(name, { minLength: 1, maxLength: 12 }), (filters, names) => {
      const trie = new SubscriptionTrie<number>();
      filters.forEach((f, i) => trie.add(f, i, 0));
      for (const n of names) {
        const got = new Set<number>();
        trie.match(n, (s) => got.add(s));
        const want = new Set(filters.flatMap((f, i) => (topicMatches(f, n) ? [i] : [])));
        if (got.size !== want.size || [...want].some((i) => !got.has(i))) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('the topic table enumerates exactly the names a filter matches', (t) => {
  fc.assert(
    fc.property(fc.array(name, { maxLength: 15 }), filter, (names, f) => {
      const table = new TopicTable();
      for (const n of names) table.intern(n);
      const got = new Set<string>();
      table.forEachMatch(f, (id) => got.add(table.nameOf(id)));
      const want = new Set(names.filter((n) => topicMatches(f, n)));
      return got.size === want.size && [...want].every((n) => got.has(n));
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('removing subscriptions prunes the trie and stops matches', (t) => {
  const trie = new SubscriptionTrie<string>();
  trie.add('a/+/c', 's1', 1);
  trie.add('a/#', 's2', 0);
  t.is(trie.size, 2);
  t.true(trie.remove('a/+/c', 's1'));
  t.false(trie.remove('a/+/c', 's1'));
  const seen: string[] = [];
  trie.match('a/b/c', (s) => seen.push(s));
  t.deepEqual(seen, ['s2']);
  t.is(trie.size, 1);
});

test('interning gives dense ids once per name', (t) => {
  const table = new TopicTable();
  t.deepEqual(table.intern('x'), { id: 0, created: true });
  t.deepEqual(table.intern('y'), { id: 1, created: true });
  t.deepEqual(table.intern('x'), { id: 0, created: false });
  t.is(table.nameOf(1 as never), 'y');
  t.is(table.size, 2);
});
