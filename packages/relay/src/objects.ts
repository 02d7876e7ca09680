/**
 * The relay's repository cache (docs/protocol.md section 7): `chunks/<hex>` and `headers/<hex>` in
 * the repository layout, filled from the upstream repository on first request. A chunk is brought
 * by the agent's own ChunkFetcher (Range resume with its partial-chunk journal, stall detection,
 * retries, sha256 verification before the final rename), so each one crosses the upstream link once:
 * concurrent requests for the same object join one upstream fetch (single flight), and at most
 * `upstreamConcurrency` objects are fetched at once. Past `maxCacheBytes` the least recently served
 * chunks are evicted.
 */
import { lstat, mkdir, readdir, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { ChunkFetcher, createHttpTransport, downloadHeader, type HttpTransport } from '@ferry/agent';
import { CHUNK_SIZE_MAX, FerryError, digestHex, headerPath, isFerryError, toFerryError, writeFileAtomic, type Digest } from '@ferry/core';
import type { ResolvedRelayOptions } from './options.js';
import { Pool, SingleFlight } from './pool.js';

/** Kinds of repository objects. */
export type ObjectKind = 'chunks' | 'headers';

/** What the cache did (for tests, benches and logs). */
export interface RelayCacheStats {
  /** Objects fetched from upstream (verified and cached). */
  fetched: number;
  /** Requests answered from the cache without waiting for upstream. */
  hits: number;
  /** Requests that joined an upstream fetch already running. */
  joined: number;
  /** Objects refused because upstream served bytes that did not match their digest. */
  refused: number;
  /** Chunks evicted by the size cap. */
  evicted: number;
  /** Bytes in `chunks/`. */
  bytes: number;
}

/** Upstream failures an agent should retry later (the link, not the object). */
function asUpstreamError(err: unknown, what: string): FerryError {
  const fe = toFerryError(err, what);
  if (fe.code === 'FERRY_ERR_CHUNK_MISSING') return new FerryError('FERRY_ERR_NOT_FOUND', `upstream has no ${what}`, { cause: fe });
  if (fe.code === 'FERRY_ERR_ABORTED') return new FerryError('FERRY_ERR_SERVER_BUSY', `the relay is shutting down; ${what} was not fetched`, { cause: fe });
  if (fe.code === 'FERRY_ERR_CHUNK_INVALID' || fe.code === 'FERRY_ERR_NOT_FOUND') return fe;
  if (fe.code.startsWith('FERRY_ERR_FETCH_') || fe.code === 'FERRY_ERR_NETWORK') {
    return new FerryError('FERRY_ERR_UPSTREAM_UNAVAILABLE', `upstream could not deliver ${what}: ${fe.message}`, { cause: fe });
  }
  return fe;
}

/** The relay's cache of chunks and headers. */
export class RelayCache {
  readonly stats: RelayCacheStats = { fetched: 0, hits: 0, joined: 0, refused: 0, evicted: 0, bytes: 0 };
  private readonly flights = new SingleFlight<string>();
  private readonly shutdown = new AbortController();

  private constructor(
    private readonly o: ResolvedRelayOptions,
    private readonly transport: HttpTransport,
    private readonly fetchers: ChunkFetcher[],
    private readonly pool: Pool<ChunkFetcher>,
  ) {}

  /** Opens the cache directory and the upstream fetchers (all before any fetch runs: opening a cache sweeps its temp files). */
  static async open(o: ResolvedRelayOptions): Promise<RelayCache> {
    await mkdir(join(o.cacheDir, 'headers'), { recursive: true }).catch((err: unknown) => {
      throw toFerryError(err, `creating the relay cache ${o.cacheDir}`);
    });
    const transport = createHttpTransport({ maxSockets: o.upstreamConcurrency });
    const fetchers: ChunkFetcher[] = [];
    try {
      // a bandwidth cap is shared evenly by the fetchers (each has its own token bucket)
      const cap = o.fetcher.maxBytesPerSecond === undefined ? {} : { maxBytesPerSecond: o.fetcher.maxBytesPerSecond / o.upstreamConcurrency };
      for (let i = 0; i < o.upstreamConcurrency; i++) {
        fetchers.push(await ChunkFetcher.open({ retries: 1, minRetryMs: 200, maxRetryMs: 2000, ...o.fetcher, ...cap, concurrency: 1, cacheDir: o.cacheDir, sources: [o.upstreamRepo], transport }));
      }
    } catch (err) {
      transport.close();
      throw err;
    }
    const cache = new RelayCache(o, transport, fetchers, new Pool(fetchers));
    cache.stats.bytes = await cache.chunkBytes();
    return cache;
  }

  /** Path of an object in the cache. */
  path(kind: ObjectKind, digest: Digest): string {
    return join(this.o.cacheDir, kind, digestHex(digest));
  }

  /**
   * Makes sure the object is in the cache, fetching it from upstream once however many ask.
   * FERRY_ERR_NOT_FOUND when upstream lacks it, FERRY_ERR_CHUNK_INVALID when upstream served wrong
   * bytes (nothing cached), FERRY_ERR_UPSTREAM_UNAVAILABLE when the link failed.
   */
  async ensure(kind: ObjectKind, digest: Digest): Promise<void> {
    const key = `${kind}/${digestHex(digest)}`;
    if (!this.flights.has(key) && (await this.cached(kind, digest))) {
      this.stats.hits++;
      return;
    }
    if (this.flights.has(key)) this.stats.joined++;
    await this.flights.run(key, () => this.pool.use((f) => (kind === 'chunks' ? this.fetchChunk(f, digest) : this.fetchHeader(digest))));
  }

  /** Stops upstream fetches and closes connections. */
  async close(): Promise<void> {
    this.shutdown.abort(new FerryError('FERRY_ERR_ABORTED', 'the relay is shutting down'));
    await Promise.allSettled(this.flights.all());
    for (const f of this.fetchers) f.close();
    this.transport.close();
  }

  private async cached(kind: ObjectKind, digest: Digest): Promise<boolean> {
    const path = this.path(kind, digest);
    const st = await lstat(path).catch(() => undefined);
    if (!st?.isFile()) return false;
    const now = new Date();
    if (kind === 'chunks') await utimes(path, now, now).catch(() => undefined); // least recently served goes first
    return true;
  }

  private async fetchChunk(fetcher: ChunkFetcher, digest: Digest): Promise<void> {
    if (await this.cached('chunks', digest)) return;
    const what = `chunk ${digest}`;
    try {
      const size = await this.probeSize(digest);
      await fetcher.fetch([{ digest, size }], { signal: this.shutdown.signal });
      this.stats.fetched++;
      this.stats.bytes += size;
    } catch (err) {
      if (isFerryError(err, 'FERRY_ERR_CHUNK_INVALID')) this.stats.refused++;
      throw asUpstreamError(err, what);
    }
    if (this.stats.bytes > this.o.maxCacheBytes) await this.evict();
  }

  /**
   * The size of an upstream chunk (a request for its first byte: `Content-Range: bytes 0-0/<size>`),
   * capped at CHUNK_SIZE_MAX. Only a hint: the fetcher verifies the bytes against the digest.
   */
  private async probeSize(digest: Digest): Promise<number> {
    const url = new URL(`chunks/${digestHex(digest)}`, this.o.upstreamRepo);
    const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(this.o.upstreamTimeoutMs)]);
    let res;
    try {
      res = await this.transport.get(url, { range: 'bytes=0-0', 'accept-encoding': 'identity' }, signal);
    } catch (err) {
      throw new FerryError('FERRY_ERR_UPSTREAM_UNAVAILABLE', `upstream ${url.origin} is unreachable: ${(err as Error).message}`, { cause: err });
    }
    try {
      if (res.status === 404) throw new FerryError('FERRY_ERR_NOT_FOUND', `upstream has no chunk ${digest}`);
      const total = res.status === 206 ? /\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''))?.[1] : res.status === 200 ? res.headers['content-length'] : undefined;
      const size = Number(total);
      if (total === undefined || !Number.isSafeInteger(size) || size < 1 || size > CHUNK_SIZE_MAX) {
        throw new FerryError('FERRY_ERR_UPSTREAM_UNAVAILABLE', `upstream answered HTTP ${res.status} for the size of chunk ${digest}`);
      }
      if (res.status === 206) for await (const _ of res.body); // one byte: lets the socket be reused
      return size;
    } finally {
      if (res.status !== 206) res.abort();
    }
  }

  /** A header: read under HEADER_MAX_BYTES, its sha256 checked against its id before it is cached. */
  private async fetchHeader(digest: Digest): Promise<void> {
    if (await this.cached('headers', digest)) return;
    const url = new URL(headerPath(digest), this.o.upstreamRepo);
    let bytes: Buffer;
    try {
      bytes = await downloadHeader(this.transport, url, digest, { signal: this.shutdown.signal, timeoutMs: this.o.upstreamTimeoutMs });
    } catch (err) {
      if (isFerryError(err, 'FERRY_ERR_BUNDLE_INVALID') || isFerryError(err, 'FERRY_ERR_LIMIT_EXCEEDED')) {
        this.stats.refused++;
        throw new FerryError('FERRY_ERR_CHUNK_INVALID', `upstream served header ${digest} with other bytes; refused (${err.message})`, { details: { digest }, cause: err });
      }
      throw asUpstreamError(err, `header ${digest}`);
    }
    await writeFileAtomic(this.path('headers', digest), bytes, { mkdir: false });
    this.stats.fetched++;
  }

  private async chunkBytes(): Promise<number> {
    let n = 0;
    for (const name of await readdir(join(this.o.cacheDir, 'chunks'))) {
      const st = await stat(join(this.o.cacheDir, 'chunks', name)).catch(() => undefined);
      if (st?.isFile()) n += st.size;
    }
    return n;
  }

  /** Removes the least recently served chunks (none being fetched) until the cache is under 90% of its cap. */
  private async evict(): Promise<void> {
    const dir = join(this.o.cacheDir, 'chunks');
    const files: { name: string; size: number; at: number }[] = [];
    for (const name of await readdir(dir)) {
      if (name.startsWith('.') || this.flights.has(`chunks/${name}`)) continue;
      const st = await stat(join(dir, name)).catch(() => undefined);
      if (st?.isFile()) files.push({ name, size: st.size, at: st.mtimeMs });
    }
    files.sort((a, b) => a.at - b.at);
    const target = this.o.maxCacheBytes * 0.9;
    for (const f of files) {
      if (this.stats.bytes <= target) break;
      await rm(join(dir, f.name), { force: true });
      this.stats.bytes -= f.size;
      this.stats.evicted++;
    }
  }
}
