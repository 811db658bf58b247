/**
 * A connection's one-entry topic cache: the topic its last PUBLISH named, as bytes, name and id.
 * A device usually publishes to one topic again and again; when the next PUBLISH carries the
 * same bytes, the connection skips the UTF-8 check, the string, the topic-name check and the
 * intern lookup. The bytes live in a small buffer of the cache's own (not a slice of Node's
 * shared pool, which would keep a whole 8 KiB pool block alive per idle connection, nor a view
 * of the socket chunk), reused while the next topic fits.
 * Correct only for ids that are never reused (router/topics.ts promises that).
 */
export class LastTopic<Id extends number> {
  #bytes: Buffer | null = null;
  #length = 0;
  name = '';
  id: Id;

  constructor(none: Id) {
    this.id = none;
  }

  /** Whether packet[from, to) is the remembered topic (never true for an empty topic). */
  matches(packet: Buffer, from: number, to: number): boolean {
    const known = this.#bytes;
    const n = this.#length;
    if (known === null || n !== to - from) return false;
    // a short loop beats a call into C++ for the topic lengths fleets use
    if (n > 64) return packet.compare(known, 0, n, from, to) === 0;
    for (let i = 0; i < n; i++) if (packet[from + i] !== known[i]) return false;
    return true;
  }

  /** Remembers packet[from, to) as the (valid, interned) topic `name` with id `id`. */
  remember(packet: Buffer, from: number, to: number, name: string, id: Id): void {
    const n = to - from;
    if (n === 0) return; // an MQTT 5 alias-only PUBLISH names no topic bytes
    if (this.#bytes === null || this.#bytes.length < n) this.#bytes = Buffer.allocUnsafeSlow(Math.max(n, 32));
    packet.copy(this.#bytes, 0, from, to);
    this.#length = n;
    this.name = name;
    this.id = id;
  }
}
