/**
 * The open-file limit the load needs. Node has no setrlimit; Node itself raises its soft
 * RLIMIT_NOFILE to the hard limit at startup, but a parent may have lowered it since or the
 * process may be started another way, so the tool checks /proc/self/limits and, when the run
 * needs more descriptors than the soft limit, raises it with `prlimit --pid <self>` (util-linux).
 * Past the hard limit it cannot go: it says how to raise that one instead.
 */
import { execFileSync } from 'node:child_process';
import { readFdLimits, type FdLimits } from '../../src/server/fd-limits.js';

export { parseFdLimits, readFdLimits, type FdLimits } from '../../src/server/fd-limits.js';

/** Descriptors the process uses besides client sockets (stdio, tsx, workers, /proc reads). */
export const FD_OVERHEAD = 64;

/** What the fd check did, as reported in the figures. */
export interface FdLimitReport {
  needed: number;
  soft: number;
  hard: number;
  /** The soft limit before it was raised, or null when it was not. */
  raisedFrom: number | null;
  /** How to raise the hard limit, when the run needs more than it. */
  advice: string | null;
}

/** Advice for a hard limit that is too low. */
export function hardLimitAdvice(needed: number, hard: number): string {
  return (
    `this run needs about ${needed} file descriptors but the hard limit is ${hard}; ` +
    `raise it as root (e.g. 'prlimit --pid $$ --nofile=${needed}:${needed}' then start mqlog bench from that shell, ` +
    `'ulimit -Hn ${needed}' in a root shell, LimitNOFILE= in a systemd unit, or 'nofile' in /etc/security/limits.conf)`
  );
}

/**
 * Makes sure the soft limit covers `needed` descriptors, raising it (up to the hard limit)
 * with prlimit on this process when it does not. Never throws.
 */
export function ensureFdLimit(needed: number, raise: boolean): FdLimitReport {
  const before = readFdLimits();
  if (before === null) return { needed, soft: Infinity, hard: Infinity, raisedFrom: null, advice: null };
  let { soft } = before;
  const { hard } = before;
  let raisedFrom: number | null = null;
  if (raise && soft < needed && soft < hard) {
    const target = Number.isFinite(hard) ? String(hard) : 'unlimited';
    try {
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${target}:`], { stdio: 'ignore' });
      const after = readFdLimits();
      if (after !== null && after.soft > soft) {
        raisedFrom = soft;
        soft = after.soft;
      }
    } catch {
      // prlimit missing or refused: the report below says what the limit is.
    }
  }
  return { needed, soft, hard, raisedFrom, advice: needed > hard ? hardLimitAdvice(needed, hard) : null };
}
