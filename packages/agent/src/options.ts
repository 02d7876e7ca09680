/**
 * Options of the chunk fetcher, with every default merged in one place ({@link resolveFetcherOptions}).
 * Collaborators (clock, HTTP transport) are injectable; only the CLI reads config files.
 */
import { FerryError } from '@ferry/core';
import type { FetchEvent, FetchProgress } from './progress.js';
import type { HttpTransport } from './http.js';
import { MIN_LEAD_BYTES } from './pacer.js';

/** Time as the fetcher sees it. */
export interface Clock {
  /** Monotonic milliseconds (rates, stalls, checkpoints). */
  now(): number;
  /** Wall-clock milliseconds since the epoch (Retry-After dates). */
  wall(): number;
}

/** The real clock. */
export const systemClock: Clock = { now: () => performance.now(), wall: () => Date.now() };

/** Options of {@link ChunkFetcher}. */
export interface FetcherOptions {
  /** The chunk cache: `chunks/<hex>` (the repository layout) and `partial/` (resumable bytes). */
  cacheDir: string;
  /**
   * Where chunks come from, tried in this order for each chunk: repository base URLs
   * (`https://server/repo/`, a relay) and local directories holding `chunks/<hex>` (a mounted
   * USB stick: an absolute path or a `file:` URL).
   */
  sources: string[];
  /** Chunks fetched at once at most, to fill long-latency links (default 3). */
  concurrency?: number;
  /**
   * The next chunk request goes out when the chunks in flight have at most this many bytes left,
   * or the bytes of two round trips, 0.1 s and the longest recent event-loop delay at the measured
   * rate when that is more; once a chunk was verified, a second one may always be in flight
   * (pacer.ts; default 16 KiB): the chunks arrive one after the other in payload order, the link
   * kept busy.
   */
  minLeadBytes?: number;
  /** Bandwidth cap in bytes/s for everything the fetcher receives (default: none). */
  maxBytesPerSecond?: number | undefined;
  /** Bytes the cap lets through at once after an idle spell (default: a quarter second of the cap, at least 4 KiB). */
  burstBytes?: number;
  /** No byte for this long drops the connection as stalled (default 30 s). */
  stallTimeoutMs?: number;
  /** A connection that delivers fewer than `lowSpeedBytes` in `lowSpeedWindowMs` is dropped as too slow (default 64 bytes in 60 s). */
  lowSpeedBytes?: number;
  /** See `lowSpeedBytes` (default 60 s). */
  lowSpeedWindowMs?: number;
  /** Retries of one chunk before the run gives up, p-retry's `retries` (default 8). */
  retries?: number;
  /** First backoff (default 1 s); doubles up to `maxRetryMs`, with jitter (x1 to x2). */
  minRetryMs?: number;
  /** Longest backoff (default 30 s). */
  maxRetryMs?: number;
  /**
   * While every chunk waits in backoff after a failure of the link (reset, refused, stalled), a
   * probe (the first byte of a chunk) goes out this often, and its answer ends every backoff
   * (default 1 s): the link's return is used within one probe, whatever the backoff had grown to.
   */
  probeMs?: number;
  /** Longest Retry-After honoured; a server asking more waits this long (default 10 min). */
  maxRetryAfterMs?: number;
  /** A partial chunk's bytes are made durable at most this often while they flow (default 1 s), and always when a transfer stops. */
  checkpointMs?: number;
  /** The rate is measured over this window (default 60 s, as the Report's `rate`). */
  rateWindowMs?: number;
  /** Progress callbacks come at most this often, besides one per verified chunk (default 1 s). */
  progressMs?: number;
  /** Clock (default: performance.now and Date.now). */
  clock?: Clock;
  /** HTTP transport (default: node:http/https with keep-alive, one socket per chunk in flight). */
  transport?: HttpTransport;
  /** Progress for the agent's reports. */
  onProgress?: (progress: FetchProgress) => void;
  /** Every notable event (a chunk verified, a failure, a stall, a discarded chunk). */
  onEvent?: (event: FetchEvent) => void;
}

/** Options with defaults filled in. */
export type ResolvedFetcherOptions = Required<Omit<FetcherOptions, 'maxBytesPerSecond' | 'transport' | 'onProgress' | 'onEvent'>> &
  Pick<FetcherOptions, 'maxBytesPerSecond' | 'transport' | 'onProgress' | 'onEvent'>;

function need(ok: boolean, what: string): void {
  if (!ok) throw new FerryError('FERRY_ERR_USAGE', `fetcher: ${what}`);
}

/** Merges the defaults; FERRY_ERR_USAGE for an option out of range. */
export function resolveFetcherOptions(o: FetcherOptions): ResolvedFetcherOptions {
  const cap = o.maxBytesPerSecond;
  const r: ResolvedFetcherOptions = {
    ...o,
    concurrency: o.concurrency ?? 3,
    minLeadBytes: o.minLeadBytes ?? MIN_LEAD_BYTES,
    burstBytes: o.burstBytes ?? Math.max(4096, Math.round((cap ?? 0) / 4)),
    stallTimeoutMs: o.stallTimeoutMs ?? 30_000,
    lowSpeedBytes: o.lowSpeedBytes ?? 64,
    lowSpeedWindowMs: o.lowSpeedWindowMs ?? 60_000,
    retries: o.retries ?? 8,
    minRetryMs: o.minRetryMs ?? 1000,
    maxRetryMs: o.maxRetryMs ?? 30_000,
    maxRetryAfterMs: o.maxRetryAfterMs ?? 600_000,
    probeMs: o.probeMs ?? 1000,
    checkpointMs: o.checkpointMs ?? 1000,
    rateWindowMs: o.rateWindowMs ?? 60_000,
    progressMs: o.progressMs ?? 1000,
    clock: o.clock ?? systemClock,
  };
  need(r.sources.length > 0, 'at least one source is needed');
  need(Number.isInteger(r.concurrency) && r.concurrency >= 1 && r.concurrency <= 64, 'concurrency must be 1 to 64');
  need(Number.isSafeInteger(r.minLeadBytes) && r.minLeadBytes >= 0, 'minLeadBytes must be a whole number of bytes');
  need(cap === undefined || (Number.isFinite(cap) && cap > 0), 'the bandwidth cap must be a positive number of bytes/s');
  need(r.stallTimeoutMs > 0 && r.lowSpeedWindowMs > 0 && r.lowSpeedBytes >= 0, 'stall timeouts must be positive');
  need(Number.isInteger(r.retries) && r.retries >= 0, 'retries must be a whole number');
  need(r.probeMs > 0, 'the probe interval must be positive');
  need(r.minRetryMs >= 0 && r.maxRetryMs >= r.minRetryMs && r.maxRetryAfterMs >= 0, 'backoff bounds must satisfy 0 <= min <= max');
  need(cap === undefined || r.lowSpeedBytes < (cap * r.lowSpeedWindowMs) / 1000 / 2, 'the low-speed limit must stay well under the bandwidth cap');
  return r;
}
