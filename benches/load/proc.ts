/**
 * Another process's CPU time and resident memory, read from Linux /proc. Used to charge the
 * broker's CPU to the messages it delivered — the figure that stays fair when the load client
 * saturates first. Linux only; elsewhere the reads return null.
 *
 * CPU time comes from `/proc/PID/task/<tid>/schedstat` (first field: ns on CPU, per thread,
 * summed over the threads alive at the time) when the kernel has schedstats, else from
 * `/proc/PID/stat` fields 14 and 15 (utime + stime in clock ticks of 10 ms — too coarse for
 * runs where the broker uses only tens of milliseconds). RSS is VmRSS of `/proc/PID/status`.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second when `getconf CLK_TCK` cannot be run (Linux's usual value). */
const CLK_TCK_FALLBACK = 100;
let clkTck: number | null = null;

/** Clock ticks per second (`getconf CLK_TCK`), asked once. */
export function clockTicksPerSecond(): number {
  if (clkTck === null) {
    try {
      const v = Number.parseInt(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim(), 10);
      clkTck = Number.isInteger(v) && v > 0 ? v : CLK_TCK_FALLBACK;
    } catch {
      clkTck = CLK_TCK_FALLBACK;
    }
  }
  return clkTck;
}

/** One reading of a process. */
export interface ProcSample {
  /** CPU time of all its threads, in µs. */
  cpuUs: number;
  /** Where cpuUs came from, and so its resolution: schedstat (ns) or stat (clock ticks). */
  cpuSource: 'schedstat' | 'stat';
  /** Resident set size in bytes. */
  rssBytes: number;
}

/** Sum of the first schedstat field (ns on CPU) over the process's threads, or null. */
export function schedstatCpuNs(pid: number): number | null {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // The thread exited between the listing and the read.
      }
    }
    return Number.isFinite(ns) && ns > 0 ? ns : null;
  } catch {
    return null;
  }
}

/** Parses the text of /proc/PID/stat; returns utime + stime in ticks. */
export function parseStatTicks(stat: string): number {
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error('unexpected /proc/PID/stat format');
  return utime + stime;
}

/** Parses VmRSS out of /proc/PID/status text, in bytes (0 when absent). */
export function parseVmRssBytes(status: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m === null ? 0 : Number(m[1]) * 1024;
}

/** Reads CPU time and RSS of `pid`, or null when the process or /proc is not there. */
export function sampleProcess(pid: number): ProcSample | null {
  try {
    const ticks = parseStatTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    const rssBytes = parseVmRssBytes(readFileSync(`/proc/${pid}/status`, 'utf8'));
    const ns = schedstatCpuNs(pid);
    if (ns !== null) return { cpuUs: ns / 1000, cpuSource: 'schedstat', rssBytes };
    return { cpuUs: (ticks * 1e6) / clockTicksPerSecond(), cpuSource: 'stat', rssBytes };
  } catch {
    return null;
  }
}
