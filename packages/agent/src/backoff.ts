/**
 * Backoff between attempts at a chunk. p-retry runs the attempts (counting retries, deciding by the
 * error's `retryable` flag); the wait between them is taken here so that it can end early: when a
 * link comes back after an outage, the first transfer that gets an answer wakes every chunk waiting
 * in backoff, instead of each sleeping out its own exponential delay while the link sits idle.
 * Retry-After waits are never cut short (the server asked for them).
 */
/** Exponential backoff with jitter, as p-retry computes it with `randomize`: min * 2^n, capped, times 1 to 2. */
export function backoffMs(retriesConsumed: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  return Math.min(maxMs, minMs * 2 ** retriesConsumed) * (1 + random());
}

/** Wakes waiters when the link answers again. */
export class LinkWaker {
  private readonly waiters = new Set<() => void>();

  /** The link answered: every backoff in progress ends now. */
  wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Waits `ms`, or until {@link wake}; rejects with the signal's reason when it aborts. */
  wait(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason as Error);
      const settle = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal.removeEventListener('abort', onAbort);
      };
      const done = (): void => {
        settle();
        resolve();
      };
      const onAbort = (): void => {
        settle();
        reject(signal.reason as Error);
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
