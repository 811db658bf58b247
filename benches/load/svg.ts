/**
 * Small SVG charts — scatter and line — with axes, ticks, axis labels, a title and a legend,
 * so the scale profile draws its plots without a plotting dependency. Output is a standalone
 * SVG document a browser opens. Every point is one `<circle>` (scatter) or one vertex of a
 * `<polyline>` plus a `<circle>` marker (line), which the tests count.
 */

export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  kind: 'scatter' | 'line';
  series: readonly Series[];
}

const WIDTH_PX = 760;
const HEIGHT_PX = 440;
const MARGIN = { left: 80, right: 160, top: 40, bottom: 60 } as const;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'] as const;
const TICKS = 5;

function esc(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

/** A "nice" step (1, 2 or 5 × 10^k) that splits [0, max] into about `ticks` parts. */
export function niceStep(max: number, ticks = TICKS): number {
  if (!(max > 0)) return 1;
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

/** Renders a chart as an SVG document. Axes start at 0; empty series give empty axes. */
export function renderChart(spec: ChartSpec): string {
  const all = spec.series.flatMap((s) => s.points);
  const xMaxData = Math.max(0, ...all.map((p) => p[0]));
  const yMaxData = Math.max(0, ...all.map((p) => p[1]));
  const xStep = niceStep(xMaxData);
  const yStep = niceStep(yMaxData);
  const xMax = Math.max(xStep, Math.ceil(xMaxData / xStep) * xStep);
  const yMax = Math.max(yStep, Math.ceil(yMaxData / yStep) * yStep);
  const plotW = WIDTH_PX - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT_PX - MARGIN.top - MARGIN.bottom;
  const sx = (x: number): number => MARGIN.left + (x / xMax) * plotW;
  const sy = (y: number): number => MARGIN.top + plotH - (y / yMax) * plotH;
  const r = (v: number): string => v.toFixed(1);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH_PX}" height="${HEIGHT_PX}" viewBox="0 0 ${WIDTH_PX} ${HEIGHT_PX}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${WIDTH_PX}" height="${HEIGHT_PX}" fill="white"/>`);
  out.push(`<text x="${WIDTH_PX / 2}" y="22" text-anchor="middle" font-size="15">${esc(spec.title)}</text>`);
  out.push('<g class="grid" stroke="#ddd">');
  for (let x = 0; x <= xMax + xStep / 2; x += xStep) out.push(`<line x1="${r(sx(x))}" y1="${MARGIN.top}" x2="${r(sx(x))}" y2="${MARGIN.top + plotH}"/>`);
  for (let y = 0; y <= yMax + yStep / 2; y += yStep) out.push(`<line x1="${MARGIN.left}" y1="${r(sy(y))}" x2="${MARGIN.left + plotW}" y2="${r(sy(y))}"/>`);
  out.push('</g>');
  out.push(`<g class="axes" stroke="black"><line x1="${MARGIN.left}" y1="${MARGIN.top + plotH}" x2="${MARGIN.left + plotW}" y2="${MARGIN.top + plotH}"/><line x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${MARGIN.top + plotH}"/></g>`);
  out.push('<g class="ticks">');
  for (let x = 0; x <= xMax + xStep / 2; x += xStep) out.push(`<text x="${r(sx(x))}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${fmt(x)}</text>`);
  for (let y = 0; y <= yMax + yStep / 2; y += yStep) out.push(`<text x="${MARGIN.left - 6}" y="${r(sy(y) + 4)}" text-anchor="end">${fmt(y)}</text>`);
  out.push('</g>');
  out.push(`<text class="x-label" x="${MARGIN.left + plotW / 2}" y="${HEIGHT_PX - 16}" text-anchor="middle">${esc(spec.xLabel)}</text>`);
  out.push(`<text class="y-label" transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`);
  spec.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length] ?? 'black';
    out.push(`<g class="series" data-name="${esc(s.name)}" fill="${color}" stroke="${color}">`);
    if (spec.kind === 'line' && s.points.length > 1) {
      out.push(`<polyline fill="none" stroke-width="1.5" points="${s.points.map(([x, y]) => `${r(sx(x))},${r(sy(y))}`).join(' ')}"/>`);
    }
    for (const [x, y] of s.points) out.push(`<circle cx="${r(sx(x))}" cy="${r(sy(y))}" r="${spec.kind === 'line' ? 3 : 2}"/>`);
    out.push('</g>');
    const ly = MARGIN.top + 10 + i * 18;
    out.push(`<g class="legend"><rect x="${WIDTH_PX - MARGIN.right + 14}" y="${ly - 8}" width="10" height="10" fill="${color}"/><text x="${WIDTH_PX - MARGIN.right + 30}" y="${ly + 1}">${esc(s.name)}</text></g>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
