/**
 * Session state the router owns: subscriptions, per-topic cursors into the commit logs,
 * outbound inflight messages and inbound QoS 2 packet ids.
 *
 * A session outlives its connections when it is persistent (clean session = 0): the cursors
 * say where in each topic's log delivery stopped, so offline messages are simply the records
 * past the cursor — there is no per-session message queue in memory.
 *
 * Invariants:
 * - a session has at most one cursor per topic; its QoS is the highest granted QoS among the
 *   session's filters matching that topic, so overlapping subscriptions yield one copy
 *   [MQTT-3.3.5-1];
 * - every outbound packet id in `inflight` is unique and in 1..65535 [MQTT-2.3.1-1];
 * - `inflight` iterates in send order, which is the resend order on reconnect [MQTT-4.6.0-1].
 */
import type { CommitLog, Offset, ReadBatch } from '../commitlog/index.js';
import { AckQueue } from './acks.js';
import type { QoS, TopicId } from './ids.js';

/** What the router needs from a connection to talk to its client. Implemented in src/. */
export interface Outlet {
  /** False while the client's socket buffer is full; the router then stops pulling for it. */
  readonly writable: boolean;
  /**
   * Sends one PUBLISH. `payload` (and `properties`) are views into log memory shared with every
   * other subscriber of the record: the outlet must not modify or retain-and-mutate them.
   * `expiry` is the remaining Message Expiry Interval in seconds (-1: none); `subscriptionIds`
   * are the identifiers of the session's subscriptions that matched (MQTT 5). Returns false
   * when the client cannot take the message (larger than its Maximum Packet Size): it is
   * dropped as if delivered [MQTT-3.1.2-25].
   */
  publish(
    topic: Buffer,
    topicId: TopicId,
    qos: QoS,
    retain: boolean,
    dup: boolean,
    packetId: number,
    payload: Buffer,
    properties: Buffer | null,
    expiry: number,
    subscriptionIds: readonly number[] | null,
  ): boolean;
  /** Resends PUBREL for an outbound QoS 2 message whose PUBREC arrived before a reconnect. */
  pubrel(packetId: number): void;
  /** The client's PUBLISH with this packet id now meets the durability policy: PUBACK / PUBREC. */
  stored(packetId: number, qos: 1 | 2): void;
  /** The client's PUBLISH could not be stored (disk error): the outlet decides how to tell the client. */
  storeFailed(packetId: number, qos: 1 | 2, error: Error): void;
}

/** A subscription's options (MQTT 5 §3.8.3.1; 3.1.1 uses only `qos`). */
export interface SubscriptionOptions {
  qos: QoS;
  /** Do not deliver this session's own publishes [MQTT-3.8.3-3]. */
  noLocal: boolean;
  /** Keep the RETAIN flag as published when forwarding [MQTT-3.3.1-12]. */
  retainAsPublished: boolean;
  /** 0: send retained messages on subscribe; 1: only if the subscription is new; 2: never. */
  retainHandling: 0 | 1 | 2;
  /** Subscription Identifier, 0 = none. */
  id: number;
}

/** The router's view of one topic. */
export interface TopicState {
  readonly id: TopicId;
  readonly name: string;
  /** The name as UTF-8 bytes, encoded once and reused for every delivery. */
  readonly nameBytes: Buffer;
  log: CommitLog | null;
  opening: Promise<CommitLog> | null;
  /** Cursors of sessions subscribed to this topic. */
  readonly cursors: Set<Cursor>;
  /** Retained message (a stored record with the retain bit), or null. */
  retained: Buffer | null;
  /** When the retained message was stored, ms since the epoch (for Message Expiry). */
  retainedAt: number;
  /** RETAIN publishes issued on this topic, and the newest whose appends have committed. */
  retainedSeq: number;
  retainedApplied: number;
  /** Offset in the `retained` log of the newest entry not yet committed, or -1. */
  retainedPendingOffset: number;
  /** Publishes waiting for the log to open. */
  readonly queued: Array<() => void>;
  /**
   * When (performance.now()) the router last logged that this topic's log cannot open, the
   * error code it logged, and the failed opens and publishes since (counting the logged one).
   */
  unavailableLoggedAt: number;
  unavailableReason: string;
  unavailableOpens: number;
  unavailablePublishes: number;
  /** Publishers waiting for their record to commit, in offset order. */
  readonly acks: AckQueue;
  /**
   * Lowest offset at which a cursor stopped to wait for the commit (a QoS 2 record read before
   * its sync), or Infinity: with delivery before the sync, only then does a commit wake cursors.
   */
  syncWaitFrom: Offset;
}

/** The router's state for a topic it has just met (no log open yet, nothing retained). */
export function newTopicState(id: TopicId, name: string): TopicState {
  return {
    id,
    name,
    nameBytes: Buffer.from(name, 'utf8'),
    log: null,
    opening: null,
    cursors: new Set(),
    retained: null,
    retainedAt: 0,
    retainedSeq: 0,
    retainedApplied: 0,
    retainedPendingOffset: -1,
    queued: [],
    unavailableLoggedAt: Number.NEGATIVE_INFINITY,
    unavailableReason: '',
    unavailableOpens: 0,
    unavailablePublishes: 0,
    acks: new AckQueue(),
    syncWaitFrom: Number.POSITIVE_INFINITY,
  };
}

/**
 * A shared subscription `$share/{name}/{filter}` (MQTT 5 §4.8.2): one cursor per matching topic
 * for the whole group; each record goes to one member, round-robin among those that can take it.
 */
export interface SharedGroup {
  /** `{name}/{filter}`, unique per group. */
  readonly key: string;
  readonly filter: string;
  /** Members and their subscription options; `order` is the round-robin sequence. */
  readonly members: Map<Session, SubscriptionOptions>;
  order: Session[];
  next: number;
  /** The group's read positions, one per matching topic. */
  readonly cursors: Map<TopicId, Cursor>;
  /** Group cursors waiting for a member with room. */
  readonly blocked: Set<Cursor>;
  /** Messages a departed member left unacknowledged, to go to another member first. */
  readonly redeliver: Array<{ topic: TopicState; offset: Offset; storedAt: number }>;
  redelivering: boolean;
}

/** A session's (or a shared group's) read position in one topic's log. */
export interface Cursor {
  /** The subscriber; null for a shared group's cursor. */
  readonly session: Session | null;
  /** The shared group this cursor reads for, or null. */
  readonly group: SharedGroup | null;
  readonly topic: TopicState;
  /** Highest granted QoS among the session's filters that match the topic. */
  qos: QoS;
  /** Every matching subscription has No Local. */
  noLocal: boolean;
  /** Some matching subscription has Retain As Published. */
  retainAsPublished: boolean;
  /** Identifiers of the matching subscriptions, or null. */
  subscriptionIds: number[] | null;
  /** Next offset to deliver; -1 = "the log's end, once it is open". */
  next: Offset;
  /** Records read from disk ahead of `next` (views into one read buffer), or null. */
  ahead: ReadBatch | null;
  /** Queued in the scheduler's ready list. */
  queued: boolean;
  /** An async read is in flight. */
  reading: boolean;
  /** Caught up: woken by the topic's next commit. */
  waiting: boolean;
}

export interface Inflight {
  /** null only for a PUBREL-stage entry restored after a restart (its record is delivered). */
  readonly topic: TopicState | null;
  readonly offset: Offset;
  readonly qos: 1 | 2;
  /** 'publish': waiting for PUBACK/PUBREC; 'pubrel': PUBREL sent, waiting for PUBCOMP. */
  state: 'publish' | 'pubrel';
  /** The record, when it did not come from the topic's log (retained delivery). */
  readonly record: Buffer | null;
  readonly retain: boolean;
  /** When the record was stored, ms since the epoch (Message Expiry on resend). */
  readonly storedAt: number;
  readonly subscriptionIds: readonly number[] | null;
  /** The shared group the message was delivered for: it goes back there if the member leaves. */
  readonly group?: SharedGroup;
}

export class Session {
  readonly clientId: string;
  /** Small number identifying the session in stored records (MQTT 5 No Local). */
  readonly number: number;
  /**
   * Session Expiry Interval in seconds: 0 = the session ends with its connection, -1 = never
   * (3.1.1 clean session 0), otherwise kept that long after the connection closes.
   */
  expirySec: number;
  outlet: Outlet | null = null;
  /** Pending end of a disconnected session with a finite expiry. */
  expiryTimer: NodeJS.Timeout | null = null;
  /** When the last connection closed, ms since the epoch (0 while connected). */
  goneAt = 0;
  /** filter → options */
  readonly subscriptions = new Map<string, SubscriptionOptions>();
  readonly cursors = new Map<TopicId, Cursor>();
  readonly inflight = new Map<number, Inflight>();
  /** Inbound QoS 2 packet ids: 'storing' until committed, then 'stored' until PUBREL. */
  readonly inboundQos2 = new Map<number, 'storing' | 'stored'>();
  /** Cursors that stopped because the socket was full or the inflight window was. */
  readonly blocked = new Set<Cursor>();
  /** Shared groups this session is a member of. */
  readonly groups = new Set<SharedGroup>();
  /** Retained deliveries waiting for room in the inflight window (Receive Maximum). */
  readonly pendingRetained: Array<{ topic: TopicState; options: SubscriptionOptions }> = [];
  inflightMax: number;
  /** Topics whose cursor position changed since it was last persisted (persistent sessions). */
  readonly dirtyTopics = new Set<TopicState>();
  /** Outbound inflight messages changed since they were last persisted. */
  dirtyInflight = false;
  /** A resend of inflight messages after reconnect is in progress; cursors wait for it. */
  resending = false;
  /** The connection a resend in progress is for. */
  resendingFor: Outlet | null = null;
  /** Wakes a resend that waits for room in the client's Receive Maximum. */
  roomWaiter: (() => void) | null = null;
  /**
   * Inbound QoS 1/2 PUBLISHes being stored, and performance.now() when the last of them was:
   * tells a publisher waiting for each acknowledgement from one sending on (Router.publish).
   */
  storesPending = 0;
  lastStoredAt = -Infinity;
  #nextPid = 1;

  constructor(clientId: string, number: number, expirySec: number, inflightMax: number) {
    this.clientId = clientId;
    this.number = number;
    this.expirySec = expirySec;
    this.inflightMax = inflightMax;
  }

  /** State outlives the connection (and is persisted). */
  get persistent(): boolean {
    return this.expirySec !== 0;
  }

  /** Room left in the outbound inflight window. */
  get window(): number {
    return this.inflightMax - this.inflight.size;
  }

  /**
   * The inflight messages a restart must resend exactly — with their packet ids, from the log —
   * as [packetId, topicId, offset, qos, stage (0 publish, 1 pubrel), storedAt]. Retained
   * deliveries (their record is not in a topic log) and shared-group deliveries (the group
   * persists those) are not included. `persisted` is reset to match (a full snapshot).
   */
  inflightSnapshot(): InflightRow[] {
    this.#persisted.clear();
    const out: InflightRow[] = [];
    for (const [pid, f] of this.inflight) {
      if (!persistable(f)) continue;
      out.push(row(pid, f));
      this.#persisted.set(pid, { entry: f, stage: f.state });
    }
    return out;
  }

  /**
   * What changed in the persistable inflight set since the last snapshot or delta: rows added
   * or moved to PUBREL, and packet ids gone. Cheap per tick: only changes are written.
   */
  inflightDelta(): { added: InflightRow[]; removed: number[] } {
    const added: InflightRow[] = [];
    const removed: number[] = [];
    for (const [pid, f] of this.inflight) {
      if (!persistable(f)) continue;
      const before = this.#persisted.get(pid);
      if (before !== undefined && before.entry === f && before.stage === f.state) continue;
      added.push(row(pid, f));
      this.#persisted.set(pid, { entry: f, stage: f.state });
    }
    for (const [pid, before] of this.#persisted) {
      if (this.inflight.get(pid) === before.entry) continue;
      // acknowledged, or its id reused by a delivery that is not persisted (retained, group)
      removed.push(pid);
      this.#persisted.delete(pid);
    }
    return { added, removed };
  }

  /** Marks restored rows as already persisted (after a replay). */
  markPersisted(): void {
    this.inflightSnapshot();
  }

  /** What the `sessions` log holds of this session's inflight set, by packet id. */
  readonly #persisted = new Map<number, { entry: Inflight; stage: Inflight['state'] }>();

  /** Next free packet id in 1..65535 (callers check `window` first, so one exists). */
  allocatePacketId(): number {
    // callers check `window` first and inflightMax ≤ 65535, so a free id exists; the bound
    // turns a broken caller into an error instead of an endless loop
    if (this.inflight.size >= 65535) throw new RangeError(`session ${this.clientId} has every packet id in flight`);
    let pid = this.#nextPid;
    while (this.inflight.has(pid)) pid = pid === 65535 ? 1 : pid + 1;
    this.#nextPid = pid === 65535 ? 1 : pid + 1;
    return pid;
  }
}

/** An inflight entry as persisted: [packetId, topicId, offset, qos, stage (0 publish, 1 pubrel), storedAt]. */
export type InflightRow = [number, number, number, number, number, number];

function persistable(f: Inflight): boolean {
  return f.topic !== null && f.record === null && f.group === undefined;
}

function row(pid: number, f: Inflight): InflightRow {
  return [pid, (f.topic as TopicState).id, f.offset, f.qos, f.state === 'pubrel' ? 1 : 0, f.storedAt];
}
