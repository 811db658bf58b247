/**
 * The scale profile: the ramp's shape, the CSV rows (one per pair per step) and the SVG plots
 * (well-formed, one point per row or step), and the progress bar.
 */
import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toCsv } from '../../benches/load/csv.js';
import { ProgressBar } from '../../benches/load/progress.js';
import { CLIENT_COLUMNS, runScale, scalePlan, STEP_COLUMNS } from '../../benches/load/scale.js';
import { niceStep, renderChart } from '../../benches/load/svg.js';
import { startAedes } from './helpers/brokers.js';

/** Checks tags balance and returns the element names in order (a small well-formedness check). */
function svgElements(svg: string): string[] {
  const names: string[] = [];
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)([^>]*?)(\/?)>/g)) {
    const [, close, name = '', , self] = m;
    if (close === '/') {
      if (stack.pop() !== name) throw new Error(`unbalanced </${name}>`);
    } else {
      names.push(name);
      if (self !== '/') stack.push(name);
    }
  }
  if (stack.length > 0) throw new Error(`unclosed ${stack.join(',')}`);
  return names;
}

test('ramps up in steps with more messages per client each step, then back down', (t) => {
  t.deepEqual(scalePlan(3, 2, 10), [
    { phase: 'up', clients: 2, messages: 10 },
    { phase: 'up', clients: 4, messages: 20 },
    { phase: 'up', clients: 6, messages: 30 },
    { phase: 'down', clients: 4, messages: 20 },
    { phase: 'down', clients: 2, messages: 10 },
  ]);
});

test('writes one CSV row per pair per step and SVG plots with one point per row', async (t) => {
  const b = await startAedes(t);
  const dir = await mkdtemp(join(tmpdir(), 'mqlog-scale-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const updates: number[] = [];
  const r = await runScale({ port: b.port, steps: 3, stepClients: 2, stepMessages: 20, qos: 1, drainMs: 3_000, outDir: dir }, { onProgress: (step) => updates.push(step) });
  // steps of 2, 4, 6, 4, 2 pairs
  const rows = 2 + 4 + 6 + 4 + 2;
  const clients = (await readFile(join(dir, 'clients.csv'), 'utf8')).trim().split('\n');
  t.is(clients[0], CLIENT_COLUMNS.join(','));
  t.is(clients.length, rows + 1);
  for (const line of clients.slice(1)) t.is(line.split(',').length, CLIENT_COLUMNS.length);
  t.deepEqual(r.clientRows.map((x) => x.globalId), Array.from({ length: rows }, (_, i) => i));
  t.true(r.clientRows.every((x) => typeof x.medianRttUs === 'number' && x.medianRttUs > 0 && x.lost === 0));
  t.deepEqual(r.clientRows.filter((x) => x.step === 3).map((x) => x.sent), [60, 60, 60, 60, 60, 60]);
  const steps = (await readFile(join(dir, 'steps.csv'), 'utf8')).trim().split('\n');
  t.is(steps[0], STEP_COLUMNS.join(','));
  t.deepEqual(steps.slice(1).map((l) => l.split(',').slice(0, 4).join(',')), ['1,up,2,20', '2,up,4,40', '3,up,6,60', '4,down,4,40', '5,down,2,20']);

  const connect = await readFile(join(dir, 'connect-time.svg'), 'utf8');
  const els = svgElements(connect);
  t.is(els[0], 'svg');
  t.is(els.filter((e) => e === 'circle').length, rows * 2, 'a publisher and a subscriber point per pair');
  t.regex(connect, /client id/);
  t.regex(connect, /setup time, ms/);
  const rtt = await readFile(join(dir, 'median-rtt.svg'), 'utf8');
  t.is(svgElements(rtt).filter((e) => e === 'circle').length, rows);
  const tput = await readFile(join(dir, 'throughput-vs-clients.svg'), 'utf8');
  t.is(svgElements(tput).filter((e) => e === 'circle').length, 5);
  t.is(svgElements(tput).filter((e) => e === 'polyline').length, 2);
  const lat = await readFile(join(dir, 'latency-vs-clients.svg'), 'utf8');
  t.is(svgElements(lat).filter((e) => e === 'circle').length, 10);
  t.true(r.files.some((f) => f.endsWith('scale.json')));
  t.true(updates.length > 0, 'progress reported while it ran');
});

test('charts place points inside the axes and label them', (t) => {
  const svg = renderChart({ title: 'T & <x>', xLabel: 'X', yLabel: 'Y', kind: 'line', series: [{ name: 'a', points: [[0, 0], [10, 5], [20, 40]] }] });
  t.regex(svg, /T &amp; &lt;x&gt;/);
  const cx = [...svg.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)"/g)].map((m) => [Number(m[1]), Number(m[2])]);
  t.is(cx.length, 3);
  for (const [x, y] of cx) t.true((x ?? 0) >= 80 && (x ?? 0) <= 600 && (y ?? 0) >= 40 && (y ?? 0) <= 380);
  t.is(niceStep(40), 10);
  t.is(niceStep(7), 2);
  t.is(niceStep(0), 1);
});

test('CSV quotes fields with commas and quotes and leaves nulls empty', (t) => {
  t.is(toCsv(['a', 'b', 'c'] as const, [{ a: 'x,y', b: 'say "hi"', c: null }, { a: 1.5, b: 2, c: true }]), 'a,b,c\n"x,y","say ""hi""",\n1.500,2,true\n');
});

test('the progress bar redraws one line in place and ends it once', (t) => {
  let out = '';
  const bar = new ProgressBar({ write: (s: string) => (out += s) });
  bar.update('traffic', 50, 100, 'x');
  bar.update('traffic', 100, 100);
  bar.done();
  bar.done();
  t.is(out.split('\r').length, 3);
  t.regex(out, /\[#{12}\.{12}\]\s+50% x/);
  t.regex(out, /\[#{24}\] 100%/);
  t.true(out.endsWith('\n') && !out.endsWith('\n\n'));
});
