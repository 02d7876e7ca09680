/**
 * Relay options, with every default merged in one place ({@link resolveRelayOptions}). Only the CLI
 * reads argv; it builds a RelayOptions and hands it here.
 */
import type { FastifyBaseLogger } from 'fastify';
import { FerryError, PROTOCOL_LIMITS } from '@ferry/core';
import type { FetcherOptions } from '@ferry/agent';

/** Options of {@link startRelay}. */
export interface RelayOptions {
  /** The upstream ferry server (`https://ferry.example:8443`): check-ins and reports go there. */
  upstream: string;
  /** Where chunks and headers come from (default `<upstream>/repo/`; a CDN in front of the same directory works). */
  upstreamRepo?: string | undefined;
  /** The cache: `chunks/<hex>` and `headers/<hex>` (the repository layout), `partial/`, `queue/`. */
  cacheDir: string;
  /** Listen address (default 0.0.0.0). */
  host?: string;
  /** Listen port (default 8480; 0 picks one). */
  port?: number;
  /** The repository URL announced to agents in check-in answers (default: this relay's own `/repo/`, as the agent reached it). */
  publicRepoUrl?: string | undefined;
  /** Cache size cap in bytes: past it the least recently served chunks are evicted down to 90% (default 20 GiB). */
  maxCacheBytes?: number;
  /** Chunks and headers fetched from upstream at once (default 4); more requests wait their turn. */
  upstreamConcurrency?: number;
  /** Buffered report requests at most (default 10,000); past it reports are refused (503) and the agent keeps them. */
  maxQueuedRequests?: number;
  /** Buffered report bytes at most (default 64 MiB). */
  maxQueuedBytes?: number;
  /** A check-in answered while upstream is down reuses that agent's last answer only if it is younger than this (default 1 h). */
  staleAnswerMs?: number;
  /** A check-in or report forwarded upstream fails after this long (default 30 s). */
  upstreamTimeoutMs?: number;
  /** Retry-After (seconds) sent when upstream is down (default 30). */
  retryAfterSeconds?: number;
  /** How often buffered reports are retried while upstream is down (default 10 s). */
  drainIntervalMs?: number;
  /** Options of the chunk fetcher that fills the cache (stall timeouts, retries; a bandwidth cap is split evenly among the `upstreamConcurrency` fetchers). */
  fetcher?: Partial<Omit<FetcherOptions, 'cacheDir' | 'sources' | 'transport'>>;
  /** Largest JSON request body (default PROTOCOL_LIMITS.jsonBody). */
  bodyLimit?: number;
  /** fastify logger: false, true, pino options or an instance (default false). */
  logger?: boolean | object | FastifyBaseLogger;
  /** Wall clock in ms (tests). */
  now?: () => number;
}

/** Options with defaults filled in. */
export type ResolvedRelayOptions = Required<Omit<RelayOptions, 'upstreamRepo' | 'publicRepoUrl' | 'fetcher'>> & {
  upstreamRepo: string;
  publicRepoUrl: string | undefined;
  fetcher: RelayOptions['fetcher'] & object;
};

function need(ok: boolean, what: string): void {
  if (!ok) throw new FerryError('FERRY_ERR_USAGE', `relay: ${what}`);
}

function httpUrl(v: string, what: string): URL {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new FerryError('FERRY_ERR_USAGE', `relay: ${what} ${JSON.stringify(v)} is not a URL`);
  }
  need(u.protocol === 'http:' || u.protocol === 'https:', `${what} must be http(s)`);
  return u;
}

const withSlash = (u: string): string => (u.endsWith('/') ? u : `${u}/`);

/** Merges the defaults; FERRY_ERR_USAGE for an option out of range. */
export function resolveRelayOptions(o: RelayOptions): ResolvedRelayOptions {
  const upstream = withSlash(httpUrl(o.upstream, 'the upstream').href);
  const r: ResolvedRelayOptions = {
    upstream,
    upstreamRepo: withSlash(httpUrl(o.upstreamRepo ?? new URL('repo/', upstream).href, 'the upstream repository').href),
    cacheDir: o.cacheDir,
    host: o.host ?? '0.0.0.0',
    port: o.port ?? 8480,
    publicRepoUrl: o.publicRepoUrl === undefined ? undefined : withSlash(httpUrl(o.publicRepoUrl, 'the public repository URL').href),
    maxCacheBytes: o.maxCacheBytes ?? 20 * 1024 ** 3,
    upstreamConcurrency: o.upstreamConcurrency ?? 4,
    maxQueuedRequests: o.maxQueuedRequests ?? 10_000,
    maxQueuedBytes: o.maxQueuedBytes ?? 64 * 1024 * 1024,
    staleAnswerMs: o.staleAnswerMs ?? 3_600_000,
    upstreamTimeoutMs: o.upstreamTimeoutMs ?? 30_000,
    retryAfterSeconds: o.retryAfterSeconds ?? 30,
    drainIntervalMs: o.drainIntervalMs ?? 10_000,
    fetcher: o.fetcher ?? {},
    bodyLimit: o.bodyLimit ?? PROTOCOL_LIMITS.jsonBody,
    logger: o.logger ?? false,
    now: o.now ?? Date.now,
  };
  need(r.cacheDir.length > 0, 'a cache directory is needed');
  need(Number.isInteger(r.port) && r.port >= 0 && r.port <= 65535, 'the port must be 0 to 65535');
  need(r.maxCacheBytes > 0, 'the cache size cap must be positive');
  need(Number.isInteger(r.upstreamConcurrency) && r.upstreamConcurrency >= 1 && r.upstreamConcurrency <= 64, 'upstream concurrency must be 1 to 64');
  need(r.maxQueuedRequests >= 1 && r.maxQueuedBytes >= r.bodyLimit, 'the report queue must hold at least one full request');
  need(r.staleAnswerMs >= 0 && r.upstreamTimeoutMs > 0 && r.drainIntervalMs > 0 && r.retryAfterSeconds >= 0, 'timeouts must be positive');
  return r;
}
