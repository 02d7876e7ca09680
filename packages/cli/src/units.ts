/**
 * Option values with units: sizes (`64KiB`), link rates (`64kbit`, `100kB/s`), expiry times
 * (`90d`, `2026-12-31`, unix seconds), and the human forms of rates and durations.
 */
import { usage } from './errors.js';

const BINARY: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
const DECIMAL: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9 };

/**
 * A byte size: `65536`, `64K`, `64KiB`, `64k`, `1MiB`, `1M`, `1G`; `kB`/`MB`/`GB` are decimal.
 * `option` names the flag in the error.
 */
export function parseSize(text: string, option: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(?:([kmg])(i?)(b?)|(b?))$/i.exec(text.trim());
  if (m) {
    const prefix = (m[2] ?? '').toLowerCase();
    const decimal = prefix !== '' && m[3] === '' && m[4] === 'B';
    const n = Number(m[1]) * (decimal ? DECIMAL : BINARY)[prefix]!;
    if (Number.isSafeInteger(n)) return n;
  }
  throw usage(`${option} takes a size such as 65536, 64KiB or 1MiB, got ${JSON.stringify(text)}`);
}

/**
 * A link rate in bits per second: `9600bit`, `64kbit`, `1mbit`, `2Mbit/s`, `64kbps`, `100kB/s`
 * or `100kBps` (bytes), `1MiB/s`. Prefixes are decimal (as link rates are) unless written `Ki`/`Mi`/`Gi`; a bare
 * number is bits per second.
 */
export function parseRate(text: string, option = '--link'): number {
  const m = /^(\d+(?:\.\d+)?)\s*(?:([kmg])(i?))?(bits?|bps|b|B)?(\/s|ps)?$/i.exec(text.trim());
  if (m && !(m[4] === 'bps' && m[5] !== undefined)) {
    const prefix = (m[2] ?? '').toLowerCase();
    const scale = (m[3] ? BINARY : DECIMAL)[prefix]!;
    const bytes = m[4] === 'B' || m[4] === 'Bps';
    const bits = Number(m[1]) * scale * (bytes ? 8 : 1);
    if (bits >= 1 && Number.isFinite(bits)) return bits;
  }
  throw usage(`${option} takes a link rate such as 9600bit, 64kbit, 2Mbit/s or 100kB/s, got ${JSON.stringify(text)}`);
}

/** `64000` -> `64 kbit/s`. */
export function formatRate(bitsPerSecond: number): string {
  const units: [number, string][] = [[1e9, 'Gbit/s'], [1e6, 'Mbit/s'], [1e3, 'kbit/s']];
  for (const [scale, unit] of units) {
    if (bitsPerSecond >= scale) return `${trim(bitsPerSecond / scale)} ${unit}`;
  }
  return `${trim(bitsPerSecond)} bit/s`;
}

function trim(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(n < 10 ? 2 : 1).replace(/\.?0+$/, '');
}

/** Seconds to cross a link: bytes * 8 / rate. */
export function transferSeconds(bytes: number, bitsPerSecond: number): number {
  return (bytes * 8) / bitsPerSecond;
}

/** `0.4` -> `0.4 s`, `75` -> `1 min 15 s`, `7300` -> `2 h 2 min`, `200000` -> `2 d 7 h`. */
export function formatDuration(seconds: number): string {
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const parts: [number, string][] = [[86400, 'd'], [3600, 'h'], [60, 'min'], [1, 's']];
  for (const [i, [unit, name]] of parts.entries()) {
    if (s >= unit) {
      const [next, nextName] = parts[i + 1]!;
      const rest = Math.floor((s % unit) / next);
      return rest > 0 ? `${Math.floor(s / unit)} ${name} ${rest} ${nextName}` : `${Math.floor(s / unit)} ${name}`;
    }
  }
  return `${s} s`;
}

const SPAN: Record<string, number> = { s: 1, m: 60, min: 60, h: 3600, d: 86400, w: 604800, y: 365 * 86400 };

/**
 * An expiry as unix seconds: a span from `now` (`90d`, `12h`, `2w`, `1y`), a date (`2026-12-31`,
 * midnight UTC) or date-time (`2026-12-31T12:00:00Z`), or unix seconds (`1798675200`).
 */
export function parseExpiry(text: string, now: number, option = '--expires'): number {
  const t = text.trim();
  const span = /^(\d+)\s*(s|min|m|h|d|w|y)$/.exec(t);
  let at: number | undefined;
  if (span) at = now + Number(span[1]) * SPAN[span[2]!]!;
  else if (/^\d{9,}$/.test(t)) at = Number(t);
  else if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(t)) {
    const ms = Date.parse(t.length === 10 ? `${t}T00:00:00Z` : t);
    if (Number.isFinite(ms)) at = Math.floor(ms / 1000);
  }
  if (at === undefined || !Number.isSafeInteger(at)) throw usage(`${option} takes a span (90d, 12h), a date (2026-12-31) or unix seconds, got ${JSON.stringify(text)}`);
  if (at <= now) throw usage(`${option} ${text} is not in the future (${new Date(at * 1000).toISOString()})`);
  return at;
}

/** A whole number option within bounds. */
export function parseWhole(text: string, option: string, min: number, max: number): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < min || Number(text) > max) throw usage(`${option} takes a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return Number(text);
}

const DURATION: Record<string, number> = { ms: 1, s: 1000, '': 1000, min: 60_000, m: 60_000, h: 3_600_000 };

/** A duration in milliseconds: `500ms`, `20s`, `2min` (or `2m`), `1h`, `1.5s`; a bare number is seconds. */
export function parseDuration(text: string, option: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|min|m|h)?$/.exec(text.trim());
  const ms = m ? Number(m[1]) * DURATION[m[2] ?? '']! : NaN;
  if (!Number.isFinite(ms)) throw usage(`${option} takes a duration such as 500ms, 20s, 2min or 1h, got ${JSON.stringify(text)}`);
  return ms;
}

/** `HOST:PORT`, `[v6]:PORT` or `:PORT` (host 127.0.0.1); port 0 picks a free one where `allowZero`. */
export function parseHostPort(text: string, option: string, allowZero = false): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535 || (port === 0 && !allowZero)) throw usage(`${option} takes HOST:PORT (for example 127.0.0.1:8080), got ${JSON.stringify(text)}`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}
