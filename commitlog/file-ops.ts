/**
 * The file-system seam: every syscall commitlog/ makes goes through a FileOps object, so tests
 * can inject ENOSPC/EIO (and count calls). The default implementation wraps node:fs callbacks
 * directly in promises (cheaper than fs/promises' FileHandle, and plain fds are what the shared
 * LRU hands out).
 *
 * Invariants: reads and writes are positional (pread/pwritev), never seek + read; writev()
 * resolves only once every byte is written (libuv loops over IOV_MAX chunks and short writes;
 * a short result is retried here so the real errno surfaces). The one exception is append(),
 * for the store's boot list: O_APPEND, so that two writers of one list cannot overwrite each
 * other's lines (boot-list.ts).
 */
import * as fs from 'node:fs';

/** The operations commitlog/ performs on files. Paths are absolute. */
export interface FileOps {
  /** Opens `path` read-write; creates it when `create`. Resolves to an fd. */
  open(path: string, create: boolean): Promise<number>;
  close(fd: number): Promise<void>;
  /** pread: resolves to the number of bytes read. */
  read(fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** pwritev of all of `buffers` at `position`. */
  writev(fd: number, buffers: readonly Buffer[], position: number): Promise<void>;
  /**
   * The same pwritev on the calling thread; throws the errno. Optional: without it every write
   * goes through writev() on the threadpool. Batches up to StoreOptions.syncWriteMaxBytes use
   * it: the kernel copies bytes this thread has just written while they are still in its core's
   * cache, and a threadpool round trip costs an event-loop wake-up and two thread switches.
   */
  writevSync?(fd: number, buffers: readonly Buffer[], position: number): void;
  fdatasync(fd: number): Promise<void>;
  ftruncate(fd: number, length: number): Promise<void>;
  /** Size in bytes of an open file. */
  size(fd: number): Promise<number>;
  /** Size in bytes of the file at `path`; null if it does not exist. */
  stat(path: string): Promise<number | null>;
  /** Names in a directory; [] if it does not exist. */
  readdir(path: string): Promise<string[]>;
  /** Names of the sub-directories and of the regular files in a directory; both [] if it does not exist. */
  readdirKinds(path: string): Promise<{ dirs: string[]; files: string[] }>;
  mkdir(path: string): Promise<void>;
  /** fsync of a directory, so that files created in it survive power loss. */
  fsyncDir(path: string): Promise<void>;
  /** Removes a file; a missing file is not an error. */
  unlink(path: string): Promise<void>;
  /** Creates or replaces a small file. */
  writeFile(path: string, data: Buffer): Promise<void>;
  /** Opens `path` for appending (O_APPEND), creating it if needed. Resolves to an fd. */
  openAppend(path: string): Promise<number>;
  /** One write of `data` at the end of a file openAppend() opened; a short write is an error. */
  append(fd: number, data: Buffer): Promise<void>;
}

const OPEN_RW = fs.constants.O_RDWR;
const OPEN_CREATE = fs.constants.O_RDWR | fs.constants.O_CREAT;
const OPEN_APPEND = fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT;

function totalLength(buffers: readonly Buffer[]): number {
  let n = 0;
  for (const b of buffers) n += b.length;
  return n;
}

/** The part of `buffers` after the first `written` bytes (views, no copy). */
function unwritten(buffers: readonly Buffer[], written: number): Buffer[] {
  const rest: Buffer[] = [];
  let skip = written;
  for (const b of buffers) {
    if (skip >= b.length) skip -= b.length;
    else {
      rest.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
  }
  return rest;
}

function writevAll(fd: number, buffers: readonly Buffer[], position: number, resolve: () => void, reject: (e: unknown) => void): void {
  const want = totalLength(buffers);
  fs.writev(fd, buffers as Buffer[], position, (err, written) => {
    if (err !== null) return reject(err);
    if (written === want) return resolve();
    if (written === 0) return reject(Object.assign(new Error('writev wrote nothing'), { code: 'EIO' }));
    // Short write (libuv stops at the first failing chunk): retry the rest to get its errno.
    writevAll(fd, unwritten(buffers, written), position + written, resolve, reject);
  });
}

/** writevSync: loops over short writes like libuv does for the async call. */
function writevAllSync(fd: number, buffers: readonly Buffer[], position: number): void {
  let rest = buffers as Buffer[];
  let want = totalLength(rest);
  while (want > 0) {
    const written = fs.writevSync(fd, rest, position);
    if (written === want) return;
    if (written === 0) throw Object.assign(new Error('writev wrote nothing'), { code: 'EIO' });
    rest = unwritten(rest, written);
    want -= written;
    position += written;
  }
}

/** FileOps over node:fs. */
export const nodeFileOps: FileOps = {
  open: (path, create) =>
    new Promise((resolve, reject) => fs.open(path, create ? OPEN_CREATE : OPEN_RW, 0o644, (e, fd) => (e ? reject(e) : resolve(fd)))),
  close: (fd) => new Promise((resolve, reject) => fs.close(fd, (e) => (e ? reject(e) : resolve()))),
  read: (fd, buffer, offset, length, position) =>
    new Promise((resolve, reject) => fs.read(fd, buffer, offset, length, position, (e, n) => (e ? reject(e) : resolve(n)))),
  writev: (fd, buffers, position) => new Promise((resolve, reject) => writevAll(fd, buffers, position, resolve, reject)),
  writevSync: writevAllSync,
  fdatasync: (fd) => new Promise((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve()))),
  ftruncate: (fd, length) => new Promise((resolve, reject) => fs.ftruncate(fd, length, (e) => (e ? reject(e) : resolve()))),
  size: (fd) => new Promise((resolve, reject) => fs.fstat(fd, (e, st) => (e ? reject(e) : resolve(st.size)))),
  stat: (path) =>
    new Promise((resolve, reject) =>
      fs.stat(path, (e, st) => (e ? (e.code === 'ENOENT' ? resolve(null) : reject(e)) : resolve(st.size))),
    ),
  readdir: (path) =>
    new Promise((resolve, reject) =>
      fs.readdir(path, (e, names) => (e ? (e.code === 'ENOENT' ? resolve([]) : reject(e)) : resolve(names))),
    ),
  readdirKinds: (path) =>
    new Promise((resolve, reject) =>
      fs.readdir(path, { withFileTypes: true }, (e, ents) => {
        if (e) return e.code === 'ENOENT' ? resolve({ dirs: [], files: [] }) : reject(e);
        const dirs: string[] = [];
        const files: string[] = [];
        for (const d of ents) {
          if (d.isDirectory()) dirs.push(d.name);
          else if (d.isFile()) files.push(d.name);
        }
        resolve({ dirs, files });
      }),
    ),
  mkdir: (path) => new Promise((resolve, reject) => fs.mkdir(path, { recursive: true }, (e) => (e ? reject(e) : resolve()))),
  fsyncDir: (path) =>
    new Promise((resolve, reject) =>
      fs.open(path, fs.constants.O_RDONLY, (e, fd) => {
        if (e) return reject(e);
        fs.fsync(fd, (e2) => fs.close(fd, () => (e2 ? reject(e2) : resolve())));
      }),
    ),
  unlink: (path) => new Promise((resolve, reject) => fs.unlink(path, (e) => (e && e.code !== 'ENOENT' ? reject(e) : resolve()))),
  writeFile: (path, data) => new Promise((resolve, reject) => fs.writeFile(path, data, (e) => (e ? reject(e) : resolve()))),
  openAppend: (path) =>
    new Promise((resolve, reject) => fs.open(path, OPEN_APPEND, 0o644, (e, fd) => (e ? reject(e) : resolve(fd)))),
  append: (fd, data) =>
    new Promise((resolve, reject) =>
      fs.write(fd, data, 0, data.length, null, (e, n) => {
        if (e) return reject(e);
        if (n !== data.length) return reject(Object.assign(new Error(`short append: ${n} of ${data.length} bytes`), { code: 'EIO' }));
        resolve();
      }),
    ),
};
