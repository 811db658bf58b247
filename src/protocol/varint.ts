/**
 * MQTT's Variable Byte Integer (§1.5.5): 7 bits per byte, high bit = more follows, at most four
 * bytes. Used by the fixed header's Remaining Length and by MQTT 5 property blocks.
 */

/** Bytes `n` takes on the wire. */
export function varintBytes(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4;
}

/** Writes `n` at `pos`; returns the position after it. */
export function writeVarint(buf: Buffer, pos: number, n: number): number {
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    buf[pos++] = b;
  } while (n > 0);
  return pos;
}

/** Reads a value at `pos` (not past `end`); returns [value, next position] or null if malformed. */
export function readVarint(buf: Buffer, pos: number, end: number): [number, number] | null {
  let value = 0;
  let multiplier = 1;
  for (let i = 0; i < 4; i++) {
    if (pos >= end) return null;
    const b = buf[pos++] as number;
    value += (b & 0x7f) * multiplier;
    if ((b & 0x80) === 0) return [value, pos];
    multiplier *= 128;
  }
  return null;
}
