/**
 * The process's open-file limit (RLIMIT_NOFILE, read from /proc/self/limits: Node has no
 * getrlimit) and the share of it the commit logs get by default. Every active topic log holds
 * two descriptors (segment and index) in the store's LRU; when active topics need more than the
 * LRU holds, every write reopens and closes files, which doubled the broker's CPU per message
 * with 1,000 active topics against 1024 descriptors (notes/2026-11-23-fd-budget.md).
 */
import { readFileSync } from 'node:fs';

/** Soft and hard RLIMIT_NOFILE; Infinity for "unlimited". */
export interface FdLimits {
  soft: number;
  hard: number;
}

/** Parses the "Max open files" line of /proc/PID/limits text. */
export function parseFdLimits(limits: string): FdLimits {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  if (m === null) throw new Error('no "Max open files" line in limits');
  const num = (s: string | undefined): number => (s === 'unlimited' ? Infinity : Number(s));
  return { soft: num(m[1]), hard: num(m[2]) };
}

/** This process's limits, or null off Linux. */
export function readFdLimits(): FdLimits | null {
  try {
    return parseFdLimits(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return null;
  }
}

/** Descriptors the logs get when the limit is unknown (the commit log's own default). */
export const LOG_FDS_UNKNOWN_LIMIT = 1024;
/** The most the logs get by default, however high (or unlimited) the limit: 131,072 active topics. */
export const LOG_FDS_MAX_DEFAULT = 262_144;

/**
 * The commit logs' default share of the open-file limit: half the soft limit (Node raises it to
 * the hard limit at startup), the other half left to client sockets and everything else.
 */
export function defaultLogFds(limits: FdLimits | null): number {
  if (limits === null || !(limits.soft > 0)) return LOG_FDS_UNKNOWN_LIMIT;
  return Math.max(64, Math.min(LOG_FDS_MAX_DEFAULT, Math.floor(limits.soft / 2)));
}
