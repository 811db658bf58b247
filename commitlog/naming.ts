/**
 * File and log names. A log lives in `<root>/<name>/`; its segments are named by their base
 * offset, zero-padded to 20 digits so that lexical order is offset order:
 *
 *   <root>/<name>/00000000000000000000.segment
 *   <root>/<name>/00000000000000000000.index
 *   <root>/<name>/00000000000001048576.segment   ...
 *   <root>/.boot-<boot id>                         the logs written in this boot of the machine (boot-list.ts)
 *   <root>/.clean-shutdown                         the logs the last close left clean (clean-list.ts)
 *
 * Log names are restricted to a portable file-name alphabet; encodeLogName() maps any string
 * (an MQTT topic, say) onto it reversibly. commitlog/ itself knows nothing about topics.
 */
import { CommitLogError } from './errors.js';

export const SEGMENT_SUFFIX = '.segment';
export const INDEX_SUFFIX = '.index';
/**
 * Before the store's clean-shutdown list (clean-list.ts), a clean close left this empty file in
 * the log's directory. Recovery ignores it; the log's next write deletes it.
 */
export const LEGACY_CLEAN_MARKER = 'clean-shutdown';
/**
 * Before the store's boot list (boot-list.ts), each log named the boot it was last written in
 * with an empty file `boot-<boot id>` in its directory. Recovery ignores them; a log's first
 * write of a boot deletes them.
 */
export const LEGACY_BOOT_MARKER_PREFIX = 'boot-';
/** Digits of a base offset in a file name: enough for 2^64. */
export const OFFSET_DIGITS = 20;
/** Longest log name: file systems allow 255 bytes per path component. */
export const LOG_NAME_MAX_BYTES = 255;

const LOG_NAME_RE = /^[A-Za-z0-9_~%=+,@-][A-Za-z0-9._~%=+,@-]*$/;
const SEGMENT_RE = /^(\d{20})\.(segment|index)$/;

/** `00000000000000001234` for 1234. */
export function baseName(base: number): string {
  return String(base).padStart(OFFSET_DIGITS, '0');
}

export function segmentFileName(base: number): string {
  return baseName(base) + SEGMENT_SUFFIX;
}

export function indexFileName(base: number): string {
  return baseName(base) + INDEX_SUFFIX;
}

/** Parses a segment or index file name; null for any other file. */
export function parseFileName(file: string): { base: number; kind: 'segment' | 'index' } | null {
  const m = SEGMENT_RE.exec(file);
  if (m === null) return null;
  const base = Number(m[1]);
  if (!Number.isSafeInteger(base)) return null;
  return { base, kind: m[2] === 'segment' ? 'segment' : 'index' };
}

/** True when `name` can be used as a log name as is. */
export function isValidLogName(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) <= LOG_NAME_MAX_BYTES && LOG_NAME_RE.test(name);
}

/** Throws ERR_COMMITLOG_INVALID_NAME unless `name` is a valid log name. */
export function assertLogName(name: string): void {
  if (!isValidLogName(name)) {
    throw new CommitLogError(
      'ERR_COMMITLOG_INVALID_NAME',
      `log name ${JSON.stringify(name)} must be 1..${LOG_NAME_MAX_BYTES} bytes of [A-Za-z0-9._~%=+,@-], not starting with '.' (see encodeLogName)`,
    );
  }
}

const SAFE_BYTE = new Uint8Array(256);
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~=+,@-') SAFE_BYTE[ch.charCodeAt(0)] = 1;

/**
 * Reversibly maps any string to a valid log name: UTF-8 bytes outside the safe alphabet (and
 * `%`, and a leading `.`) become `%XX`. Throws ERR_COMMITLOG_INVALID_NAME if the result would
 * be longer than LOG_NAME_MAX_BYTES or empty.
 */
export function encodeLogName(value: string): string {
  let out = '';
  const bytes = Buffer.from(value, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] ?? 0;
    if (SAFE_BYTE[b] === 1 && !(i === 0 && b === 0x2e)) out += String.fromCharCode(b);
    else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  assertLogName(out);
  return out;
}

/** Inverse of encodeLogName(). */
export function decodeLogName(name: string): string {
  return Buffer.from(
    name.replace(/%([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
    'latin1',
  ).toString('utf8');
}
