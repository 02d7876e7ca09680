/** Human output: sizes in binary units, short digests, aligned tables. */
import type { Digest } from '@ferry/core';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1536` -> `1.5 KiB`; bytes below 1 KiB stay exact. */
export function humanBytes(n: number): string {
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${UNITS[u]}`;
}

/** The first 12 hex digits of a digest, as docker shows image IDs. */
export function shortDigest(d: Digest | string): string {
  return d.replace(/^sha256:/, '').slice(0, 12);
}

/** `1234567` -> `1,234,567`. */
export function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** `1 file`, `2 files`. */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${count(n)} ${n === 1 ? word : many}`;
}

/** Column alignment: numbers right, text left. */
export type Align = 'left' | 'right';

/**
 * Formats rows (the first is the header) as aligned columns two spaces apart; `align` gives each
 * column's alignment (default left). The last column is not padded.
 */
export function table(rows: string[][], align: Align[] = [], indent = ''): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) =>
    indent +
    r
      .map((c, i) => {
        const last = i === r.length - 1;
        if (align[i] === 'right') return c.padStart(widths[i]!);
        return last ? c : c.padEnd(widths[i]!);
      })
      .join('  ')
      .trimEnd(),
  );
}
