/**
 * A least-recently-used cache of open file descriptors, shared by every log of a LogStore, so
 * 10k logs do not hold 20k fds. Files are opened lazily on first use.
 *
 * Invariants:
 * - at most `maxOpen` fds are open or being opened, ever: an acquire that finds every slot taken
 *   by a pinned fd (one in use by an operation) waits for a release;
 * - an operation that needs two files takes them in one acquire() call (all slots at once), so
 *   two operations can never each hold one slot while waiting for another (no deadlock);
 * - one path has at most one fd; concurrent acquires of the same path share the open;
 * - a pinned fd is never closed under its user; forget(path) (the file is being deleted) closes
 *   it as soon as its last user releases it.
 */
import { emptyObjectArray } from './elements.js';
import { ioError } from './errors.js';
import type { FileOps } from './file-ops.js';

interface Entry {
  readonly path: string;
  fd: number;
  pins: number;
  /** Removed from the map (evicted or forgotten): close when the last pin goes. */
  dropped: boolean;
}

/** A pinned fd; give it back with FileCache.release(). */
export interface FileRef {
  readonly fd: number;
  /** @internal */
  readonly entry: unknown;
}

export class FileCache {
  readonly #ops: FileOps;
  readonly #maxOpen: number;
  /** Map order is recency: the first key is the least recently used. */
  readonly #entries = new Map<string, Entry>();
  readonly #opening = new Map<string, Promise<Entry>>();
  /** fds open or being opened (slots taken). */
  #used = 0;
  /** Acquires waiting for a slot, first come first served. */
  #waiters: (() => void)[] = [];
  readonly #closing = new Set<Promise<void>>();

  constructor(ops: FileOps, maxOpen: number) {
    this.#ops = ops;
    this.#maxOpen = maxOpen;
  }

  /** fds open (or being opened) right now. */
  get openCount(): number {
    return this.#used;
  }

  /**
   * Pins the fds of all `paths` (at most 2), opening them (creating the files when `create`)
   * if needed. Release each returned ref with release().
   */
  async acquire(paths: readonly string[], create: boolean): Promise<FileRef[]> {
    let woken = false;
    for (;;) {
      const missing = paths.filter((p) => !this.#entries.has(p) && !this.#opening.has(p));
      if (missing.length > 0 && !this.#reserve(missing.length)) {
        // Woken once per freed slot (never all at once: 3,000 concurrent opens made that
        // quadratic); one that still cannot go waits at the front again.
        await new Promise<void>((resolve) => (woken ? this.#waiters.unshift(resolve) : this.#waiters.push(resolve)));
        woken = true;
        continue;
      }
      if (woken && this.#waiters.length > 0 && this.#used < this.#maxOpen) this.#wake();
      for (const p of missing) this.#opening.set(p, this.#openEntry(p, create));
      // Pin what is open now, synchronously, so no eviction can take it in between.
      const refs: (FileRef | null)[] = paths.map((p) => {
        const entry = this.#entries.get(p);
        return entry === undefined ? null : this.#pin(entry);
      });
      let lost = false;
      try {
        for (let i = 0; i < paths.length; i++) {
          if (refs[i] !== null) continue;
          const opening = this.#opening.get(paths[i] as string);
          const entry = opening !== undefined ? await opening : this.#entries.get(paths[i] as string);
          if (entry === undefined || entry.dropped) lost = true;
          else refs[i] = this.#pin(entry);
        }
      } catch (err) {
        for (const r of refs) if (r !== null) this.release(r);
        throw err;
      }
      if (!lost) return refs as FileRef[];
      // Evicted between its open and our turn: give back what we hold and start over.
      for (const r of refs) if (r !== null) this.release(r);
    }
  }

  /**
   * Pins the fds of all `paths` when every one is already open, without waiting; null
   * otherwise (then use acquire()). Lets a writer whose files are open issue its write in the
   * same turn of the event loop.
   */
  tryAcquire(paths: readonly string[]): FileRef[] | null {
    for (const p of paths) {
      const entry = this.#entries.get(p);
      if (entry === undefined || entry.dropped) return null;
    }
    const refs = emptyObjectArray<FileRef>();
    for (const p of paths) refs.push(this.#pin(this.#entries.get(p) as Entry));
    return refs;
  }

  /** Pins the fd of one path (see acquire()). */
  async acquireOne(path: string, create: boolean): Promise<FileRef> {
    return (await this.acquire([path], create))[0] as FileRef;
  }

  #pin(entry: Entry): FileRef {
    entry.pins++;
    if (!entry.dropped) {
      this.#entries.delete(entry.path);
      this.#entries.set(entry.path, entry);
    }
    return { fd: entry.fd, entry };
  }

  /** Takes `n` slots if free now, evicting unpinned fds as needed; false if it must wait. */
  #reserve(n: number): boolean {
    if (this.#used + n > this.#maxOpen) {
      for (const entry of this.#entries.values()) {
        if (this.#used + n <= this.#maxOpen) break;
        if (entry.pins > 0) continue;
        this.#entries.delete(entry.path);
        entry.dropped = true;
        void this.#closeEntry(entry);
      }
    }
    if (this.#used + n > this.#maxOpen) return false;
    this.#used += n;
    return true;
  }

  async #openEntry(path: string, create: boolean): Promise<Entry> {
    try {
      const fd = await this.#ops.open(path, create);
      const entry: Entry = { path, fd, pins: 0, dropped: false };
      this.#entries.set(path, entry);
      return entry;
    } catch (err) {
      this.#freeSlot();
      throw ioError('open', path, err);
    } finally {
      this.#opening.delete(path);
    }
  }

  /** Unpins a reference from acquire(). */
  release(ref: FileRef): void {
    const entry = ref.entry as Entry;
    entry.pins--;
    if (entry.pins > 0) return;
    if (entry.dropped) void this.#closeEntry(entry);
    else this.#wake();
  }

  /** Closes the fd of `path` (now, or when its last user releases it): the file is going away. */
  forget(path: string): void {
    const entry = this.#entries.get(path);
    if (entry === undefined) return;
    this.#entries.delete(path);
    entry.dropped = true;
    if (entry.pins === 0) void this.#closeEntry(entry);
  }

  /** Closes every unpinned fd (store close). */
  async closeAll(): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const entry of [...this.#entries.values()]) {
      this.#entries.delete(entry.path);
      entry.dropped = true;
      if (entry.pins === 0) closing.push(this.#closeEntry(entry));
    }
    await Promise.all([...closing, ...this.#closing]);
  }

  #closeEntry(entry: Entry): Promise<void> {
    // A failed close leaves nothing to do: on Linux the fd is gone either way.
    const closing = this.#ops
      .close(entry.fd)
      .catch(() => undefined)
      .then(() => {
        this.#closing.delete(closing);
        this.#freeSlot();
      });
    this.#closing.add(closing);
    return closing;
  }

  #freeSlot(): void {
    this.#used--;
    this.#wake();
  }

  /** Lets the longest-waiting acquire try again. */
  #wake(): void {
    this.#waiters.shift()?.();
  }
}
