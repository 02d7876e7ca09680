/**
 * The bookkeeping of one fetch run: which chunks (by digest: a digest listed twice is fetched once)
 * are pending, in flight or verified, the queue in payload order (a chunk the applier waits for
 * jumps ahead), and the waiters of the chunk source.
 */
import { FerryError, type Digest } from '@ferry/core';
import type { Source } from './sources.js';

/** A chunk of the payload: its digest and size (from the verified header). */
export interface ChunkRef {
  digest: Digest;
  size: number;
}

/** One distinct chunk of a run. */
export interface RunEntry {
  digest: Digest;
  size: number;
  /** Its positions in the payload. */
  indexes: number[];
  state: 'pending' | 'active' | 'done';
  /** Its partial bytes while a transfer holds them (for progress). */
  partial: { readonly offset: number } | undefined;
  /** Sources that lacked it or served wrong bytes, and how often. */
  bad: Map<Source, number>;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

/** State of one run. */
export class Run {
  readonly entries = new Map<Digest, RunEntry>();
  private readonly queue: RunEntry[] = [];
  private readonly wanted = new Set<Digest>();
  private readonly waiters = new Map<Digest, Set<Waiter>>();
  readonly controller = new AbortController();
  bytesTotal = 0;
  chunksTotal: number;
  error: FerryError | undefined;
  finished = false;
  /** Workers taking chunks from the queue. */
  workers = 0;
  /** Resolves once the first wave of requests is going out, or the run has none to send or ended. */
  readonly sent: Promise<void>;
  private onSent!: () => void;
  /** Workers of the first wave that have neither started a request nor been held by the pacing. */
  private toStart = 0;
  /** Chunks verified by this run's workers. */
  private verified = 0;
  /** Chunks taken by a worker and not yet verified. */
  private readonly active = new Set<RunEntry>();
  /** Workers held until the chunks in flight have little left (see {@link take}). */
  private held: (() => void)[] = [];

  constructor(chunks: readonly ChunkRef[]) {
    this.chunksTotal = chunks.length;
    this.sent = new Promise<void>((resolve) => (this.onSent = resolve));
    this.controller.signal.addEventListener('abort', () => this.nudge(), { once: true });
    chunks.forEach((c, i) => {
      this.bytesTotal += c.size;
      const e = this.entries.get(c.digest);
      if (e) {
        if (e.size !== c.size) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `chunk ${c.digest} is listed with two sizes (${e.size} and ${c.size})`);
        e.indexes.push(i);
      } else {
        this.entries.set(c.digest, { digest: c.digest, size: c.size, indexes: [i], state: 'pending', partial: undefined, bad: new Map() });
      }
    });
  }

  /** Wakes the held workers (bytes arrived, a chunk ended, the run stopped): they check again. */
  nudge(): void {
    const held = this.held;
    this.held = [];
    for (const wake of held) wake();
  }

  /** Bytes still to come for the chunks in flight. */
  outstanding(): number {
    let n = 0;
    for (const e of this.active) n += e.size - (e.partial?.offset ?? 0);
    return n;
  }

  /**
   * Whether a worker waits before taking the next chunk: while the chunks in flight have more than
   * `lead()` bytes left, except that once a chunk was verified one more may always queue behind
   * the one arriving (the thread it shares with the rebuild may be too busy to send it in time).
   */
  private mustWait(lead: () => number): boolean {
    if (this.signal.aborted || this.finished || this.queue.length === 0 || this.active.size === 0) return false;
    if (this.verified > 0 && this.active.size < 2) return false;
    return this.outstanding() > lead();
  }

  /**
   * The next chunk for a worker (see {@link next}) when it may take one (pacer.ts): at once when
   * nothing is in flight, else as {@link mustWait} says. Undefined when none is left or the run
   * stops. The check and the taking happen in one turn, so that workers started together do not
   * all pass. A worker of the first wave held here counts as sent for {@link sent}.
   */
  async take(lead: () => number, first: boolean): Promise<RunEntry | undefined> {
    while (this.mustWait(lead)) {
      if (first) {
        first = false;
        this.requestStarting();
      }
      await new Promise<void>((resolve) => this.held.push(resolve));
    }
    return this.finished ? undefined : this.next();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * Queues the chunks not already verified, in payload order; the first `wave` requests (one per
   * worker) resolve {@link sent} when the last of them starts.
   */
  enqueuePending(wave: number): void {
    for (const e of this.entries.values()) if (e.state === 'pending') this.queue.push(e);
    this.toStart = Math.min(wave, this.queue.length);
    if (this.toStart === 0) this.onSent();
  }

  /** A request is about to go out. */
  requestStarting(): void {
    if (--this.toStart === 0) this.onSent();
  }

  /** The next chunk to fetch (one a reader waits for first), or undefined when none is left. */
  next(): RunEntry | undefined {
    if (this.signal.aborted) return undefined;
    let i = -1;
    for (const d of this.wanted) {
      i = this.queue.findIndex((e) => e.digest === d);
      this.wanted.delete(d);
      if (i >= 0) break;
    }
    const [e] = this.queue.splice(Math.max(i, 0), 1);
    if (e) {
      e.state = 'active';
      this.active.add(e);
    }
    return e;
  }

  /** A reader waits for this chunk: it is fetched next. */
  prioritize(digest: Digest): void {
    this.wanted.add(digest);
  }

  /**
   * True when the run will still bring `digest`: it is pending or in flight, or it was verified but
   * its cached copy turned out damaged and a worker is left to fetch it again.
   */
  willBring(digest: Digest): boolean {
    const e = this.entries.get(digest);
    if (!e || this.finished) return false;
    if (e.state !== 'done') return true;
    if (this.workers === 0) return false;
    e.state = 'pending';
    this.queue.unshift(e);
    return true;
  }

  /** Marks a chunk verified and wakes its waiters. */
  done(e: RunEntry): void {
    if (this.active.delete(e)) this.verified++;
    this.nudge();
    e.state = 'done';
    e.partial = undefined;
    for (const w of this.waiters.get(e.digest) ?? []) w.resolve();
    this.waiters.delete(e.digest);
  }

  /** A chunk whose worker gave up on it (the run stops): pending again, no longer in flight. */
  release(e: RunEntry): void {
    this.active.delete(e);
    this.nudge();
    e.state = 'pending';
    e.partial = undefined;
  }

  /** Ends the run; waiters of chunks not verified get `err` (or FERRY_ERR_CHUNK_MISSING). */
  finish(err?: FerryError): void {
    this.finished = true;
    this.onSent();
    this.nudge();
    this.error ??= err;
    for (const [digest, set] of this.waiters) {
      const reason = this.error ?? new FerryError('FERRY_ERR_CHUNK_MISSING', `the fetch ended without chunk ${digest}`, { details: { digest } });
      for (const w of set) w.reject(reason);
    }
    this.waiters.clear();
  }

  /** Resolves when `digest` is verified; rejects when the run ends without it or `signal` aborts. */
  waitFor(digest: Digest, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const set = this.waiters.get(digest) ?? new Set<Waiter>();
      this.waiters.set(digest, set);
      const onAbort = (): void => {
        set.delete(w);
        reject(signal!.reason as Error);
      };
      const w: Waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      set.add(w);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Verified chunks (payload positions) and bytes, partial bytes included. */
  counts(): { chunks: number; bytes: number } {
    let chunks = 0;
    let bytes = 0;
    for (const e of this.entries.values()) {
      if (e.state === 'done') {
        chunks += e.indexes.length;
        bytes += e.size * e.indexes.length;
      } else bytes += e.partial?.offset ?? 0;
    }
    return { chunks, bytes };
  }
}
