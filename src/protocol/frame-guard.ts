/**
 * Watches the byte stream's fixed headers before mqtt-packet sees it, so an oversized packet is
 * refused from its first bytes instead of being buffered (mqtt-packet would buffer up to 256 MB
 * before emitting anything). It only walks headers and skips bodies: no copy, no allocation.
 *
 *   ┌─────────┬──────────────────────┬──────────── body ───────────┐
 *   │ type|fl │ remaining length     │ (skipped: `#body` counts    │
 *   │ 1 byte  │ 1–4 bytes, 7 bits ea │  down across chunks)        │
 *   └─────────┴──────────────────────┴─────────────────────────────┘
 *
 * State survives chunk boundaries anywhere inside a header.
 */

export type GuardVerdict = 'ok' | 'too-large' | 'malformed';

export class FrameGuard {
  readonly #maxPacketBytes: number;
  /** Body bytes of the current packet still to skip. */
  #body = 0;
  /** Header bytes seen of the current packet (0 = at a packet boundary). */
  #headerBytes = 0;
  #length = 0;
  #multiplier = 1;
  /** Declared size of the packet that tripped the guard. */
  lastDeclaredBytes = 0;

  constructor(maxPacketBytes: number) {
    this.#maxPacketBytes = maxPacketBytes;
  }

  check(chunk: Buffer): GuardVerdict {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.#body > 0) {
        const skip = n - i < this.#body ? n - i : this.#body;
        i += skip;
        this.#body -= skip;
        continue;
      }
      if (this.#headerBytes === 0) {
        this.#headerBytes = 1;
        this.#length = 0;
        this.#multiplier = 1;
        i++;
        continue;
      }
      const b = chunk[i++] as number;
      this.#length += (b & 0x7f) * this.#multiplier;
      this.#multiplier *= 128;
      this.#headerBytes++;
      if ((b & 0x80) !== 0) {
        if (this.#headerBytes > 4) return 'malformed'; // a fifth length byte [MQTT-2.2.3]
        continue;
      }
      const total = this.#headerBytes + this.#length;
      if (total > this.#maxPacketBytes) {
        this.lastDeclaredBytes = total;
        return 'too-large';
      }
      this.#body = this.#length;
      this.#headerBytes = 0;
    }
    return 'ok';
  }
}
