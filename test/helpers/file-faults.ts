/**
 * FileOps wrappers for fault and ordering tests: a disk that fills up on demand, writes to one
 * log that can be held back and released, and fdatasyncs that can be held, then released or
 * failed, to show what waits for what.
 */
import { nodeFileOps, type FileOps } from '../../commitlog/index.js';

/** Real file operations, except that writes fail with ENOSPC while `setFull(true)`. */
export function diskThatFills(): { ops: FileOps; setFull(v: boolean): void } {
  let full = false;
  const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28 });
  const ops: FileOps = {
    ...nodeFileOps,
    writev: (fd, buffers, position) => (full ? Promise.reject(enospc()) : nodeFileOps.writev(fd, buffers, position)),
    writevSync: (fd, buffers, position) => {
      if (full) throw enospc();
      nodeFileOps.writevSync?.(fd, buffers, position);
    },
  };
  return { ops, setFull: (v) => (full = v) };
}

/**
 * Real file operations, except that while `hold(true)`, writes to files whose path contains
 * `/<log>/` wait until `release()` (which also stops holding).
 */
export function holdWritesTo(log: string): { ops: FileOps; hold(on: boolean): void; release(): void } {
  let holding = false;
  const held: Array<() => void> = [];
  const fds = new Set<number>();
  // A synchronous write cannot be held back, so these ops offer none: every write goes through
  // writev below.
  const { writevSync: _sync, ...asyncOps } = nodeFileOps;
  const ops: FileOps = {
    ...asyncOps,
    open: async (path, create) => {
      const fd = await nodeFileOps.open(path, create);
      if (path.includes(`/${log}/`)) fds.add(fd);
      return fd;
    },
    writev: (fd, buffers, position) =>
      new Promise<void>((resolve, reject) => {
        const go = () => nodeFileOps.writev(fd, buffers, position).then(resolve, reject);
        if (holding && fds.has(fd)) held.push(go);
        else go();
      }),
  };
  return {
    ops,
    hold: (on) => (holding = on),
    release: () => {
      holding = false;
      for (const go of held.splice(0)) go();
    },
  };
}

/** Real file operations whose fdatasyncs can be held and then released or failed. */
export function syncGate(): { ops: FileOps; hold(): void; release(failWith?: string): void; held(): number } {
  let holding = false;
  const waiting: Array<{ fd: number; resolve: () => void; reject: (e: Error) => void }> = [];
  const ops: FileOps = {
    ...nodeFileOps,
    fdatasync: (fd) => (holding ? new Promise<void>((resolve, reject) => waiting.push({ fd, resolve, reject })) : nodeFileOps.fdatasync(fd)),
  };
  return {
    ops,
    hold: () => (holding = true),
    held: () => waiting.length,
    release(failWith) {
      holding = false;
      for (const w of waiting.splice(0)) {
        if (failWith !== undefined) w.reject(Object.assign(new Error(`injected ${failWith}`), { code: failWith }));
        else nodeFileOps.fdatasync(w.fd).then(w.resolve, w.reject);
      }
    },
  };
}
