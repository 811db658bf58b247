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
 *   sockets are per network namespace and per machine: two containers with separate network
 *   namespaces sharing one volume, or two hosts sharing it over NFS, do not see each other's lock.
 *   The name is padded with NULs to the whole sun_path (108 bytes): libuv before 1.48 (Node 20)
 *   binds abstract names padded so, later ones (Node 22) bind only the bytes given, and a lock
 *   must be the same address whichever Node runs the broker.
 * - 'pidfile' (elsewhere): `.lock` is created exclusively (written in full under another name,
 *   then hard-linked into place, so nobody ever reads a half-written one). A `.lock` whose process
 *   is gone (same host, no such pid) is stale and taken over, one taker at a time: the taker holds
 *   the directory `.lock.takeover` (mkdir is atomic) while it checks the file is still the stale
 *   one and replaces it, so two starts that both judged it stale cannot both win. A guard left by
 *   a taker killed in those few microseconds is removed once it is GUARD_STALE_MS old. A `.lock`
 *   naming another host cannot be checked and is refused, with the path to delete if that broker
 *   is gone.
 *
 * Either way `.lock` in the directory says who holds it (pid, host, since, mechanism), for the
 * refusal's message and for operators; under 'socket' it is informational only, and a stale one
 * left by a crash is simply replaced. Log names cannot start with '.', so no log collides with it.
 */
import { link, mkdir, readdir, readFile, rename, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BrokerError } from '../errors.js';

/** The file in the data directory that names the lock's holder. */
export const LOCK_FILE = '.lock';
/** 'pidfile': the directory a taker of a stale `.lock` holds while it replaces it. */
const GUARD_DIR = '.lock.takeover';
/** 'pidfile': a guard this old was left by a taker that died in it. */
const GUARD_STALE_MS = 10_000;
/** 'pidfile': the pause before a start looks again while another taker holds the guard. */
const TAKEOVER_WAIT_MS = 20;
/** 'pidfile': looks at `.lock` before a start gives up (with the pauses, ~2 s of waiting). */
const TAKEOVER_ATTEMPTS = 100;
/** Bytes of sun_path on Linux: the abstract name fills it (see the header). */
const SUN_PATH_BYTES = 108;
/** Temporary names this module writes `.lock` under: `.lock.<pid>.<8 hex digits>`. */
const TMP_RE = /^\.lock\.(\d+)\.[0-9a-f]{8}$/;

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
      if (server === null) {
        // the winner may not have rewritten .lock yet: never name a holder known to be dead
        const h = await readHolder(dir);
        throw lockedError(dir, h !== null && holderMayLive(h) ? h : null);
      }
      // replaces whatever a crashed holder left: the socket, not this file, is the lock
      const tmp = tmpName(dir);
      try {
        await writeFile(tmp, `${JSON.stringify(holder)}\n`);
        await rename(tmp, join(dir, LOCK_FILE));
      } catch (err) {
        await unlink(tmp).catch(() => undefined);
        await new Promise<void>((r) => server.close(() => r()));
        throw unwritable(dir, err);
      }
      await sweepTemps(dir);
      return new DataDirLock(dir, mechanism, server, holder);
    }
    await takePidFile(dir, holder);
    await sweepTemps(dir);
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

/** The abstract socket name of `dir`'s lock: its device and inode, NUL-padded to the whole sun_path. */
export async function abstractName(dir: string): Promise<string> {
  const st = await stat(dir, { bigint: true });
  return `\0mqlog-data-dir/${st.dev}/${st.ino}`.padEnd(SUN_PATH_BYTES, '\0');
}

/** Binds the directory's abstract socket; null when another process has it bound. */
async function bindAbstract(dir: string): Promise<Server | null> {
  let name: string;
  try {
    name = await abstractName(dir);
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

/** 'pidfile': creates `.lock` atomically, taking over one whose process is gone. */
async function takePidFile(dir: string, holder: LockHolder): Promise<void> {
  const path = join(dir, LOCK_FILE);
  const tmp = tmpName(dir);
  try {
    try {
      await writeFile(tmp, `${JSON.stringify(holder)}\n`);
    } catch (err) {
      throw unwritable(dir, err);
    }
    for (let attempt = 0; ; attempt++) {
      if (await linkNew(dir, tmp, path)) return;
      const seen = await readText(path);
      if (seen === null) {
        // its holder released it meanwhile (try again), or it is not a readable file
        if (attempt >= TAKEOVER_ATTEMPTS) throw unwritable(dir, new Error(`${path} exists but cannot be read`));
        continue;
      }
      const current = parseHolder(seen);
      if ((current !== null && holderMayLive(current)) || attempt >= TAKEOVER_ATTEMPTS) throw lockedError(dir, current);
      // stale (its process is gone) or unreadable (a torn write can only come from elsewhere):
      // replace it, one taker at a time, and only if it is still the file judged stale
      if (!(await takeGuard(dir))) {
        await sleep(TAKEOVER_WAIT_MS);
        continue;
      }
      try {
        if ((await readText(path)) !== seen) continue; // another taker replaced it: judge again
        await unlink(path).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw unwritable(dir, err);
        });
        if (await linkNew(dir, tmp, path)) return;
        // a start that found no .lock at all linked first: it holds the lock
        throw lockedError(dir, await readHolder(dir));
      } finally {
        await rmdir(join(dir, GUARD_DIR)).catch(() => undefined);
      }
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** link(), false when `to` exists. */
async function linkNew(dir: string, from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw unwritable(dir, err);
  }
}

/** Creates the take-over guard; false when another taker holds it (a stale one is removed first). */
async function takeGuard(dir: string): Promise<boolean> {
  const guard = join(dir, GUARD_DIR);
  try {
    await mkdir(guard);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw unwritable(dir, err);
  }
  const st = await stat(guard).catch(() => null);
  if (st !== null && Date.now() - st.mtimeMs > GUARD_STALE_MS) await rmdir(guard).catch(() => undefined);
  return false;
}

/** Removes temporary `.lock` files of processes that died before they renamed or linked them. */
async function sweepTemps(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const m = TMP_RE.exec(name);
    if (m === null) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || pidAlive(pid)) continue;
    await unlink(join(dir, name)).catch(() => undefined);
  }
}

/** A name of our own to write `.lock` under first (unique even for two brokers in one process). */
function tmpName(dir: string): string {
  return join(dir, `${LOCK_FILE}.${process.pid}.${randomBytes(4).toString('hex')}`);
}

/** Whether the holder's process may still run: always for another host, which cannot be checked. */
function holderMayLive(h: LockHolder): boolean {
  if (h.host !== hostname()) return true;
  return h.pid === process.pid || pidAlive(h.pid);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

/** `.lock`'s holder, or null when it is missing or unreadable. */
export async function readHolder(dir: string): Promise<LockHolder | null> {
  const text = await readText(join(dir, LOCK_FILE));
  return text === null ? null : parseHolder(text);
}

function parseHolder(text: string): LockHolder | null {
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
