/**
 * The chunk fetcher (DESIGN.md section 6 "Fetch"): brings every chunk of a payload into the chunk
 * cache, verified, over whatever the link allows. A few chunks are in flight at once; each is tried
 * at every source in order (sources that lacked it or served wrong bytes last), with retries,
 * exponential backoff and jitter (p-retry) and Retry-After honoured; a transfer that made progress
 * before it failed resumes at once without spending a retry. Nothing verified is fetched again.
 * The chunk source it exposes lets the applier consume chunks as they arrive.
 */
import { setTimeout as delay } from 'node:timers/promises';
import pRetry from 'p-retry';
import { FerryError, isFerryError, toFerryError, type ChunkSource } from '@ferry/core';
import { backoffMs, LinkWaker } from './backoff.js';
import { TokenBucket } from './bucket.js';
import { ChunkCache } from './cache.js';
import { createHttpTransport, type HttpResponse, type HttpTransport } from './http.js';
import { fetchHttpChunk, type TransferContext } from './http-source.js';
import { resolveFetcherOptions, type FetcherOptions, type ResolvedFetcherOptions } from './options.js';
import type { PartialChunk } from './partial.js';
import { LoopDelay, RequestPacer } from './pacer.js';
import { emptyLinkStats, RateMeter, type FetchEvent, type FetchProgress, type LinkStats } from './progress.js';
import { Run, type ChunkRef, type RunEntry } from './run.js';
import { chunkUrl, parseSource, readDirChunk, type Source } from './sources.js';

/**
 * Failures of this machine, not of a source (disk full, permissions, a bug): no other source and no
 * retry can help, so the run stops with them (the agent's loop decides when to try again).
 */
const LOCAL = new Set<string>(['FERRY_ERR_IO', 'FERRY_ERR_DISK_FULL', 'FERRY_ERR_INTERNAL']);

/** Cache lookups in flight at once when a fetch starts. */
const CACHE_CHECK_BATCH = 64;
/** Failures of the link itself (no answer came): the backoff after them probes for the link's return. */
const LINK_DOWN = new Set<string>(['FERRY_ERR_NETWORK', 'FERRY_ERR_FETCH_STALLED']);

/** What a finished run did. */
export interface FetchSummary {
  /** Payload chunks (positions) now verified in the cache. */
  chunks: number;
  /** Distinct chunks fetched by this run. */
  fetched: number;
  /** Distinct chunks that were already in the cache. */
  cached: number;
  progress: FetchProgress;
}

/** Brings chunks into a chunk cache. One run at a time; `close()` when done with it. */
export class ChunkFetcher {
  private readonly o: ResolvedFetcherOptions;
  private readonly sources: Source[];
  private readonly transport: HttpTransport;
  private readonly bucket: TokenBucket | undefined;
  private readonly stats: LinkStats = emptyLinkStats();
  private readonly meter: RateMeter;
  private readonly ctx: TransferContext;
  private readonly waker: LinkWaker;
  /** What the link probe asks for: the first byte of the last chunk the link failed on. */
  private probeUrl: URL | undefined;
  private run: Run | undefined;
  private lastError: FerryError | null = null;
  private lastProgress = -Infinity;
  private readonly pacer: RequestPacer;
  private readonly loopDelay = new LoopDelay();
  /** Bytes the chunks in flight may have left when the next request goes out (pacer.ts). */
  private readonly lead = (): number => this.pacer.leadBytes(this.o.clock.now(), this.stats.rtt);

  private constructor(options: FetcherOptions, readonly cache: ChunkCache) {
    this.o = resolveFetcherOptions(options);
    this.sources = this.o.sources.map(parseSource);
    this.transport = this.o.transport ?? createHttpTransport({ maxSockets: this.o.concurrency });
    this.bucket = this.o.maxBytesPerSecond === undefined ? undefined : new TokenBucket(this.o.maxBytesPerSecond, this.o.burstBytes, this.o.clock);
    this.meter = new RateMeter(this.o.rateWindowMs);
    this.pacer = new RequestPacer(this.o.minLeadBytes, (now) => this.loopDelay.ms(now));
    this.waker = new LinkWaker({ everyMs: this.o.probeMs, timeoutMs: this.o.stallTimeoutMs, probe: (signal) => this.probeLink(signal) });
    this.ctx = {
      transport: this.transport,
      bucket: this.bucket,
      clock: this.o.clock,
      limits: { stallMs: this.o.stallTimeoutMs, minBytes: this.o.lowSpeedBytes, windowMs: this.o.lowSpeedWindowMs },
      checkpointMs: this.o.checkpointMs,
      stats: this.stats,
      meter: this.meter,
      onRtt: (ms) => {
        this.stats.rtt = this.stats.rtt === null ? ms / 1000 : 0.75 * this.stats.rtt + 0.25 * (ms / 1000);
        this.waker.wake();
      },
      onDiscard: (bytes) => (this.stats.bytesDiscarded += bytes),
      onBytes: (n) => {
        this.pacer.add(n, this.o.clock.now());
        this.run?.nudge();
        this.maybeProgress(false);
      },
    };
  }

  /** Opens the cache (creating it) and checks the options (FERRY_ERR_USAGE). */
  static async open(options: FetcherOptions): Promise<ChunkFetcher> {
    resolveFetcherOptions(options);
    return new ChunkFetcher(options, await ChunkCache.open(options.cacheDir));
  }

  /**
   * Fetches every chunk not yet in the cache. Resolves when all are verified there; rejects with
   * the error of a chunk that ran out of retries (the others stop, their bytes checkpointed), or
   * FERRY_ERR_ABORTED.
   */
  async fetch(chunks: readonly ChunkRef[], options: { signal?: AbortSignal } = {}): Promise<FetchSummary> {
    if (this.run && !this.run.finished) throw new FerryError('FERRY_ERR_USAGE', 'a fetch is already running on this fetcher');
    const run = new Run(chunks);
    this.run = run;
    const onAbort = (): void => run.controller.abort(options.signal!.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const ticker = setInterval(() => this.maybeProgress(true), this.o.progressMs);
    this.loopDelay.enable();
    let cached = 0;
    try {
      options.signal?.throwIfAborted();
      // the cache is asked in batches, not one chunk per turn of the event loop: a rebuild sharing
      // the loop would otherwise delay the first request by as many of its turns as there are chunks
      const entries = [...run.entries.values()];
      for (let i = 0; i < entries.length; i += CACHE_CHECK_BATCH) {
        const batch = entries.slice(i, i + CACHE_CHECK_BATCH);
        const present = await Promise.all(batch.map((e) => this.cache.has(e.digest)));
        batch.forEach((e, k) => {
          if (!present[k]) return;
          run.done(e);
          cached++;
        });
      }
      run.enqueuePending(this.o.concurrency);
      await Promise.all(Array.from({ length: this.o.concurrency }, () => this.worker(run)));
      if (run.error) throw run.error;
      run.signal.throwIfAborted();
      return { chunks: run.counts().chunks, fetched: run.entries.size - cached, cached, progress: this.progress() };
    } catch (err) {
      const fe = toFerryError(err, 'fetching chunks');
      this.lastError = fe;
      run.finish(fe);
      throw fe;
    } finally {
      run.finish();
      clearInterval(ticker);
      this.loopDelay.disable();
      options.signal?.removeEventListener('abort', onAbort);
      this.maybeProgress(true);
    }
  }

  /**
   * Resolves once the running fetch has its first requests going out (one per worker), has none to
   * send, or has ended: CPU-heavy work sharing the event loop (a rebuild's baseline table) waits
   * for it so that it does not delay the first bytes on the link.
   */
  requestsSent(): Promise<void> {
    return this.run?.sent ?? Promise.resolve();
  }

  /**
   * A core ChunkSource over the cache: a cached chunk is read and checked again; one the running
   * fetch has not got yet is moved to the front of its queue and awaited. A chunk no running fetch
   * will bring is FERRY_ERR_CHUNK_MISSING.
   */
  chunkSource(): ChunkSource {
    return {
      readChunk: async (_index, digest, size, signal) => {
        for (;;) {
          try {
            return await this.cache.read(digest, size, signal);
          } catch (err) {
            if (!isFerryError(err, 'FERRY_ERR_CHUNK_MISSING') && !isFerryError(err, 'FERRY_ERR_CHUNK_INVALID')) throw err;
          }
          const run = this.run;
          if (!run?.willBring(digest)) throw new FerryError('FERRY_ERR_CHUNK_MISSING', `chunk ${digest} is not in the cache and no running fetch will bring it`, { details: { digest } });
          run.prioritize(digest);
          await run.waitFor(digest, signal);
        }
      },
    };
  }

  /** Progress now (Report fields). */
  progress(): FetchProgress {
    const wire = this.transport.wire();
    this.stats.wireBytesReceived = wire.received;
    this.stats.wireBytesSent = wire.sent;
    const run = this.run;
    const done = run?.counts() ?? { chunks: 0, bytes: 0 };
    const rate = this.meter.rate(this.o.clock.now());
    const left = (run?.bytesTotal ?? 0) - done.bytes;
    return {
      bytesDone: done.bytes,
      bytesTotal: run?.bytesTotal ?? 0,
      chunksDone: done.chunks,
      chunksTotal: run?.chunksTotal ?? 0,
      rate,
      eta: left === 0 ? 0 : rate > 0 ? left / rate : null,
      error: this.lastError && { code: this.lastError.code, message: this.lastError.message },
      link: { ...this.stats },
    };
  }

  /** Closes pooled connections. */
  close(): void {
    if (!this.o.transport) this.transport.close();
  }

  private async worker(run: Run): Promise<void> {
    run.workers++;
    try {
      for (let first = true; ; first = false) {
        const e = await run.take(this.lead, first);
        if (!e) return;
        try {
          await this.fetchEntry(run, e);
          run.done(e);
          this.maybeProgress(true);
        } catch (err) {
          run.release(e);
          if (run.signal.aborted) return;
          run.error ??= toFerryError(err);
          run.controller.abort(run.error);
          return;
        }
      }
    } finally {
      run.workers--;
    }
  }

  private emit(event: FetchEvent): void {
    try {
      this.o.onEvent?.(event);
    } catch {
      // a listener's bug must not break a transfer
    }
  }

  private maybeProgress(force: boolean): void {
    const now = this.o.clock.now();
    if (!this.o.onProgress || (!force && now - this.lastProgress < this.o.progressMs)) return;
    this.lastProgress = now;
    try {
      this.o.onProgress(this.progress());
    } catch {
      // as above
    }
  }

  /** Fetches one chunk with retries; its partial bytes are checkpointed however it ends. */
  private async fetchEntry(run: Run, e: RunEntry): Promise<void> {
    const index = e.indexes[0]!;
    const partial = await this.cache.openPartial(e.digest, e.size, (note) => {
      this.stats.restarts++;
      this.stats.bytesDiscarded += note.bytes;
      this.emit({ type: 'discard', index, digest: e.digest, source: 'journal', bytes: note.bytes, reason: note.reason });
    });
    e.partial = partial;
    const state = { progressed: false, finished: false };
    try {
      await pRetry(() => this.attempt(run, e, partial, state), {
        retries: this.o.retries,
        minTimeout: 0, // the wait is taken in onFailedAttempt (backoff.ts), where the link's return can end it
        signal: run.signal,
        onFailedAttempt: async ({ error, retriesConsumed, retriesLeft }) => {
          if (state.progressed || retriesLeft === 0 || !isFerryError(error) || !error.retryable) return;
          const after = error.details?.retryAfterMs as number | undefined;
          if (after !== undefined) await delay(Math.min(after, this.o.maxRetryAfterMs), undefined, { signal: run.signal });
          else await this.waker.wait(backoffMs(retriesConsumed, this.o.minRetryMs, this.o.maxRetryMs), run.signal, LINK_DOWN.has(error.code));
        },
        shouldConsumeRetry: () => !state.progressed,
        shouldRetry: ({ error }) => isFerryError(error) && error.retryable && !LOCAL.has(error.code) && !run.signal.aborted,
      });
    } finally {
      if (!state.finished) await partial.close().catch(() => undefined);
    }
  }

  /**
   * The link probe (backoff.ts): asks for the first byte of a chunk the link failed on. True on any
   * answer; a one-byte 206 is read so its connection serves the next request, anything else is dropped.
   */
  private async probeLink(signal: AbortSignal): Promise<boolean> {
    const url = this.probeUrl;
    if (!url) return false;
    this.stats.requests++;
    let res: HttpResponse | undefined;
    try {
      res = await this.transport.get(url, { range: 'bytes=0-0', 'accept-encoding': 'identity' }, signal);
      let n = 0;
      if (res.status === 206) for await (const b of res.body) if ((n += b.length) > 1) break;
      if (res.status !== 206 || n !== 1) res.abort();
      return true;
    } catch {
      res?.abort();
      return res !== undefined;
    }
  }

  /** Sources for a chunk: those that lacked it or served wrong bytes go last. */
  private order(e: RunEntry): Source[] {
    return [...this.sources].sort((a, b) => (e.bad.get(a) ?? 0) - (e.bad.get(b) ?? 0));
  }

  /** One attempt: every source in turn until one yields the verified chunk. */
  private async attempt(run: Run, e: RunEntry, partial: PartialChunk, state: { progressed: boolean; finished: boolean }): Promise<void> {
    const index = e.indexes[0]!;
    const errors: FerryError[] = [];
    state.progressed = false;
    run.requestStarting();
    for (const source of this.order(e)) {
      const before = partial.offset;
      try {
        await this.fromSource(source, e, partial, run.signal);
        state.finished = true;
        this.emit({ type: 'chunk', index, digest: e.digest, source: source.name });
        return;
      } catch (err) {
        const fe = toFerryError(err, `chunk ${index}`);
        if (run.signal.aborted || LOCAL.has(fe.code)) throw fe;
        this.stats.failures++;
        this.lastError = fe;
        if (fe.code === 'FERRY_ERR_CHUNK_INVALID' || fe.code === 'FERRY_ERR_CHUNK_MISSING') e.bad.set(source, (e.bad.get(source) ?? 0) + 1);
        if (source.kind === 'http' && LINK_DOWN.has(fe.code)) this.probeUrl = chunkUrl(source.base, e.digest);
        if (partial.offset > before) state.progressed = true;
        this.emit({ type: 'failure', index, digest: e.digest, source: source.name, error: fe });
        errors.push(fe);
      }
    }
    throw errors.find((x) => x.details?.retryAfterMs !== undefined) ?? errors.find((x) => x.retryable) ?? errors[errors.length - 1]!;
  }

  /** Brings the chunk from one source into the cache, verified. */
  private async fromSource(source: Source, e: RunEntry, partial: PartialChunk, signal: AbortSignal): Promise<void> {
    if (source.kind === 'file') {
      const bytes = await readDirChunk(source.dir, e.digest, e.size, signal);
      await this.cache.put(e.digest, bytes);
      await partial.discard();
      this.stats.bytesFromFiles += bytes.length;
      return;
    }
    await fetchHttpChunk(this.ctx, source.base, e, partial, signal);
    if (partial.digestHeld() !== e.digest) {
      this.stats.digestFailures++;
      this.stats.bytesDiscarded += partial.offset;
      this.emit({ type: 'discard', index: e.indexes[0]!, digest: e.digest, source: source.name, bytes: partial.offset, reason: 'digest mismatch' });
      await partial.restart();
      throw new FerryError('FERRY_ERR_CHUNK_INVALID', `${source.name}: chunk ${e.digest} does not match its digest; discarded`, { details: { digest: e.digest } });
    }
    await this.cache.commitPartial(partial, e.digest);
  }
}
