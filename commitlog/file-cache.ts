/**
 * A least-recently-used cache of open file descriptors, shared by every log of a LogStore, so
 * 10k logs do not hold 20k fds. Files are opened lazily on first use.
 *
 * Invariants:
 * - at most `maxOpen` fds are open, except while more than that are pinned (in use by an
 *   operation): a pinned fd is never closed under its user;
 * - one path has at most one fd; concurrent acquires of the same path share the open;
 * - forget(path) (the file is being deleted) closes the fd as soon as its last user releases it.
 */
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
  #open = 0;

  constructor(ops: FileOps, maxOpen: number) {
    this.#ops = ops;
    this.#maxOpen = maxOpen;
  }

  /** Open fds right now (including pinned and dropped-but-in-use ones). */
  get openCount(): number {
    return this.#open;
  }

  /** Pins the fd of `path`, opening it (creating the file when `create`) if needed. */
  async acquire(path: string, create: boolean): Promise<FileRef> {
    let entry = this.#entries.get(path);
    if (entry === undefined) {
      let opening = this.#opening.get(path);
      if (opening === undefined) {
        opening = this.#openEntry(path, create);
        this.#opening.set(path, opening);
      }
      entry = await opening;
    } else {
      // Touch: move to the most recently used end.
      this.#entries.delete(path);
      this.#entries.set(path, entry);
    }
    entry.pins++;
    return { fd: entry.fd, entry };
  }

  async #openEntry(path: string, create: boolean): Promise<Entry> {
    try {
      const fd = await this.#ops.open(path, create);
      this.#open++;
      const entry: Entry = { path, fd, pins: 0, dropped: false };
      this.#entries.set(path, entry);
      this.#evictOverflow();
      return entry;
    } catch (err) {
      throw ioError('open', path, err);
    } finally {
      this.#opening.delete(path);
    }
  }

  /** Unpins a reference from acquire(). */
  release(ref: FileRef): void {
    const entry = ref.entry as Entry;
    entry.pins--;
    if (entry.pins === 0) {
      if (entry.dropped) this.#closeEntry(entry);
      else if (this.#entries.size > this.#maxOpen) this.#evictOverflow();
    }
  }

  /** Closes the fd of `path` (now, or when its last user releases it): the file is going away. */
  forget(path: string): void {
    const entry = this.#entries.get(path);
    if (entry === undefined) return;
    this.#entries.delete(path);
    entry.dropped = true;
    if (entry.pins === 0) this.#closeEntry(entry);
  }

  /** Closes every unpinned fd (store close). */
  async closeAll(): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const entry of [...this.#entries.values()]) {
      this.#entries.delete(entry.path);
      entry.dropped = true;
      if (entry.pins === 0) closing.push(this.#closeEntry(entry));
    }
    await Promise.all(closing);
  }

  #evictOverflow(): void {
    if (this.#entries.size <= this.#maxOpen) return;
    for (const entry of this.#entries.values()) {
      if (this.#entries.size <= this.#maxOpen) break;
      if (entry.pins > 0) continue;
      this.#entries.delete(entry.path);
      entry.dropped = true;
      this.#closeEntry(entry);
    }
  }

  #closeEntry(entry: Entry): Promise<void> {
    this.#open--;
    // A failed close leaves nothing to do: the fd is gone either way on Linux.
    return this.#ops.close(entry.fd).catch(() => undefined);
  }
}
