/**
 * Turns resolved options into the list of clients of a run and splits it into shards (one per
 * worker thread). Pure: no sockets. Each scenario is a rule for who publishes where and who
 * expects what from whom:
 *
 * - pairs:   publisher i → topic(i) → subscriber i              (N pubs, N subs)
 * - fanout:  publisher 0 → topic(0) → subscribers 0..N-1        (1 pub, N subs)
 * - fanin:   publishers 0..N-1 → topic(i) → subscriber 0 on topic(+)
 * - latency: ping-pong: publisher i → topic(i) → subscriber i, and publisher i sends its next
 *            message only once subscriber i got the previous one (one message in flight).
 *            Two connections, not one subscribed to its own topic: on a single connection the
 *            broker's PUBACK and the echoed PUBLISH are two small writes on one socket, and a
 *            broker without TCP_NODELAY then stalls ~40 ms on Nagle + delayed ACK per round trip
 * - idle:    N connections that only keep alive
 */
import type { ResolvedLoadOptions } from './options.js';

export type ClientRole = 'pub' | 'sub' | 'ping' | 'idle';

/** One client of a run. */
export interface ClientSpec {
  /** Index within its role (publisher i, subscriber i, ...). */
  index: number;
  role: ClientRole;
  clientId: string;
  /** Topic it publishes to (pub, ping). */
  topic?: string;
  /** Filter it subscribes to (sub, ping). */
  filter?: string;
  /** Publisher indices whose messages it must receive (sub, ping). */
  expectsFrom?: number[];
}

/** The clients one worker (or the main thread) runs. */
export interface ShardPlan {
  shard: number;
  options: ResolvedLoadOptions;
  clients: ClientSpec[];
}

/** The topic of publisher `i`. */
export function topicFor(opts: ResolvedLoadOptions, i: number | '+'): string {
  return opts.topic.replaceAll('{run}', String(opts.runId)).replaceAll('{i}', String(i));
}

/** The filter fan-in's single subscriber uses: `{i}` becomes `+` when it is a whole level. */
export function faninFilter(opts: ResolvedLoadOptions): string {
  const levels = opts.topic.split('/');
  if (levels.some((l) => l.includes('{i}') && l !== '{i}')) {
    // `{i}` inside a level cannot be matched by a wildcard: publishers share one topic instead.
    return topicFor(opts, 0);
  }
  return topicFor(opts, '+');
}

/** Topic of fan-in publisher i: its own level when the filter has a `+`, else the shared topic. */
function faninTopic(opts: ResolvedLoadOptions, i: number): string {
  return faninFilter(opts).includes('+') ? topicFor(opts, i) : topicFor(opts, 0);
}

/**
 * Units are the clients that belong together (a pair, a ping-pong client); a unit never spans
 * two shards, so a pair's latency is measured on one thread.
 */
export function planUnits(opts: ResolvedLoadOptions): ClientSpec[][] {
  const p = opts.clientPrefix;
  const n = opts.clients;
  const units: ClientSpec[][] = [];
  switch (opts.scenario) {
    case 'pairs':
    case 'scale':
      for (let i = 0; i < n; i++) {
        const topic = topicFor(opts, i);
        units.push([
          { index: i, role: 'sub', clientId: `${p}-s${i}`, filter: topic, expectsFrom: [i] },
          { index: i, role: 'pub', clientId: `${p}-p${i}`, topic },
        ]);
      }
      break;
    case 'fanout': {
      const topic = topicFor(opts, 0);
      units.push([{ index: 0, role: 'pub', clientId: `${p}-p0`, topic }]);
      for (let i = 0; i < n; i++) units.push([{ index: i, role: 'sub', clientId: `${p}-s${i}`, filter: topic, expectsFrom: [0] }]);
      break;
    }
    case 'fanin': {
      const all = Array.from({ length: n }, (_, i) => i);
      units.push([{ index: 0, role: 'sub', clientId: `${p}-s0`, filter: faninFilter(opts), expectsFrom: all }]);
      for (let i = 0; i < n; i++) units.push([{ index: i, role: 'pub', clientId: `${p}-p${i}`, topic: faninTopic(opts, i) }]);
      break;
    }
    case 'latency':
      for (let i = 0; i < n; i++) {
        const topic = topicFor(opts, i);
        units.push([
          { index: i, role: 'sub', clientId: `${p}-s${i}`, filter: topic, expectsFrom: [i] },
          { index: i, role: 'ping', clientId: `${p}-l${i}`, topic },
        ]);
      }
      break;
    case 'idle':
      for (let i = 0; i < n; i++) units.push([{ index: i, role: 'idle', clientId: `${p}-i${i}` }]);
      break;
  }
  return units;
}

/** Splits the run's units round-robin over `opts.workers` shards. */
export function planShards(opts: ResolvedLoadOptions): ShardPlan[] {
  const shards: ShardPlan[] = Array.from({ length: opts.workers }, (_, shard) => ({ shard, options: opts, clients: [] }));
  planUnits(opts).forEach((unit, u) => shards[u % opts.workers]?.clients.push(...unit));
  return shards.filter((s) => s.clients.length > 0);
}

/** Connections a run opens (for the fd budget). */
export function connectionCount(opts: ResolvedLoadOptions): number {
  return planUnits(opts).reduce((n, u) => n + u.length, 0);
}
