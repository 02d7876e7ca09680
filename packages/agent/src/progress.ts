/**
 * What the fetcher reports: progress and link statistics with the field names of the agent's
 * Report (docs/protocol.md section 3.2), a sliding-window rate, and events.
 */
import type { Digest, FerryError } from '@ferry/core';

/** Link statistics (Report `link`, plus detail for logs and benches). */
export interface LinkStats {
  /** Body bytes received from HTTP sources, refetched and discarded bytes included. */
  bytesReceived: number;
  /** HTTP requests sent. */
  requests: number;
  /** Requests or reads that failed (any reason). */
  failures: number;
  /** Connections dropped because no byte, or too few, arrived (a slow link). */
  stalls: number;
  /** Connections that failed or were reset before the answer was complete. */
  resets: number;
  /** Smoothed time from request to response headers, seconds (null before any answer). */
  rtt: number | null;
  /** Bytes read from sockets, HTTP headers included. */
  wireBytesReceived: number;
  /** Bytes written to sockets (requests). */
  wireBytesSent: number;
  /** Chunks whose bytes did not match their digest (or size), discarded and fetched again. */
  digestFailures: number;
  /** Partial chunks restarted from byte 0 (a 200 to a Range request, a 206 at the wrong offset, a bad partial file). */
  restarts: number;
  /** Received bytes thrown away (discarded chunks, restarted partials, bytes past a chunk's size). */
  bytesDiscarded: number;
  /** Chunk bytes read from local directory sources. */
  bytesFromFiles: number;
}

/** A fresh set of link statistics. */
export function emptyLinkStats(): LinkStats {
  return { bytesReceived: 0, requests: 0, failures: 0, stalls: 0, resets: 0, rtt: null, wireBytesReceived: 0, wireBytesSent: 0, digestFailures: 0, restarts: 0, bytesDiscarded: 0, bytesFromFiles: 0 };
}

/** Progress of a fetch (Report fields `bytesDone` ... `link`). */
export interface FetchProgress {
  /** Verified chunk bytes plus the bytes of partial chunks held. */
  bytesDone: number;
  bytesTotal: number;
  chunksDone: number;
  chunksTotal: number;
  /** Bytes/s received over the rate window. */
  rate: number;
  /** Seconds left at that rate, or null when unknown. */
  eta: number | null;
  /** The last error, or null. */
  error: { code: string; message: string } | null;
  link: LinkStats;
}

/** Something the fetcher did, for logs and tests. */
export type FetchEvent =
  | { type: 'chunk'; index: number; digest: Digest; source: string }
  | { type: 'failure'; index: number; digest: Digest; source: string; error: FerryError }
  | { type: 'discard'; index: number; digest: Digest; source: string; bytes: number; reason: string };

/** Bytes per second over a sliding window, in one-second buckets. */
export class RateMeter {
  private readonly buckets: { sec: number; bytes: number }[] = [];
  private start: number | undefined;

  constructor(private readonly windowMs: number) {}

  /** Counts `n` bytes received at `now` (ms). */
  add(n: number, now: number): void {
    this.start ??= now;
    const sec = Math.floor(now / 1000);
    const last = this.buckets[this.buckets.length - 1];
    if (last && last.sec === sec) last.bytes += n;
    else this.buckets.push({ sec, bytes: n });
  }

  /** Bytes/s over the window ending at `now`. */
  rate(now: number): number {
    if (this.start === undefined) return 0;
    const from = Math.floor((now - this.windowMs) / 1000);
    while (this.buckets.length > 0 && this.buckets[0]!.sec <= from) this.buckets.shift();
    const bytes = this.buckets.reduce((n, b) => n + b.bytes, 0);
    const span = Math.max(1000, Math.min(this.windowMs, now - this.start));
    return bytes / (span / 1000);
  }
}
