/**
 * CSV writing for the scale profile (RFC 4180: comma-separated, CRLF-free `\n` line ends,
 * fields quoted only when they contain a comma, quote or newline). Header row first.
 */

export type CsvValue = string | number | boolean | null;

function field(v: CsvValue): string {
  if (v === null) return '';
  const s = typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Renders rows under the given columns; every row must have every column (missing = empty). */
export function toCsv<K extends string>(columns: readonly K[], rows: readonly Record<K, CsvValue>[]): string {
  const lines = [columns.join(',')];
  for (const row of rows) lines.push(columns.map((c) => field(row[c])).join(','));
  return `${lines.join('\n')}\n`;
}
