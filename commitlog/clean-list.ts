/**
 * The store's clean-shutdown list: `<root>/.clean-shutdown`, one log name per line, written by
 * LogStore.close() once every log has closed, naming the logs that closed cleanly (flushed,
 * synced as their durability promises, nothing left to repair) and those still clean from the
 * previous shutdown that this process never opened. The next open of a listed log, in the same
 * boot, checks only its newest chunk instead of its whole newest segment.
 *
 * It replaces a `clean-shutdown` file in every log's directory: closing a store of 10k logs
 * created 10k files (3.2–5.4 s), and each log's first write after the restart unlinked one.
 *
 * Invariants:
 * - the file is read and deleted when the store opens, before any log can be written; a crash
 *   at any later point finds no list, and every log gets the full check. Its deletion is not
 *   synced (nor was the per-log marker's), so a power loss can bring it back: recovery trusts
 *   it only for a log the boot list names (a log last written in this boot).
 * - a name is listed only for a log whose close succeeded; a list torn by a crash during
 *   close only misses names (its last line without a newline is ignored).
 */
import { join } from 'node:path';
import { readWhole, parseNameList } from './boot-list.js';
import { ioError } from './errors.js';
import type { FileOps } from './file-ops.js';

/** The list's file name; log names cannot start with '.', so it never collides with a log. */
export const CLEAN_LIST = '.clean-shutdown';

/**
 * Reads the clean-shutdown list under `root` (if `files`, the root's listing, has one) and
 * deletes it. An unreadable or undeletable list counts as empty: every log is then checked in
 * full, which is slower but safe.
 */
export async function takeCleanList(ops: FileOps, root: string, files: readonly string[]): Promise<Set<string>> {
  if (!files.includes(CLEAN_LIST)) return new Set();
  const path = join(root, CLEAN_LIST);
  try {
    const { names } = parseNameList(await readWhole(ops, path));
    await ops.unlink(path);
    return names;
  } catch {
    await ops.unlink(path).catch(() => undefined);
    return new Set();
  }
}

/** Writes the clean-shutdown list (nothing when `names` is empty). @throws ERR_COMMITLOG_IO */
export async function writeCleanList(ops: FileOps, root: string, names: Iterable<string>): Promise<void> {
  let text = '';
  for (const n of names) text += n + '\n';
  if (text === '') return;
  const path = join(root, CLEAN_LIST);
  try {
    await ops.writeFile(path, Buffer.from(text, 'latin1'));
  } catch (err) {
    throw ioError('write', path, err);
  }
}
