/**
 * A connection's one-entry topic cache: the topic its last PUBLISH named, as bytes, name and id.
 * A device usually publishes to one topic again and again; when the next PUBLISH carries the
 * same bytes, the connection skips the UTF-8 check, the string, the topic-name check and the
 * intern lookup. The bytes are a copy, so no socket chunk stays pinned behind the cache.
 * Correct only for ids that are never reused (router/topics.ts promises that).
 */
export class LastTopic<Id extends number> {
  #bytes: Buffer | null = null;
  name = '';
  id: Id;

  constructor(none: Id) {
    this.id = none;
  }

  /** Whether packet[from, to) is the remembered topic (never true for an empty topic). */
  matches(packet: Buffer, from: number, to: number): boolean {
    const known = this.#bytes;
    if (known === null || known.length !== to - from) return false;
    // a short loop beats a call into C++ for the topic lengths fleets use
    if (known.length > 64) return packet.compare(known, 0, known.length, from, to) === 0;
    for (let i = 0; i < known.length; i++) if (packet[from + i] !== known[i]) return false;
    return true;
  }

  /** Remembers packet[from, to) as the (valid, interned) topic `name` with id `id`. */
  remember(packet: Buffer, from: number, to: number, name: string, id: Id): void {
    if (to === from) return; // an MQTT 5 alias-only PUBLISH names no topic bytes
    this.#bytes = Buffer.from(packet.subarray(from, to));
    this.name = name;
    this.id = id;
  }
}
