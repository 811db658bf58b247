/**
 * The store's list of the logs written in this boot of the machine: one file per store,
 * `<root>/.boot-<boot id>`, a line per log appended with its first write of the boot. Recovery
 * is strict (damage before an intact chunk is ERR_COMMITLOG_CORRUPT) only for a log named in
 * it (StoreOptions.bootId says why). Also the line format both store lists share.
 *
 * It replaces an empty marker file in every log's directory, which cost an inode per new log
 * and, after every reboot, a creation and an unlink per log on its first write (on a file
 * system that has freed many inodes lately, ~1 ms of kernel time each; notes/commitlog.md).
 *
 * Invariants:
 * - the file is never synced: it is only read in the boot that wrote it, and within one boot
 *   the page cache holds every write in the order it was made, whatever crashed. After a
 *   reboot its id no longer matches and it is deleted unread at the next open.
 * - it is opened O_APPEND, every line carries its own CRC-32, and every write starts with a
 *   newline: two stores on one root (never intended, but tests do it) cannot overwrite each
 *   other's lines, a torn line (a crash, a failed or short write, ours or another store's)
 *   names nobody, and the next write's lines are not run into it. A name missing from the file
 *   only makes its log's next open lenient, which is safe in any boot; so a failed write is
 *   reported, never fatal.
 * - a name is only ever added for a log the store opened (and so validated) in this process,
 *   and is in has() only once its line is in the file.
 * - one write in flight; names asked for meanwhile leave together in the next one.
 */
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { CommitLogError, ioError } from './errors.js';
import type { FileOps } from './file-ops.js';

/** The list's file name starts with this; log names cannot start with '.', so it never collides. */
export const BOOT_LIST_PREFIX = '.boot-';

/** The boot list's file name for `bootId`. */
export function bootListName(bootId: string): string {
  return BOOT_LIST_PREFIX + bootId;
}

/** One line of a store list: the fields, space-separated (none may hold a space or newline), then their CRC-32. */
export function encodeLine(fields: readonly string[]): string {
  const body = fields.join(' ');
  return `${body} ${crc32(body).toString(16).padStart(8, '0')}\n`;
}

/**
 * The lines of a store list whose CRC-32 matches, as fields. A torn line (no newline, or run
 * together with the next one) fails its check and is skipped.
 */
export function parseLines(text: Buffer): string[][] {
  const out: string[][] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf(0x0a, start);
    if (nl < 0) break;
    const line = text.toString('latin1', start, nl);
    start = nl + 1;
    const cut = line.lastIndexOf(' ');
    if (cut < 0 || line.length - cut !== 9) continue;
    const body = line.slice(0, cut);
    if (crc32(body).toString(16).padStart(8, '0') !== line.slice(cut + 1)) continue;
    out.push(body.split(' '));
  }
  return out;
}

interface Pending {
  readonly names: string[];
  readonly done: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

export class BootList {
  /** Absolute path of this boot's list. */
  readonly path: string;
  readonly #ops: FileOps;
  /** Names whose line is in the file. */
  readonly #listed: Set<string>;
  /** Names in the write in flight or the next one, and the promise their callers wait on. */
  readonly #asked = new Map<string, Promise<void>>();
  #next: Pending | null = null;
  #writing: Promise<void> | null = null;
  #fd: number | null = null;
  #closed = false;

  /**
   * Reads this boot's list under `root` if there is one and deletes the lists of earlier boots
   * (best effort). `files` is the root directory's file listing. An unreadable list counts as
   * empty: every log is then opened leniently until written again.
   */
  static async open(ops: FileOps, root: string, bootId: string, files: readonly string[]): Promise<BootList> {
    const name = bootListName(bootId);
    const path = join(root, name);
    for (const f of files) {
      if (f.startsWith(BOOT_LIST_PREFIX) && f !== name) await ops.unlink(join(root, f)).catch(() => undefined);
    }
    const listed = new Set<string>();
    if (files.includes(name)) {
      const text = await readWhole(ops, path).catch(() => Buffer.alloc(0));
      for (const fields of parseLines(text)) if (fields.length === 1) listed.add(fields[0] as string);
    }
    return new BootList(ops, path, listed);
  }

  private constructor(ops: FileOps, path: string, listed: Set<string>) {
    this.#ops = ops;
    this.path = path;
    this.#listed = listed;
  }

  /** True when `name`'s line is in this boot's list. */
  has(name: string): boolean {
    return this.#listed.has(name);
  }

  /**
   * Adds `name` to the list; resolves once its line is in the file (in the page cache).
   * Rejects with ERR_COMMITLOG_IO if the write fails (the name is then not listed, and a later
   * call tries again) or ERR_COMMITLOG_CLOSED after close().
   */
  add(name: string): Promise<void> {
    if (this.#listed.has(name)) return Promise.resolve();
    const asked = this.#asked.get(name);
    if (asked !== undefined) return asked;
    if (this.#closed) return Promise.reject(new CommitLogError('ERR_COMMITLOG_CLOSED', `the boot list ${this.path} is closed`));
    let next = this.#next;
    if (next === null) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const done = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      done.catch(() => undefined); // each caller handles its own rejection
      next = this.#next = { names: [], done, resolve, reject };
      if (this.#writing === null) this.#writing = this.#drain();
    }
    next.names.push(name);
    this.#asked.set(name, next.done);
    return next.done;
  }

  /** Waits for the writes asked for, then closes the file. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#writing !== null) await this.#writing;
    if (this.#fd !== null) {
      const fd = this.#fd;
      this.#fd = null;
      await this.#ops.close(fd).catch(() => undefined);
    }
  }

  /** Writes the queued names, one write at a time, until none are queued. */
  async #drain(): Promise<void> {
    // start in a later microtask, so that every add() of this one gathers in the first write
    await Promise.resolve();
    while (this.#next !== null) {
      const batch = this.#next;
      this.#next = null;
      try {
        await this.#write(batch.names);
        for (const n of batch.names) this.#listed.add(n);
        batch.resolve();
      } catch (err) {
        batch.reject(err);
      } finally {
        for (const n of batch.names) this.#asked.delete(n);
      }
    }
    this.#writing = null;
  }

  async #write(names: readonly string[]): Promise<void> {
    // the newline ends whatever torn line may precede this write (an empty line names nobody)
    let text = '\n';
    for (const n of names) text += encodeLine([n]);
    try {
      if (this.#fd === null) this.#fd = await this.#ops.openAppend(this.path);
      await this.#ops.append(this.#fd, Buffer.from(text, 'latin1'));
    } catch (err) {
      throw ioError('write', this.path, err);
    }
  }
}

/** A small file's bytes, read positionally. @throws ERR_COMMITLOG_IO */
export async function readWhole(ops: FileOps, path: string): Promise<Buffer> {
  try {
    const fd = await ops.open(path, false);
    try {
      const size = await ops.size(fd);
      const text = Buffer.allocUnsafe(size);
      let got = 0;
      while (got < size) {
        const n = await ops.read(fd, text, got, size - got, got);
        if (n === 0) break;
        got += n;
      }
      return text.subarray(0, got);
    } finally {
      await ops.close(fd).catch(() => undefined);
    }
  } catch (err) {
    throw ioError('read', path, err);
  }
}
