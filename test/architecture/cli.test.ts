/** The `mqlog` binary: usage on no command, a clear refusal of unknown commands. */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

function mqlog(...args: string[]) {
  return spawnSync(process.execPath, ['--import=tsx', MAIN, ...args], { encoding: 'utf8', timeout: 20_000 });
}

test('prints usage and exits 2 without a command', (t) => {
  const r = mqlog();
  t.is(r.status, 2);
  t.regex(r.stderr, /usage: mqlog <command>/);
});

test('refuses an unknown command by name', (t) => {
  const r = mqlog('frobnicate');
  t.is(r.status, 2);
  t.regex(r.stderr, /unknown command 'frobnicate'/);
});
