/**
 * Server options, with every default merged in one place (resolveOptions). Only the CLI reads
 * argv, env and config files; it builds a ServerOptions and hands it here.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { LoggerOptions } from 'pino';
import type { FastifyBaseLogger } from 'fastify';
import { PROTOCOL_LIMITS, type PublicKey } from '@ferry/core';
import type { EventOptions } from './events.js';

/** Timeouts in milliseconds (fastify sets none by default; a slow client must not hold a socket). */
export interface TimeoutOptions {
  /** Idle socket timeout (default 60 s). */
  connection: number;
  /** Whole request received, headers and body (default 10 min: pushes carry large contents). */
  request: number;
  /** Request headers received (default 15 s). */
  headers: number;
  /** Idle keep-alive connection (default 5 s). */
  keepAlive: number;
  /** How often node checks the two above (default 1 s). */
  checkInterval: number;
}

/** Bundle building. */
export interface BuildOptions {
  /** Bundles built at once by this process (default 1). */
  concurrency: number;
  /** Jobs waiting at most; past it an agent is told to come back later (default 64). */
  maxQueued: number;
  /** A claim older than this is taken over (its builder died) (default 30 min). */
  staleMs: number;
  /** A failed build is queued again when an agent asks after this delay (default 10 min). */
  retryFailedMs: number;
  /** How often to look for jobs other servers queued (default 2 s). */
  pollMs: number;
  /** Patch worker threads per build (default: the differ's). */
  workers: number | undefined;
  /** zstd level of payloads (default: the differ's, 19). */
  level: number | undefined;
  /** Expiry the server never signs past is the release's own; chunk size of built bundles (default the differ's). */
  chunkSize: number | undefined;
  /**
   * Sign headers' plain document instead of its compressed form (version 4, docs/format.md
   * section 4.1), for a fleet whose agents predate version 4 and refuse it (default false).
   */
  plainHeader: boolean;
}

/** Rate limit per token (or address when there is none) on the API (not on the repository). */
export interface RateLimitOptions {
  max: number;
  /** Window in milliseconds. */
  windowMs: number;
}

/** Options of a ferry server. */
export interface ServerOptions {
  /** The data directory: store/, repo/, state.db, keys/, admin.token. */
  dataDir: string;
  host?: string;
  port?: number;
  /** `postgres://...`; without it the state is SQLite in the data directory. */
  databaseUrl?: string;
  /** TLS certificate and key (PEM). */
  tls?: { cert: Buffer | string; key: Buffer | string };
  /** Keys trusted to sign release statements (the release role). At least one. */
  releaseKeys: PublicKey[];
  /** How many distinct release keys must sign (default 1). */
  releaseThreshold?: number;
  /** Repository base URL announced to agents (default: this server's `/repo/`). */
  repoUrl?: string;
  /**
   * Pending connections the kernel queues (listen backlog; default 4096, capped by
   * net.core.somaxconn): a fleet reconnecting after an outage must not get its SYNs dropped
   * (each drop costs the agent a 1 s, then 3 s retransmission).
   */
  backlog?: number;
  /** Seconds between an agent's check-ins (default 60). */
  checkinInterval?: number;
  /** Seconds an agent waits for a bundle being built (default 5). */
  buildRetryAfter?: number;
  timeouts?: Partial<TimeoutOptions>;
  build?: Partial<BuildOptions>;
  rateLimit?: Partial<RateLimitOptions> | false;
  /** Largest JSON body (default 1 MiB). */
  bodyLimit?: number;
  /** The dashboard's live events: client and buffer bounds, pacing. */
  events?: Partial<EventOptions>;
  /** Export the process's own metrics (CPU, memory, event loop) at /metrics too (default true). */
  processMetrics?: boolean;
  /**
   * pino options, a logger, or false (default: info level to stdout). Each answered request is
   * logged at debug (app.ts RequestLogAtDebug); refused ones at info, failed ones at error.
   */
  logger?: LoggerOptions | FastifyBaseLogger | boolean;
  /** Names this process in bundle claims (default host:pid:random). */
  instanceId?: string;
  /** Clock in unix milliseconds (tests inject one). */
  now?: () => number;
}

/** Options with every default filled in. */
export interface ResolvedOptions extends Required<Omit<ServerOptions, 'databaseUrl' | 'tls' | 'repoUrl' | 'timeouts' | 'build' | 'rateLimit' | 'events'>> {
  databaseUrl: string | undefined;
  tls: ServerOptions['tls'];
  repoUrl: string | undefined;
  timeouts: TimeoutOptions;
  build: BuildOptions;
  rateLimit: RateLimitOptions | false;
  events: EventOptions;
}

/** Merges the defaults (the one place they live). */
export function resolveOptions(o: ServerOptions): ResolvedOptions {
  return {
    dataDir: o.dataDir,
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 8080,
    databaseUrl: o.databaseUrl,
    tls: o.tls,
    releaseKeys: o.releaseKeys,
    releaseThreshold: o.releaseThreshold ?? 1,
    repoUrl: o.repoUrl,
    backlog: o.backlog ?? 4096,
    checkinInterval: o.checkinInterval ?? 60,
    buildRetryAfter: o.buildRetryAfter ?? 5,
    timeouts: { connection: 60_000, request: 600_000, headers: 15_000, keepAlive: 5_000, checkInterval: 1_000, ...o.timeouts },
    build: { concurrency: 1, maxQueued: 64, staleMs: 30 * 60_000, retryFailedMs: 10 * 60_000, pollMs: 2_000, workers: undefined, level: undefined, chunkSize: undefined, plainHeader: false, ...o.build },
    rateLimit: o.rateLimit === false ? false : { max: 600, windowMs: 60_000, ...o.rateLimit },
    bodyLimit: o.bodyLimit ?? PROTOCOL_LIMITS.jsonBody,
    events: { maxClients: 32, maxBuffered: 4 * 1024 * 1024, flushMs: 500, heartbeatMs: 15_000, summaryMs: 2_000, ...o.events },
    processMetrics: o.processMetrics ?? true,
    logger: o.logger ?? true,
    instanceId: o.instanceId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`,
    now: o.now ?? Date.now,
  };
}
