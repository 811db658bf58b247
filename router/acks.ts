/**
 * Publishers waiting for their appends to commit, per log, in offset order.
 * A commit event pops every waiter below the committed offset; a failed batch fails those in
 * its range. Two parallel arrays and a head index, so the common path allocates nothing but
 * the array slots.
 */
import { emptyNumberArray, emptyObjectArray, type Offset } from '../commitlog/index.js';

/** Something that completes when all the appends it waits for have committed. */
export interface Completion {
  /** Appends still to commit before the publisher may be acknowledged. */
  remaining: number;
  failed: boolean;
  /** Called once, when `remaining` reaches 0 or the first append fails. */
  done(error: Error | null): void;
}

export class AckQueue {
  // offsets outgrow small integers (and may be stored as doubles): a double array from the start
  #offsets: Offset[] = emptyNumberArray();
  #waiters: Completion[] = emptyObjectArray<Completion>();
  #head = 0;

  push(offset: Offset, waiter: Completion): void {
    this.#offsets.push(offset);
    this.#waiters.push(waiter);
  }

  /** Completes every waiter whose offset is below `committed`. */
  commit(committed: Offset): void {
    let i = this.#head;
    const offsets = this.#offsets;
    const waiters = this.#waiters;
    while (i < offsets.length && (offsets[i] as number) < committed) {
      const w = waiters[i] as Completion;
      waiters[i] = undefined as unknown as Completion;
      i++;
      if (w.failed) continue;
      if (--w.remaining === 0) w.done(null);
    }
    this.#advance(i);
  }

  /** Fails every waiter whose offset is in [from, to). Offsets at or past `to` stay queued. */
  fail(from: Offset, to: Offset, error: Error): void {
    const offsets = this.#offsets;
    const waiters = this.#waiters;
    let i = this.#head;
    while (i < offsets.length && (offsets[i] as number) < to) {
      const w = waiters[i] as Completion;
      waiters[i] = undefined as unknown as Completion;
      if ((offsets[i] as number) >= from && !w.failed) {
        w.failed = true;
        w.done(error);
      }
      i++;
    }
    this.#advance(i);
  }

  #advance(i: number): void {
    if (i === this.#offsets.length) {
      // emptied in place: the arrays keep their elements kind (elements.ts)
      this.#offsets.length = 0;
      this.#waiters.length = 0;
      this.#head = 0;
    } else if (i > 1024 && i * 2 > this.#offsets.length) {
      this.#offsets = this.#offsets.slice(i);
      this.#waiters = this.#waiters.slice(i);
      this.#head = 0;
    } else {
      this.#head = i;
    }
  }
}
