/**
 * The store's clean-shutdown list: `<root>/.clean-shutdown`, a line per log, written by
 * LogStore.close() once every log has closed. It names the logs that closed cleanly (flushed,
 * synced as their durability promises, nothing left to repair) and those still clean from the
 * previous shutdown that this process never opened, each with a stamp of its newest segment as
 * the close left it: base offset, segment bytes, index bytes. The next open of a listed log, in
 * the same boot and with its newest segment still exactly that size, checks only the newest
 * chunk instead of the whole newest segment.
 *
 * It replaces a `clean-shutdown` file in every log's directory: closing a store of 10k logs
 * created 10k files (0.6–5 s here), and each log's first write after the restart unlinked one.
 *
 * Invariants:
 * - the file is read and deleted when the store opens, before any log can be written, so a
 *   crash at any later point normally finds no list. Nothing depends on that alone: an entry
 *   is trusted only when its stamp matches the files, so a list that could not be deleted, a
 *   stale one another store on the same root wrote, or one a power loss brought back cannot
 *   vouch for a log written since. (A write always grows the newest segment or starts a new
 *   one; a repair truncates back to what was acknowledged before it.) After a reboot the boot
 *   list does not name the log, and the entry is not trusted either.
 * - each line carries its CRC-32 (boot-list.ts), so a torn or garbled list only misses names.
 */
import { join } from 'node:path';
import { encodeLine, parseLines, readWhole } from './boot-list.js';
import { ioError } from './errors.js';
import type { FileOps } from './file-ops.js';

/** The list's file name; log names cannot start with '.', so it never collides with a log. */
export const CLEAN_LIST = '.clean-shutdown';

/** A log's newest segment as a clean close left it. */
export interface CleanStamp {
  readonly base: number;
  readonly segBytes: number;
  readonly idxBytes: number;
}

/**
 * Reads the clean-shutdown list under `root` (if `files`, the root's listing, has one) and
 * deletes it. An unreadable list counts as empty: every log is then checked in full, which is
 * slower but safe; an undeletable one is harmless (see the invariants).
 */
export async function takeCleanList(ops: FileOps, root: string, files: readonly string[]): Promise<Map<string, CleanStamp>> {
  const stamps = new Map<string, CleanStamp>();
  if (!files.includes(CLEAN_LIST)) return stamps;
  const path = join(root, CLEAN_LIST);
  const text = await readWhole(ops, path).catch(() => Buffer.alloc(0));
  for (const f of parseLines(text)) {
    if (f.length !== 4) continue;
    const [name, base, segBytes, idxBytes] = [f[0] as string, Number(f[1]), Number(f[2]), Number(f[3])];
    if ([base, segBytes, idxBytes].every(Number.isSafeInteger)) stamps.set(name, { base, segBytes, idxBytes });
  }
  await ops.unlink(path).catch(() => undefined);
  return stamps;
}

/** Writes the clean-shutdown list (nothing when `stamps` is empty). @throws ERR_COMMITLOG_IO */
export async function writeCleanList(ops: FileOps, root: string, stamps: ReadonlyMap<string, CleanStamp>): Promise<void> {
  let text = '';
  for (const [name, s] of stamps) text += encodeLine([name, String(s.base), String(s.segBytes), String(s.idxBytes)]);
  if (text === '') return;
  const path = join(root, CLEAN_LIST);
  try {
    await ops.writeFile(path, Buffer.from(text, 'latin1'));
  } catch (err) {
    throw ioError('write', path, err);
  }
}
