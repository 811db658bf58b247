/**
 * Splits the inbound byte stream into whole MQTT packets, judging each packet's size from its
 * fixed header before its body arrives — an oversized packet is refused at once instead of being
 * buffered (mqtt-packet alone would buffer up to 256 MB first).
 *
 *   ┌─────────┬──────────────────────┬────────── body ──────────┐
 *   │ type|fl │ remaining length     │ remaining-length bytes    │
 *   │ 1 byte  │ 1–4 bytes, 7 bits ea │                           │
 *   └─────────┴──────────────────────┴───────────────────────────┘
 *
 * A packet inside one chunk is handed out as a view of that chunk (no copy). A packet that spans
 * chunks is assembled once into a buffer of its exact size, allocated when its header is known.
 */

export type FrameVerdict = 'ok' | 'too-large' | 'malformed';

/** Receives one whole packet; `headerBytes` is where its variable header starts. */
export type PacketSink = (packet: Buffer, headerBytes: number) => void;

export class PacketFramer {
  readonly #maxPacketBytes: number;
  /** A packet being assembled across chunks, and how much of it is filled. */
  #partial: Buffer | null = null;
  #filled = 0;
  #partialHeaderBytes = 0;
  /** Header bytes left over at the end of a chunk (at most 4). */
  #stash: Buffer | null = null;
  /** Declared size of the packet that tripped the size check. */
  lastDeclaredBytes = 0;

  constructor(maxPacketBytes: number) {
    this.#maxPacketBytes = maxPacketBytes;
  }

  push(input: Buffer, sink: PacketSink): FrameVerdict {
    let chunk = input;
    let i = 0;
    if (this.#partial !== null) {
      const partial = this.#partial;
      const n = Math.min(partial.length - this.#filled, chunk.length);
      chunk.copy(partial, this.#filled, 0, n);
      this.#filled += n;
      i = n;
      if (this.#filled < partial.length) return 'ok';
      this.#partial = null;
      sink(partial, this.#partialHeaderBytes);
    } else if (this.#stash !== null) {
      chunk = Buffer.concat([this.#stash, chunk]);
      this.#stash = null;
    }
    const len = chunk.length;
    while (i < len) {
      // remaining length: up to four bytes after the first [MQTT-2.2.3]
      let remaining = 0;
      let multiplier = 1;
      let pos = i + 1;
      let complete = false;
      for (let k = 0; k < 4 && pos < len; k++) {
        const b = chunk[pos++] as number;
        remaining += (b & 0x7f) * multiplier;
        multiplier *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete) {
        if (pos - i >= 5) return 'malformed';
        this.#stash = Buffer.from(chunk.subarray(i));
        return 'ok';
      }
      const headerBytes = pos - i;
      const total = headerBytes + remaining;
      if (total > this.#maxPacketBytes) {
        this.lastDeclaredBytes = total;
        return 'too-large';
      }
      if (i + total <= len) {
        sink(chunk.subarray(i, i + total), headerBytes);
        i += total;
        continue;
      }
      const partial = Buffer.allocUnsafe(total);
      chunk.copy(partial, 0, i);
      this.#partial = partial;
      this.#filled = len - i;
      this.#partialHeaderBytes = headerBytes;
      return 'ok';
    }
    return 'ok';
  }
}
