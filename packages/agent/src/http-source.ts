/**
 * One transfer of one chunk from an HTTP repository into its partial bytes (docs/protocol.md
 * section 2): resume with `Range: bytes=<have>-` and `If-Range: "<hex>"`, check Content-Range on a
 * 206, treat a 200 to a ranged request as a restart of the chunk (never an append), refuse a 206
 * at the wrong offset (restarting the chunk), count the body as it arrives and refuse it the moment
 * it passes the chunk's size, watch for stalls, and checkpoint the bytes while they flow and when
 * the transfer stops, however it stops.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { FerryError, digestHex, toFerryError, type Digest } from '@ferry/core';
import type { TokenBucket } from './bucket.js';
import type { HttpResponse, HttpTransport } from './http.js';
import type { Clock } from './options.js';
import type { PartialChunk } from './partial.js';
import type { LinkStats, RateMeter } from './progress.js';
import { chunkUrl } from './sources.js';
import { StallWatch, type StallLimits } from './watchdog.js';

/** What a transfer shares with the fetcher. */
export interface TransferContext {
  transport: HttpTransport;
  bucket: TokenBucket | undefined;
  clock: Clock;
  limits: StallLimits;
  checkpointMs: number;
  stats: LinkStats;
  meter: RateMeter;
  /** Time from request to response headers, ms. */
  onRtt(ms: number): void;
  /** Held bytes were thrown away (a restart or a refused answer). */
  onDiscard(bytes: number, reason: string): void;
  /** `n` bytes arrived and are held (progress, request pacing). */
  onBytes(n: number): void;
}

/** The chunk a transfer is for. */
export interface ChunkJob {
  digest: Digest;
  size: number;
}

const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/** Milliseconds a Retry-After header asks for (seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value: string | string[] | undefined, wallNow: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - wallNow) : undefined;
}

/** `bytes a-b/n` (or `bytes a-b/*`). */
function parseContentRange(v: string | undefined): { start: number; end: number; total: number | undefined } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(v?.trim() ?? '');
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

function contentLength(h: IncomingHttpHeaders): number | undefined {
  return h['content-length'] === undefined ? undefined : Number(h['content-length']);
}

/** Refuses an unusable status (the source lacks the chunk, is busy, or refuses us). */
function statusError(res: HttpResponse, url: URL, wallNow: number): FerryError {
  const { status } = res;
  if (status === 404 || status === 410) return new FerryError('FERRY_ERR_CHUNK_MISSING', `${url.href}: ${status}`, { details: { status } });
  const retryAfterMs = parseRetryAfter(res.headers['retry-after'], wallNow);
  return new FerryError('FERRY_ERR_FETCH_HTTP', `${url.href}: HTTP ${status}${retryAfterMs !== undefined ? ` (retry after ${Math.round(retryAfterMs / 1000)} s)` : ''}`, {
    retryable: RETRYABLE_STATUS.has(status),
    details: { status, retryAfterMs },
  });
}

/**
 * Checks an answer against what was asked (`have` bytes held) and returns how many body bytes it
 * must carry. Restarts the partial chunk where the answer says so.
 */
async function checkAnswer(ctx: TransferContext, res: HttpResponse, url: URL, job: ChunkJob, partial: PartialChunk): Promise<number> {
  const have = partial.offset;
  const restart = async (reason: string): Promise<void> => {
    ctx.stats.restarts++;
    ctx.onDiscard(partial.offset, reason);
    await partial.restart();
  };
  const encoding = res.headers['content-encoding'];
  if ((res.status === 200 || res.status === 206) && encoding !== undefined && encoding !== 'identity') {
    throw new FerryError('FERRY_ERR_FETCH_HTTP', `${url.href}: the answer is ${encoding}-encoded`, { retryable: false, details: { status: res.status } });
  }
  if (res.status === 200) {
    const length = contentLength(res.headers);
    if (length !== undefined && length !== job.size) throw new FerryError('FERRY_ERR_CHUNK_INVALID', `${url.href} is ${length} bytes, the chunk ${job.size}`, { details: { digest: job.digest } });
    if (have > 0) await restart('a 200 answered a Range request');
    return job.size;
  }
  if (res.status === 206) {
    const cr = parseContentRange(res.headers['content-range'] as string | undefined);
    if (!cr) throw new FerryError('FERRY_ERR_FETCH_RANGE', `${url.href}: a 206 without a valid Content-Range`);
    if (cr.total !== undefined && cr.total !== job.size) throw new FerryError('FERRY_ERR_CHUNK_INVALID', `${url.href} is ${cr.total} bytes, the chunk ${job.size}`, { details: { digest: job.digest } });
    if (cr.start !== have) {
      await restart(`a 206 starting at ${cr.start}, not ${have}`);
      throw new FerryError('FERRY_ERR_FETCH_RANGE', `${url.href}: asked for bytes from ${have}, got a range from ${cr.start}`, { details: { asked: have, got: cr.start } });
    }
    const length = contentLength(res.headers);
    if (cr.end < cr.start || cr.end >= job.size || (length !== undefined && length !== cr.end - cr.start + 1)) {
      throw new FerryError('FERRY_ERR_FETCH_RANGE', `${url.href}: Content-Range ${String(res.headers['content-range'])} does not fit a ${job.size}-byte chunk`);
    }
    return cr.end - cr.start + 1;
  }
  if (res.status === 416) {
    await restart('416: the source has no bytes past our offset');
    throw new FerryError('FERRY_ERR_FETCH_RANGE', `${url.href}: 416 for bytes from ${have}`);
  }
  throw statusError(res, url, ctx.clock.wall());
}

/** Bytes of a capped read kept at a time: each waits for its share of the cap, then is appended. */
const CAP_PIECE = 4096;

async function keep(ctx: TransferContext, partial: PartialChunk, bytes: Uint8Array): Promise<void> {
  await partial.append(bytes);
  ctx.onBytes(bytes.length);
}

/**
 * Waits for the cap to pass `n` bytes. When the transfer stops during the wait, the rest of the
 * read is kept first (`keepRest`): those bytes have crossed the link already, and a resume must
 * not ask for them again.
 */
async function takeOrKeep(bucket: TokenBucket, watch: StallWatch, signal: AbortSignal, n: number, keepRest: () => Promise<void>): Promise<void> {
  watch.pause();
  try {
    await bucket.take(n, signal);
  } catch (err) {
    await keepRest();
    throw err;
  }
  watch.resume();
}

/** Reads the body into the partial chunk; returns normally once `expected` bytes are held. */
async function readBody(ctx: TransferContext, res: HttpResponse, url: URL, partial: PartialChunk, expected: number, watch: StallWatch, signal: AbortSignal): Promise<void> {
  const start = partial.offset;
  let lastCheckpoint = ctx.clock.now();
  for await (const buf of res.body) {
    watch.bytes(buf.length);
    ctx.stats.bytesReceived += buf.length;
    ctx.meter.add(buf.length, ctx.clock.now());
    const got = partial.offset - start;
    if (got + buf.length > expected) {
      res.abort();
      ctx.onDiscard(got + buf.length, 'an answer longer than the chunk');
      await partial.truncateTo(start);
      throw new FerryError('FERRY_ERR_CHUNK_INVALID', `${url.href}: the answer runs past the ${expected} bytes expected`);
    }
    // under a cap a read can hold far more than the cap passes in a second (a whole chunk, on a
    // link faster than the cap): it is kept a piece at a time as the cap passes each, so the
    // checkpoints (what a kill -9 resumes from) follow the cap, not whole reads
    for (let at = 0; at < buf.length; ) {
      const piece = ctx.bucket ? buf.subarray(at, at + CAP_PIECE) : buf;
      if (ctx.bucket) await takeOrKeep(ctx.bucket, watch, signal, piece.length, () => keep(ctx, partial, buf.subarray(at)));
      await keep(ctx, partial, piece);
      at += piece.length;
      if (ctx.clock.now() - lastCheckpoint >= ctx.checkpointMs) {
        await partial.checkpoint();
        lastCheckpoint = ctx.clock.now();
      }
    }
  }
  const got = partial.offset - start;
  if (got < expected) {
    ctx.stats.resets++;
    throw new FerryError('FERRY_ERR_NETWORK', `${url.href}: the answer ended after ${got} of ${expected} bytes`);
  }
}

/** Classifies a failure of the request or the body. */
function classify(err: unknown, url: URL, ctx: TransferContext, stalled: string | undefined, signal: AbortSignal): FerryError {
  if (signal.aborted) return toFerryError(signal.reason, url.href);
  if (stalled !== undefined) {
    ctx.stats.stalls++;
    return new FerryError('FERRY_ERR_FETCH_STALLED', `${url.href}: ${stalled}`, { cause: err });
  }
  if (err instanceof FerryError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (err as Error).message === 'aborted') ctx.stats.resets++;
  return new FerryError('FERRY_ERR_NETWORK', `${url.href}: ${(err as Error).message ?? String(err)}`, { cause: err, details: { errno: code } });
}

/**
 * Fetches the rest of a chunk from `base` into `partial`. Returns when the partial chunk holds
 * `job.size` bytes (not yet verified); throws a FerryError otherwise, with what arrived checkpointed.
 */
export async function fetchHttpChunk(ctx: TransferContext, base: URL, job: ChunkJob, partial: PartialChunk, signal: AbortSignal): Promise<void> {
  if (partial.offset >= job.size) return;
  const url = chunkUrl(base, job.digest);
  const headers: Record<string, string> = { 'accept-encoding': 'identity' };
  if (partial.offset > 0) {
    headers.range = `bytes=${partial.offset}-`;
    headers['if-range'] = `"${digestHex(job.digest)}"`;
  }
  const local = new AbortController();
  const onAbort = (): void => local.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  let stalled: string | undefined;
  const watch = new StallWatch(ctx.limits, ctx.clock, (reason) => {
    stalled = reason;
    local.abort(new FerryError('FERRY_ERR_FETCH_STALLED', reason));
  });
  let res: HttpResponse | undefined;
  ctx.stats.requests++;
  try {
    const t0 = ctx.clock.now();
    res = await ctx.transport.get(url, headers, local.signal);
    ctx.onRtt(ctx.clock.now() - t0);
    const expected = await checkAnswer(ctx, res, url, job, partial);
    await readBody(ctx, res, url, partial, expected, watch, local.signal);
  } catch (err) {
    res?.abort();
    throw classify(err, url, ctx, stalled, signal);
  } finally {
    watch.stop();
    signal.removeEventListener('abort', onAbort);
    await partial.checkpoint();
  }
}
