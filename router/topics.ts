/**
 * Topic interning: every topic name the broker has seen gets a dense TopicId, once.
 * Connections intern on PUBLISH so the router's maps are keyed by integers, never by strings.
 *
 * Also keeps the existing names in a level trie, so a new wildcard subscription finds the
 * topics it matches by walking the filter, not by scanning every topic:
 *
 *   root ─ "sensors" ─ "a" ─ "temp"  (id 3)
 *        │           └ "b" ─ "temp"  (id 7)
 *        └ "$SYS" ─ "broker" ─ ...
 *
 * Invariant: ids are assigned in order 0, 1, 2, ... and never reused; `nameOf(id)` is total for
 * every id handed out. Persistence is the router's job (the `topics` meta log, where the record
 * at offset N is the name of TopicId N).
 */
import type { TopicId } from './ids.js';

interface LevelNode {
  children: Map<string, LevelNode> | null;
  id: TopicId | -1;
}

function newNode(): LevelNode {
  return { children: null, id: -1 };
}

export class TopicTable {
  readonly #ids = new Map<string, TopicId>();
  readonly #names: string[] = [];
  readonly #root: LevelNode = newNode();

  /** Number of interned topics (also the next id). */
  get size(): number {
    return this.#names.length;
  }

  /** The id of `name`, or undefined if never seen. */
  lookup(name: string): TopicId | undefined {
    return this.#ids.get(name);
  }

  /** Interns `name`, returning its id and whether it was new. */
  intern(name: string): { id: TopicId; created: boolean } {
    const known = this.#ids.get(name);
    if (known !== undefined) return { id: known, created: false };
    const id = this.#names.length as TopicId;
    this.#names.push(name);
    this.#ids.set(name, id);
    let node = this.#root;
    for (const level of name.split('/')) {
      node.children ??= new Map();
      let next = node.children.get(level);
      if (next === undefined) {
        next = newNode();
        node.children.set(level, next);
      }
      node = next;
    }
    node.id = id;
    return { id, created: true };
  }

  nameOf(id: TopicId): string {
    const name = this.#names[id];
    if (name === undefined) throw new RangeError(`unknown TopicId ${id}`);
    return name;
  }

  /** Calls `visit` for every existing topic the (valid) filter matches. */
  forEachMatch(filter: string, visit: (id: TopicId) => void): void {
    const levels = filter.split('/');
    walk(this.#root, levels, 0, visit, true);
  }
}

function walk(node: LevelNode, levels: string[], depth: number, visit: (id: TopicId) => void, top: boolean): void {
  if (depth === levels.length) {
    if (node.id !== -1) visit(node.id);
    return;
  }
  const level = levels[depth] as string;
  const children = node.children;
  if (level === '#') {
    // '#' also matches the parent level itself ("a/#" matches "a") [MQTT-4.7.1-2]
    if (node.id !== -1 && !top) visit(node.id);
    if (children !== null) {
      for (const [name, child] of children) {
        if (top && name.startsWith('$')) continue; // [MQTT-4.7.2-1]
        visitAll(child, visit);
      }
    }
    return;
  }
  if (children === null) return;
  if (level === '+') {
    for (const [name, child] of children) {
      if (top && name.startsWith('$')) continue; // [MQTT-4.7.2-1]
      walk(child, levels, depth + 1, visit, false);
    }
    return;
  }
  const child = children.get(level);
  if (child !== undefined) walk(child, levels, depth + 1, visit, false);
}

function visitAll(node: LevelNode, visit: (id: TopicId) => void): void {
  if (node.id !== -1) visit(node.id);
  if (node.children !== null) for (const child of node.children.values()) visitAll(child, visit);
}
