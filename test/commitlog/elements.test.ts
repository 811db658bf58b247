/**
 * Elements kinds (commitlog/elements.ts): the arrays a new log or acknowledgement queue starts
 * with already have the kind their values need, so the code optimized on older instances keeps
 * running on a new one. Checked two ways: with V8's own predicates, and by tracing the
 * deoptimizations a new log causes after two logs made the code hot.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers.js';

const ELEMENTS = new URL('../../commitlog/elements.ts', import.meta.url).href;
const FIXTURE = fileURLToPath(new URL('./fixtures/new-log-deopt.ts', import.meta.url));

/** Runs node with `flags` and returns its stdout (stderr on failure). */
function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import=tsx', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${String(code)}: ${err}`))));
  });
}

test('the empty arrays have the kinds their values need, however often and in whatever order they are made', async (t) => {
  // %-natives are plain JavaScript under --allow-natives-syntax; the module is imported as is
  const script = `
    const { emptyNumberArray, emptyObjectArray } = await import(${JSON.stringify(ELEMENTS)});
    const kinds = [];
    for (let i = 0; i < 4; i++) {
      const objects = emptyObjectArray();
      const numbers = emptyNumberArray();
      kinds.push([objects.length, numbers.length, %HasObjectElements(objects), %HasDoubleElements(numbers)]);
      objects.push({}, undefined);
      numbers.push(2 ** 40, 1);
    }
    kinds.push(%HasSmiElements([]));
    process.stdout.write(JSON.stringify(kinds));`;
  const kinds = JSON.parse(await run(['--allow-natives-syntax', '--input-type=module', '-e', script])) as unknown[];
  for (let i = 0; i < 4; i++) t.deepEqual(kinds[i], [0, 0, true, true], `round ${i}`);
  // the baseline the helpers exist for: a literal [] starts as small integers
  t.is(kinds[4], true);
});

test('a new log deoptimizes none of the commit log code that older logs made hot', async (t) => {
  t.timeout(30_000);
  const dir = await tempDir(t);
  const out = await run(['--trace-deopt-verbose', FIXTURE, dir]);
  const marker = out.indexOf('=== new log');
  t.true(marker >= 0, 'the fixture ran to the new log');
  // each bailout line names its reason, and a later line the source position it deoptimized
  // at. A first run through a branch no log had taken yet ("Insufficient type feedback") is
  // not what this is about and depends on timing; a map or a representation the older logs'
  // code did not expect ("wrong map", "not a Smi") is.
  const ours: string[] = [];
  let reason = '';
  for (const line of out.slice(marker).split('\n')) {
    const bailout = /reason: ([^)]*)\)/.exec(line);
    if (line.startsWith('[bailout') && bailout !== null) reason = bailout[1] as string;
    else if (line.includes(';;; deoptimize at') && /commitlog\/[a-z-]+\.ts/.test(line) && !reason.startsWith('Insufficient type feedback')) {
      ours.push(`${reason}: ${line.trim()}`);
    }
  }
  t.deepEqual(ours, []);
});
