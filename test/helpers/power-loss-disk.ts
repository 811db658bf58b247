/**
 * A FileOps over node:fs that models what a power loss keeps, strictly as POSIX allows, so tests
 * can take "the disk after a power loss" at any instant while a store runs:
 * - a file's bytes are on disk only up to its last successful fdatasync (never synced: empty);
 * - a failed fdatasync marks the dirty ranges clean without writing them (Linux's writeback
 *   error semantics), so a later successful fdatasync does not write them either;
 * - a directory entry's creation or removal is on disk only once its directory is fsynced.
 * `image(dst)` writes that disk to `dst`; `fault` injects errno failures per operation.
 * (Written by the journal's second review, notes/2026-11-23-journal-default.md §3.)
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { nodeFileOps, type FileOps } from '../../commitlog/index.js';

type Range = [number, number];

interface Inode {
  readonly kind: 'file' | 'dir';
  /** The file's bytes as the disk holds them. */
  durable: Buffer;
  /** Written since the last fdatasync. */
  dirty: Range[];
  /** Dropped by a failed fdatasync: the disk keeps its old bytes there. */
  lost: Range[];
}

function addRange(ranges: Range[], a: number, b: number): Range[] {
  if (b <= a) return ranges;
  const out: Range[] = [];
  let s = a;
  let e = b;
  for (const [x, y] of ranges) {
    if (y < s || x > e) out.push([x, y]);
    else {
      s = Math.min(s, x);
      e = Math.max(e, y);
    }
  }
  out.push([s, e]);
  return out.sort((p, q) => p[0] - q[0]);
}

function subRange(ranges: Range[], a: number, b: number): Range[] {
  const out: Range[] = [];
  for (const [x, y] of ranges) {
    if (y <= a || x >= b) out.push([x, y]);
    else {
      if (x < a) out.push([x, a]);
      if (y > b) out.push([b, y]);
    }
  }
  return out;
}

const bytesOf = (bufs: readonly Buffer[]): number => bufs.reduce((n, b) => n + b.length, 0);

export class PowerLossDisk {
  readonly #root: string;
  readonly #paths = new Map<string, Inode>();
  /** Durable directory entries: directory inode → name → inode. */
  readonly #entries = new Map<Inode, Map<string, Inode>>();
  /** Open fds: the path they were opened by and its inode (which outlives an unlink). */
  readonly #fds = new Map<number, { path: string; ino: Inode }>();
  /** Returns an errno code to fail this operation with, or undefined. */
  fault: (op: 'open' | 'write' | 'ftruncate' | 'fdatasync' | 'fsyncDir' | 'unlink', path: string) => string | undefined = () => undefined;
  /** Failures injected so far. */
  injected = 0;

  constructor(root: string) {
    this.#root = root;
    fs.mkdirSync(root, { recursive: true });
    this.#adopt(root);
  }

  /** Takes what exists at `path` as already durable. */
  #adopt(path: string): Inode {
    if (fs.statSync(path).isDirectory()) {
      const dir: Inode = { kind: 'dir', durable: Buffer.alloc(0), dirty: [], lost: [] };
      this.#paths.set(path, dir);
      this.#entries.set(dir, new Map(fs.readdirSync(path).map((name) => [name, this.#adopt(join(path, name))])));
      return dir;
    }
    const file: Inode = { kind: 'file', durable: fs.readFileSync(path), dirty: [], lost: [] };
    this.#paths.set(path, file);
    return file;
  }

  #inode(path: string): Inode {
    let ino = this.#paths.get(path);
    if (ino === undefined) {
      ino = { kind: fs.statSync(path).isDirectory() ? 'dir' : 'file', durable: Buffer.alloc(0), dirty: [], lost: [] };
      this.#paths.set(path, ino);
      if (ino.kind === 'dir') this.#entries.set(ino, new Map());
    }
    return ino;
  }

  #newFile(path: string): void {
    this.#paths.set(path, { kind: 'file', durable: Buffer.alloc(0), dirty: [], lost: [] });
  }

  #opened(fd: number, path: string): number {
    this.#fds.set(fd, { path, ino: this.#inode(path) });
    return fd;
  }

  #fd(fd: number): { path: string; ino: Inode } {
    const open = this.#fds.get(fd);
    if (open === undefined) throw new Error(`fd ${fd} was not opened through the model`);
    return open;
  }

  #check(op: Parameters<PowerLossDisk['fault']>[0], path: string): void {
    const code = this.fault(op, path);
    if (code === undefined) return;
    this.injected++;
    throw Object.assign(new Error(`injected ${code} on ${op} ${path}`), { code });
  }

  #written(ino: Inode, pos: number, n: number): void {
    ino.dirty = addRange(ino.dirty, pos, pos + n);
    ino.lost = subRange(ino.lost, pos, pos + n);
  }

  readonly ops: FileOps = {
    ...nodeFileOps,
    open: async (path, create) => {
      this.#check('open', path);
      const existed = fs.existsSync(path);
      const fd = await nodeFileOps.open(path, create);
      if (!existed) this.#newFile(path);
      return this.#opened(fd, path);
    },
    openAppend: async (path) => {
      const existed = fs.existsSync(path);
      const fd = await nodeFileOps.openAppend(path);
      if (!existed) this.#newFile(path);
      return this.#opened(fd, path);
    },
    close: (fd) => {
      this.#fds.delete(fd);
      return nodeFileOps.close(fd);
    },
    writev: async (fd, bufs, pos) => {
      const { path, ino } = this.#fd(fd);
      this.#check('write', path);
      this.#written(ino, pos, bytesOf(bufs));
      return nodeFileOps.writev(fd, bufs, pos);
    },
    writevSync: (fd, bufs, pos) => {
      const { path, ino } = this.#fd(fd);
      this.#check('write', path);
      this.#written(ino, pos, bytesOf(bufs));
      nodeFileOps.writevSync?.(fd, bufs, pos);
    },
    ftruncate: async (fd, len) => {
      const { path, ino } = this.#fd(fd);
      this.#check('ftruncate', path);
      // the kernel zeroes the rest of the block holding the new end: that block is dirty again
      const block = Math.floor(len / 4096) * 4096;
      ino.dirty = addRange(ino.dirty, block, Number.MAX_SAFE_INTEGER);
      ino.lost = subRange(ino.lost, block, len);
      return nodeFileOps.ftruncate(fd, len);
    },
    fdatasync: async (fd) => {
      const { path, ino } = this.#fd(fd);
      // by fd: the file may be unlinked and still open (a cached fd of a trimmed segment)
      const size = fs.fstatSync(fd).size;
      try {
        this.#check('fdatasync', path);
      } catch (err) {
        for (const [a, b] of ino.dirty) ino.lost = addRange(ino.lost, a, Math.min(b, size));
        ino.dirty = [];
        throw err;
      }
      await nodeFileOps.fdatasync(fd);
      const now = Buffer.alloc(size);
      fs.readSync(fd, now, 0, size, 0);
      for (const [a, b] of ino.lost) {
        for (let i = a; i < Math.min(b, now.length); i++) now[i] = i < ino.durable.length ? (ino.durable[i] as number) : 0;
      }
      ino.durable = now;
      ino.dirty = [];
    },
    fsyncDir: async (path) => {
      this.#check('fsyncDir', path);
      await nodeFileOps.fsyncDir(path);
      this.#entries.set(this.#inode(path), new Map(fs.readdirSync(path).map((name) => [name, this.#inode(join(path, name))])));
    },
    mkdir: async (path) => {
      const existed = fs.existsSync(path);
      await nodeFileOps.mkdir(path);
      if (!existed) this.#inode(path);
    },
    unlink: async (path) => {
      this.#check('unlink', path);
      await nodeFileOps.unlink(path);
      this.#paths.delete(path);
    },
    writeFile: async (path, data) => {
      if (!fs.existsSync(path)) this.#newFile(path);
      const ino = this.#inode(path);
      ino.dirty = addRange(ino.dirty, 0, Number.MAX_SAFE_INTEGER);
      return nodeFileOps.writeFile(path, data);
    },
  };

  /** Writes the disk as a power loss now would leave it to `dst`. */
  image(dst: string): void {
    const build = (dir: Inode, out: string): void => {
      fs.mkdirSync(out, { recursive: true });
      for (const [name, ino] of this.#entries.get(dir) ?? new Map<string, Inode>()) {
        if (ino.kind === 'dir') build(ino, join(out, name));
        else fs.writeFileSync(join(out, name), ino.durable);
      }
    };
    build(this.#paths.get(this.#root) as Inode, dst);
  }
}
