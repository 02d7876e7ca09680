/**
 * Backoff between attempts at a chunk. p-retry runs the attempts (counting retries, deciding by the
 * error's `retryable` flag); the wait between them is taken here so that it can end early: when a
 * link comes back after an outage, the first transfer that gets an answer wakes every chunk waiting
 * in backoff, instead of each sleeping out its own exponential delay while the link sits idle.
 * While every chunk waits after a failure of the link itself (no transfer in flight to notice its
 * return), a probe (one small request) goes out every `everyMs`, so the link's return is noticed
 * within one probe, not at the end of the longest backoff. Retry-After waits are never cut short
 * (the server asked for them).
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Exponential backoff with jitter, as p-retry computes it with `randomize`: min * 2^n, capped, times 1 to 2. */
export function backoffMs(retriesConsumed: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  return Math.min(maxMs, minMs * 2 ** retriesConsumed) * (1 + random());
}

/** Asks whether the link answers: resolves true on any answer, false on a failure (never rejects). */
export type LinkProbe = (signal: AbortSignal) => Promise<boolean>;

/** The probe a {@link LinkWaker} runs while the link is down. */
export interface ProbeOptions {
  probe: LinkProbe;
  /** Milliseconds between probes. */
  everyMs: number;
  /** A probe not answered in this long counts as failed (default 30 s). */
  timeoutMs?: number;
}

/** Wakes waiters when the link answers again. */
export class LinkWaker {
  private readonly waiters = new Set<() => void>();
  /** Waiters whose wait follows a failure of the link (the probe runs while there are any). */
  private readonly linkDown = new Set<() => void>();
  private probing = false;
  /** Probes sent so far. */
  probes = 0;

  constructor(private readonly probe?: ProbeOptions) {}

  /** The link answered: every backoff in progress ends now. */
  wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /**
   * Waits `ms`, or until {@link wake}; rejects with the signal's reason when it aborts. `linkDown`:
   * the wait follows a failure of the link (reset, refused, stalled), so the probe runs meanwhile.
   */
  wait(ms: number, signal: AbortSignal, linkDown = false): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason as Error);
      const settle = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        this.linkDown.delete(done);
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
      if (linkDown && this.probe) {
        this.linkDown.add(done);
        if (!this.probing) void this.probeLoop(this.probe);
      }
    });
  }

  /** Probes every `everyMs` while a waiter waits for the link; the first answer wakes them all. */
  private async probeLoop(p: ProbeOptions): Promise<void> {
    this.probing = true;
    try {
      while (this.linkDown.size > 0) {
        await sleep(p.everyMs, undefined, { ref: false });
        if (this.linkDown.size === 0) break;
        this.probes++;
        if (await p.probe(AbortSignal.timeout(p.timeoutMs ?? 30_000)).catch(() => false)) this.wake();
      }
    } finally {
      this.probing = false;
    }
  }
}
