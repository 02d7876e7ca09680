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
  /** Requests of the first wave not yet started. */
  private toStart = 0;

  constructor(chunks: readonly ChunkRef[]) {
    this.chunksTotal = chunks.length;
    this.sent = new Promise<void>((resolve) => (this.onSent = resolve));
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
    if (e) e.state = 'active';
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
    e.state = 'done';
    e.partial = undefined;
    for (const w of this.waiters.get(e.digest) ?? []) w.resolve();
    this.waiters.delete(e.digest);
  }

  /** Ends the run; waiters of chunks not verified get `err` (or FERRY_ERR_CHUNK_MISSING). */
  finish(err?: FerryError): void {
    this.finished = true;
    this.onSent();
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
