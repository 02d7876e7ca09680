/**
 * Stall detection for one transfer (curl's --speed-limit/--speed-time plus a no-byte timeout): the
 * transfer is declared stalled when no byte arrived for `stallMs`, or when fewer than `minBytes`
 * arrived in the last `windowMs` (a 1 byte/s trickle never trips a no-byte timer). Time the
 * fetcher itself spends waiting on the bandwidth cap is not counted against the link.
 */
import type { Clock } from './options.js';

/** Limits of {@link StallWatch}. */
export interface StallLimits {
  stallMs: number;
  minBytes: number;
  windowMs: number;
}

/** Watches one transfer; calls `onStall` once with a reason when it stalls. */
export class StallWatch {
  private readonly timer: NodeJS.Timeout;
  private active = 0;
  private lastTick: number;
  private paused = false;
  private lastByteAt = 0;
  private total = 0;
  /** (active ms, total bytes) samples, oldest first, covering the low-speed window. */
  private readonly samples: [number, number][] = [[0, 0]];
  private fired = false;

  constructor(
    private readonly limits: StallLimits,
    private readonly clock: Clock,
    private readonly onStall: (reason: string) => void,
  ) {
    this.lastTick = clock.now();
    const tick = Math.min(1000, Math.max(5, Math.min(limits.stallMs, limits.windowMs) / 8));
    this.timer = setInterval(() => this.check(), tick);
  }

  /** Bytes arrived. */
  bytes(n: number): void {
    this.advance();
    this.total += n;
    this.lastByteAt = this.active;
  }

  /** The fetcher is waiting on its own bandwidth cap: the link is not to blame meanwhile. */
  pause(): void {
    this.advance();
    this.paused = true;
  }

  /** The fetcher reads again. */
  resume(): void {
    this.advance();
    this.paused = false;
  }

  /** Stops watching. */
  stop(): void {
    clearInterval(this.timer);
  }

  private advance(): void {
    const now = this.clock.now();
    if (!this.paused) this.active += now - this.lastTick;
    this.lastTick = now;
  }

  private check(): void {
    if (this.fired) return;
    this.advance();
    const { stallMs, minBytes, windowMs } = this.limits;
    this.samples.push([this.active, this.total]);
    while (this.samples.length > 1 && this.samples[1]![0] <= this.active - windowMs) this.samples.shift();
    let reason: string | undefined;
    if (this.active - this.lastByteAt >= stallMs) reason = `no byte for ${fmt(stallMs)}`;
    else if (this.active >= windowMs && this.total - this.samples[0]![1] < minBytes) reason = `fewer than ${minBytes} bytes in ${fmt(windowMs)} (a slow link)`;
    if (reason !== undefined) {
      this.fired = true;
      this.stop();
      this.onStall(reason);
    }
  }
}

const fmt = (ms: number): string => (ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`);
