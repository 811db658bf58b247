/**
 * Empty arrays born with the elements kind their values will need.
 *
 * V8 gives `[]` the kind "small integers" and changes it on the first push of anything else
 * (an object, `undefined`, a number beyond 2^30 or with a fraction). Code optimized on the
 * arrays of older objects (a log's tail, a topic's acknowledgement queue) then meets a new
 * object's array of the old kind, deoptimizes, and is compiled again: 3–9 ms of TurboFan per
 * function on the first records of every new topic. An array made from a sample value and
 * emptied keeps the sample's kind, so every instance's array looks the same from the start.
 * Each kind has its own literal: one literal shared by several kinds would learn the most
 * general of them and hand it to all.
 */

/** An empty array for objects, `null` and `undefined`. */
export function emptyObjectArray<T>(): T[] {
  const a: unknown[] = [null];
  a.pop();
  return a as T[];
}

/** An empty array for numbers that may leave the small-integer range (offsets, timestamps). */
export function emptyNumberArray(): number[] {
  const a = [0.5];
  a.pop();
  return a;
}
