/**
 * The bandwidth cap: a token bucket shared by every transfer. Tokens accrue at the rate up to the
 * burst; a taker may overdraw (a socket read can exceed the burst) and then waits until the
 * balance is back to zero, so the long-run rate never exceeds the cap and concurrent takers are
 * served in the order they came. Waiting here leaves the socket unread, so TCP's own flow control
 * slows the sender and the rest of the link stays free for other traffic.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Clock } from './options.js';

/** A token bucket in bytes. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly bytesPerSecond: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Takes `n` bytes' worth of tokens, waiting as long as the cap requires. */
  async take(n: number, signal?: AbortSignal): Promise<void> {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.bytesPerSecond) / 1000);
    this.last = now;
    this.tokens -= n;
    if (this.tokens >= 0) return;
    await delay((-this.tokens * 1000) / this.bytesPerSecond, undefined, { signal });
  }
}
