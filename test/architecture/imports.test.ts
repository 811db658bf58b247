/**
 * Keeps the dependency arrows honest: src → router → commitlog, never back.
 * commitlog/ imports node: built-ins only; router/ imports commitlog/ and node: built-ins only.
 */
import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const IMPORT_RE = /(?:^|\n)\s*(?:import|export)[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(join(ROOT, dir), { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

async function importsOf(file: string): Promise<string[]> {
  const text = await readFile(join(ROOT, file), 'utf8');
  return [...text.matchAll(IMPORT_RE)].map((m) => m[1] ?? m[2] ?? '');
}

/** Resolves a relative specifier to the top-level folder it lands in ('' for bare specifiers). */
function targetFolder(file: string, spec: string): string {
  if (!spec.startsWith('.')) return '';
  const abs = resolve(join(ROOT, file, '..'), spec);
  return relative(ROOT, abs).split(/[\\/]/)[0] ?? '';
}

test('commitlog/ imports only node: built-ins and itself', async (t) => {
  for (const file of await sourceFiles('commitlog')) {
    for (const spec of await importsOf(file)) {
      const ok = spec.startsWith('node:') || targetFolder(file, spec) === 'commitlog';
      t.true(ok, `${file} imports ${spec}`);
    }
  }
  t.pass();
});

test('router/ imports only commitlog/, node: built-ins and itself', async (t) => {
  const files = await sourceFiles('router');
  for (const file of files) {
    for (const spec of await importsOf(file)) {
      const folder = targetFolder(file, spec);
      const ok = spec.startsWith('node:') || folder === 'router' || folder === 'commitlog';
      t.true(ok, `${file} imports ${spec}`);
    }
  }
  t.pass();
});

test('nothing below commitlog/ or router/ imports src/', async (t) => {
  for (const dir of ['commitlog', 'router']) {
    for (const file of await sourceFiles(dir)) {
      for (const spec of await importsOf(file)) t.not(targetFolder(file, spec), 'src', `${file} imports ${spec}`);
    }
  }
  t.pass();
});
