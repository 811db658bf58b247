/**
 * The subscription trie: topic filters → subscribers, matched against a topic name level by
 * level. Used when a topic is created (which sessions want it?), never per publish: once a
 * session has a cursor on a topic, publishes reach it through that cursor.
 *
 *   root ─ "sensors" ─ "+" ─ "temp"   {session A: qos 1}
 *        │           └ "#"            {session B: qos 0}
 *        └ "#"                        {session C: qos 2}   (never matches "$SYS/...")
 *
 * Cost of a match: O(levels × branching of '+'), independent of the number of subscriptions.
 * Invariant: a node with no entries and no children is removed, so the trie never grows with
 * churn.
 */

interface FilterNode<T> {
  parent: FilterNode<T> | null;
  level: string;
  children: Map<string, FilterNode<T>> | null;
  entries: Map<T, number> | null; // subscriber → granted QoS (or any small number the caller chooses)
}

function node<T>(parent: FilterNode<T> | null, level: string): FilterNode<T> {
  return { parent, level, children: null, entries: null };
}

export class SubscriptionTrie<T> {
  readonly #root: FilterNode<T> = node<T>(null, '');
  #count = 0;

  /** Number of (filter, subscriber) pairs. */
  get size(): number {
    return this.#count;
  }

  /** Adds or replaces `subscriber`'s entry on `filter`. Returns true if it was new. */
  add(filter: string, subscriber: T, value: number): boolean {
    let n = this.#root;
    for (const level of filter.split('/')) {
      n.children ??= new Map();
      let next = n.children.get(level);
      if (next === undefined) {
        next = node(n, level);
        n.children.set(level, next);
      }
      n = next;
    }
    n.entries ??= new Map();
    const isNew = !n.entries.has(subscriber);
    n.entries.set(subscriber, value);
    if (isNew) this.#count++;
    return isNew;
  }

  /** Removes `subscriber` from `filter`. Returns true if it was there. */
  remove(filter: string, subscriber: T): boolean {
    let n: FilterNode<T> | undefined = this.#root;
    for (const level of filter.split('/')) {
      n = n.children?.get(level);
      if (n === undefined) return false;
    }
    if (n.entries === null || !n.entries.delete(subscriber)) return false;
    this.#count--;
    if (n.entries.size === 0) n.entries = null;
    // prune empty branches
    while (n.parent !== null && n.entries === null && (n.children === null || n.children.size === 0)) {
      n.parent.children?.delete(n.level);
      n = n.parent;
    }
    return true;
  }

  /** Calls `visit(subscriber, value)` for every entry whose filter matches the topic `name`. */
  match(name: string, visit: (subscriber: T, value: number) => void): void {
    const levels = name.split('/');
    matchLevel(this.#root, levels, 0, visit, name.startsWith('$'));
  }
}

function emit<T>(n: FilterNode<T>, visit: (subscriber: T, value: number) => void): void {
  if (n.entries !== null) for (const [s, v] of n.entries) visit(s, v);
}

function matchLevel<T>(
  n: FilterNode<T>,
  levels: string[],
  depth: number,
  visit: (subscriber: T, value: number) => void,
  dollar: boolean,
): void {
  const children = n.children;
  if (children === null) return;
  // [MQTT-4.7.2-1] wildcards at the first level never match '$' topics
  const wild = !(dollar && depth === 0);
  if (wild) {
    const hash = children.get('#');
    if (hash !== undefined) emit(hash, visit);
  }
  if (depth === levels.length) return;
  const exact = children.get(levels[depth] as string);
  if (depth === levels.length - 1) {
    if (exact !== undefined) {
      emit(exact, visit);
      // "a/#" also matches "a"
      const tail = exact.children?.get('#');
      if (tail !== undefined) emit(tail, visit);
    }
    if (wild) {
      const plus = children.get('+');
      if (plus !== undefined) {
        emit(plus, visit);
        const tail = plus.children?.get('#');
        if (tail !== undefined) emit(tail, visit);
      }
    }
    return;
  }
  if (exact !== undefined) matchLevel(exact, levels, depth + 1, visit, dollar);
  if (wild) {
    const plus = children.get('+');
    if (plus !== undefined) matchLevel(plus, levels, depth + 1, visit, dollar);
  }
}
