/**
 * When the fetcher sends its next chunk request (DESIGN.md section 6 "Fetch"). Requests in flight
 * share the link (a router, linksim, the server's socket writes serve them in turns), so several
 * chunks sent at once all finish at about the same time, at the end of their bytes: the applier,
 * which streams the chunks in payload order, then waits for the last of them before it can rebuild
 * anything. Sending the next request only when the chunks in flight have about a round trip of
 * bytes left keeps the link busy (its answer queues behind their tails) while the chunks arrive one
 * after the other, in the order the applier reads them. On a long-latency link a round trip of
 * bytes is more than a chunk, and up to `concurrency` requests go out at once, as before. The
 * rebuild shares this thread: while its CPU holds the event loop, no request can go out, so the
 * lead grows by the longest recent event-loop delay (more requests in flight while it computes).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** Bytes of lead at least, by default: about 0.13 s at 1 Mbit/s, many round trips on a LAN. */
export const MIN_LEAD_BYTES = 16 * 1024;
/** Lead time beyond the round trip: event-loop turns taken by a rebuild sharing the thread, jitter. */
const LEAD_SLACK_S = 0.1;
/** The receive rate is measured over this window (ms): short, so that it follows the link. */
const RATE_WINDOW_MS = 1000;
/**
 * The rate is never taken over less than this (ms): a burst read after the event loop was busy
 * (a rebuild shares it) would otherwise look like a fast link and send requests early.
 */
const RATE_MIN_SPAN_MS = 500;

/** The receive rate over the last second and, with the round trip, the lead a next request needs. */
export class RequestPacer {
  private readonly samples: { t: number; n: number }[] = [];
  private sum = 0;

  /**
   * `minLeadBytes`: the lead at least (FetcherOptions); `loopDelayMs`: the longest recent
   * event-loop delay (default: measured, see {@link LoopDelay}).
   */
  constructor(
    private readonly minLeadBytes = MIN_LEAD_BYTES,
    private readonly loopDelayMs: (now: number) => number = () => 0,
  ) {}

  /** Counts `n` bytes received at `now` (ms). */
  add(n: number, now: number): void {
    this.samples.push({ t: now, n });
    this.sum += n;
    this.prune(now);
  }

  /** Bytes/s received over the window ending at `now` (over half a second at least; 0 before any byte). */
  rate(now: number): number {
    this.prune(now);
    const first = this.samples[0];
    if (!first) return 0;
    // the first sample's bytes arrived before the span began
    return ((this.sum - first.n) * 1000) / Math.max(now - first.t, RATE_MIN_SPAN_MS);
  }

  /**
   * Bytes the chunks in flight should have left when the next request goes out: the bytes the link
   * carries in two round trips, a slack and the longest recent event-loop delay at the current
   * rate, at least `minLeadBytes`.
   * `rttSeconds`: the smoothed time from a request to its answer's head (null before any answer).
   */
  leadBytes(now: number, rttSeconds: number | null): number {
    return Math.max(this.minLeadBytes, this.rate(now) * (2 * (rttSeconds ?? 0) + LEAD_SLACK_S + this.loopDelayMs(now) / 1000));
  }

  private prune(now: number): void {
    while (this.samples.length > 0 && this.samples[0]!.t < now - RATE_WINDOW_MS) this.sum -= this.samples.shift()!.n;
  }
}

/** The histogram's sampling interval (ms): its figures include it. */
const LOOP_RESOLUTION_MS = 10;

/** The longest event-loop delay over the last one to two seconds (node:perf_hooks). Enable while a fetch runs. */
export class LoopDelay {
  private readonly h: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  private previous = 0;
  private since = -Infinity;

  enable(): void {
    this.h.enable();
  }

  disable(): void {
    this.h.disable();
  }

  /** Milliseconds: the longest delay seen in the current period or the one before. */
  ms(now: number): number {
    if (now - this.since >= 1000) {
      this.previous = this.current();
      this.h.reset();
      this.since = now;
    }
    return Math.max(this.previous, this.current());
  }

  private current(): number {
    return this.h.count > 0 ? Math.max(0, this.h.max / 1e6 - LOOP_RESOLUTION_MS) : 0;
  }
}
