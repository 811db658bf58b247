/**
 * The raw write ceiling the commit log benchmarks compare with: a plain file written with one
 * pwritev per batch and rotated like a segment, so it keeps the same dirty footprint as a log
 * with ~two segments retained. Used by bench:commitlog and benches/experiments/sync-write-sweep.ts.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { nodeFileOps } from '../../commitlog/index.js';

export class RawWriter {
  readonly #dir: string;
  readonly #rotateBytes: number;
  readonly #onThread: boolean;
  #fd = -1;
  #pos = 0;
  #n = 0;
  /**
   * `onThread`: the pwritev runs on the calling thread (fs.writevSync) instead of the
   * threadpool. Up to a few hundred KiB that is the faster plain write here (1.5–1.7× at
   * 256 KiB), and the log writes such batches that way too (StoreOptions.syncWriteMaxBytes), so
   * the append rows measure both and compare the log with the faster one.
   */
  constructor(dir: string, rotateBytes: number, onThread = false) {
    this.#dir = dir;
    this.#rotateBytes = rotateBytes;
    this.#onThread = onThread;
    fs.mkdirSync(dir, { recursive: true });
    this.#rotate();
  }

  #rotate(): void {
    if (this.#fd >= 0) fs.closeSync(this.#fd);
    // Keep the previous file, like the log keeps ~retentionBytes: the same dirty footprint.
    if (this.#n >= 2) fs.unlinkSync(join(this.#dir, `raw-${this.#n - 2}`));
    this.#fd = fs.openSync(join(this.#dir, `raw-${this.#n++}`), 'w');
    this.#pos = 0;
  }

  /** Writes `bufs` (`bytes` in all) at the end of the current file; `sync` adds an fdatasync. */
  async batch(bufs: Buffer[], bytes: number, sync: boolean): Promise<void> {
    if (this.#onThread) fs.writevSync(this.#fd, bufs, this.#pos);
    else await nodeFileOps.writev(this.#fd, bufs, this.#pos);
    this.#pos += bytes;
    if (sync) await nodeFileOps.fdatasync(this.#fd);
    if (this.#pos >= this.#rotateBytes) this.#rotate();
  }

  close(): void {
    fs.closeSync(this.#fd);
  }
}
