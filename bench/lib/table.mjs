// Formatting figures and printing aligned tables. Sizes are decimal: 1 MB = 10^6 bytes.

/** Bytes as B / kB / MB / GB (decimal). */
export function bytes(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '-';
  if (n < 1e3) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(n < 1e7 ? 2 : 1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

/** Throughput in MB/s. */
export function rate(byteCount, seconds) {
  if (!seconds) return '-';
  return `${(byteCount / 1e6 / seconds).toFixed(1)} MB/s`;
}

export function secs(s) {
  if (s === undefined || s === null) return '-';
  return s < 10 ? `${s.toFixed(2)} s` : `${s.toFixed(1)} s`;
}

/** A ratio a/b shown with enough digits to be read when tiny. */
export function ratio(a, b) {
  if (!b || a === undefined || b === undefined) return '-';
  const r = a / b;
  if (r >= 100) return `${r.toFixed(0)}x`;
  if (r >= 1) return `${r.toFixed(2)}x`;
  if (r >= 0.01) return `${(r * 100).toFixed(1)}%`;
  return `${(r * 100).toFixed(3)}%`;
}

/** A target check mark. */
export function check(ok) {
  return ok === undefined ? '?' : ok ? 'MET' : 'MISSED';
}

/**
 * Prints a table: `columns` is a list of headers, `rows` a list of arrays of cells (strings).
 * The first column is left-aligned, the rest right-aligned.
 */
export function printTable(title, columns, rows, notes = []) {
  const all = [columns, ...rows].map((r) => r.map((c) => String(c ?? '-')));
  const widths = columns.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const out = [`\n== ${title}`, line(all[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(line), ...notes.map((n) => `  ${n}`)];
  console.log(out.join('\n'));
}
