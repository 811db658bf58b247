/**
 * One broker per data directory. Two brokers writing the same logs would each append at the
 * positions their own in-memory state says are free, overwriting the other's acknowledged
 * records and index entries; neither would notice until a reader hit a bad checksum.
 *
 * Mechanisms (chosen by platform):
 * - 'socket' (Linux): the broker binds an abstract Unix socket named after the directory's
 *   device and inode numbers. The kernel holds it and frees it when the process exits, however
 *   it exits (kill -9 included), so a crashed broker never leaves a stale lock behind; the bind
 *   is atomic, so two brokers starting together cannot both win. A directory reached through a
 *   symlink or a bind mount has the same device and inode, so it is the same lock. Abstract
 *   sockets are per network namespace: two containers with separate network namespaces sharing
 *   one volume do not see each other's lock.
 * - 'pidfile' (elsewhere): `.lock` is created exclusively (written in full under another name,
 *   then hard-linked into place, so nobody ever reads a half-written one). A `.lock` whose process
 *   is gone (same host, no such pid) is stale and taken over; one naming another host cannot be
 *   checked and is refused, with the path to delete if that broker is gone.
 *
 * Either way `.lock` in the directory says who holds it (pid, host, since, mechanism), for the
 * refusal's message and for operators; under 'socket' it is informational only, and a stale one
 * left by a crash is simply replaced. Log names cannot start with '.', so no log collides with it.
 */
import { link, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { BrokerError } from '../errors.js';

/** The file in the data directory that names the lock's holder. */
export const LOCK_FILE = '.lock';

export type DataDirLockMechanism = 'socket' | 'pidfile';

/** What `.lock` holds (one JSON line). */
export interface LockHolder {
  pid: number;
  host: string;
  /** ISO 8601 time the lock was taken. */
  since: string;
  mechanism: DataDirLockMechanism;
}

/** The platform's mechanism: the kernel-held socket where abstract sockets exist. */
export function defaultLockMechanism(): DataDirLockMechanism {
  return process.platform === 'linux' ? 'socket' : 'pidfile';
}

/** A held lock on a data directory; release() gives it back (idempotent). */
export class DataDirLock {
  readonly dir: string;
  readonly mechanism: DataDirLockMechanism;
  readonly #server: Server | null;
  readonly #holder: LockHolder;
  #released: Promise<void> | null = null;

  private constructor(dir: string, mechanism: DataDirLockMechanism, server: Server | null, holder: LockHolder) {
    this.dir = dir;
    this.mechanism = mechanism;
    this.#server = server;
    this.#holder = holder;
  }

  /**
   * Takes the lock on `dir` (which must exist).
   * @throws BrokerError ERR_DATA_DIR_LOCKED (another process holds it; the message names it),
   *   ERR_DATA_DIR_UNWRITABLE (the lock cannot be taken for another reason)
   */
  static async acquire(dir: string, mechanism: DataDirLockMechanism = defaultLockMechanism()): Promise<DataDirLock> {
    const holder: LockHolder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), mechanism };
    if (mechanism === 'socket') {
      const server = await bindAbstract(dir);
      if (server === null) throw lockedError(dir, await readHolder(dir));
      try {
        // replaces whatever a crashed holder left: the socket, not this file, is the lock
        const tmp = tmpName(dir);
        await writeFile(tmp, `${JSON.stringify(holder)}\n`);
        await rename(tmp, join(dir, LOCK_FILE));
      } catch (err) {
        server.close();
        throw unwritable(dir, err);
      }
      return new DataDirLock(dir, mechanism, server, holder);
    }
    await takePidFile(dir, holder);
    return new DataDirLock(dir, mechanism, null, holder);
  }

  /** Gives the lock back: removes `.lock` if it still names this holder, then frees the socket. */
  release(): Promise<void> {
    this.#released ??= this.#release();
    return this.#released;
  }

  async #release(): Promise<void> {
    const now = await readHolder(this.dir);
    if (now !== null && now.pid === this.#holder.pid && now.host === this.#holder.host && now.since === this.#holder.since) {
      await unlink(join(this.dir, LOCK_FILE)).catch(() => undefined);
    }
    const server = this.#server;
    if (server !== null) await new Promise<void>((r) => server.close(() => r()));
  }
}

/** Binds the directory's abstract socket; null when another process has it bound. */
async function bindAbstract(dir: string): Promise<Server | null> {
  let name: string;
  try {
    const st = await stat(dir, { bigint: true });
    name = `\0mqlog-data-dir/${st.dev}/${st.ino}`;
  } catch (err) {
    throw unwritable(dir, err);
  }
  // a connection only ever comes from a curious operator (or ss -x): close it
  const server = createServer((socket) => socket.destroy());
  return new Promise<Server | null>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') resolve(null);
      else reject(unwritable(dir, err));
    });
    server.listen({ path: name, exclusive: true }, () => {
      // the lock must not keep the process alive by itself
      server.unref();
      resolve(server);
    });
  });
}

/** 'pidfile': creates `.lock` atomically, taking over one whose process is gone (at most once). */
async function takePidFile(dir: string, holder: LockHolder): Promise<void> {
  const path = join(dir, LOCK_FILE);
  const tmp = tmpName(dir);
  try {
    await writeFile(tmp, `${JSON.stringify(holder)}\n`);
  } catch (err) {
    throw unwritable(dir, err);
  }
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(tmp, path);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw unwritable(dir, err);
      }
      const current = await readHolder(dir);
      if (attempt > 0 || (current !== null && holderMayLive(current))) throw lockedError(dir, current);
      // stale (its process is gone) or unreadable (not written by this module's link): take it over
      await unlink(path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw unwritable(dir, err);
      });
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** A name of our own to write `.lock` under first (unique even for two brokers in one process). */
function tmpName(dir: string): string {
  return join(dir, `${LOCK_FILE}.${process.pid}.${randomBytes(4).toString('hex')}`);
}

/** Whether the holder's process may still run: always for another host, which cannot be checked. */
function holderMayLive(h: LockHolder): boolean {
  if (h.host !== hostname()) return true;
  if (h.pid === process.pid) return true;
  try {
    process.kill(h.pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `.lock`'s holder, or null when it is missing or unreadable. */
export async function readHolder(dir: string): Promise<LockHolder | null> {
  let text: string;
  try {
    text = await readFile(join(dir, LOCK_FILE), 'utf8');
  } catch {
    return null;
  }
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (typeof v.pid !== 'number' || typeof v.host !== 'string' || typeof v.since !== 'string') return null;
    return { pid: v.pid, host: v.host, since: v.since, mechanism: v.mechanism === 'pidfile' ? 'pidfile' : 'socket' };
  } catch {
    return null;
  }
}

function lockedError(dir: string, h: LockHolder | null): BrokerError {
  const who = h === null ? 'another process' : `another mqlog (pid ${h.pid} on ${h.host}, since ${h.since})`;
  const hint =
    h !== null && h.mechanism === 'pidfile' && h.host !== hostname()
      ? `; if no broker runs on ${h.host} any more, delete ${join(dir, LOCK_FILE)}`
      : '; stop it first or choose another --data-dir';
  return new BrokerError('ERR_DATA_DIR_LOCKED', `data directory ${dir} is in use by ${who}${hint}`);
}

function unwritable(dir: string, err: unknown): BrokerError {
  return new BrokerError('ERR_DATA_DIR_UNWRITABLE', `cannot lock data directory ${dir}: ${(err as Error).message}`, { cause: err });
}
