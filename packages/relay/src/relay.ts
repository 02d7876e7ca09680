/**
 * A running relay (docs/protocol.md section 7): a fastify app answering agents as the server does,
 * with the repository served from the relay's cache (the server's own file serving: Range, ETag,
 * immutable) and the agent API forwarded upstream. `close` is the graceful shutdown: stop
 * accepting, let answers in flight finish, stop upstream fetches (a request waiting on one gets
 * 503), close connections; buffered reports stay on disk for the next start.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { FerryError, digestFromHex } from '@ferry/core';
import { clientErrorHandler, installErrorHandlers, serveRepoObject, type RepoParams } from '@ferry/server';
import { join } from 'node:path';
import { agentRelayRoutes, type AgentRelayContext } from './agents.js';
import { RelayCache, type ObjectKind } from './objects.js';
import { resolveRelayOptions, type RelayOptions } from './options.js';
import { ReportQueue } from './queue.js';
import { Upstream } from './upstream.js';

/** A listening relay. */
export interface RunningRelay {
  app: FastifyInstance;
  /** `http://host:port` it listens on. */
  url: string;
  cache: RelayCache;
  queue: ReportQueue;
  stats: AgentRelayContext['stats'];
  /** Forwards buffered reports now; true when none is left. */
  drain(): Promise<boolean>;
  /** Graceful shutdown. */
  close(): Promise<void>;
}

const KINDS = new Set<string>(['chunks', 'headers']);

function createApp(o: ReturnType<typeof resolveRelayOptions>): FastifyInstance {
  const logger = o.logger as FastifyBaseLogger & { child?: unknown };
  const log = typeof logger === 'object' && typeof logger.child === 'function' ? { loggerInstance: logger } : { logger: o.logger };
  return Fastify({
    ...(log as object),
    bodyLimit: o.bodyLimit,
    connectionTimeout: 60_000,
    keepAliveTimeout: 5_000,
    requestTimeout: 600_000,
    forceCloseConnections: 'idle',
    http: { headersTimeout: 15_000, requestTimeout: 600_000 },
    clientErrorHandler,
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;
}

/** Starts a relay. */
export async function startRelay(options: RelayOptions): Promise<RunningRelay> {
  const o = resolveRelayOptions(options);
  const cache = await RelayCache.open(o);
  const queue = await ReportQueue.open(join(o.cacheDir, 'queue'), { maxRequests: o.maxQueuedRequests, maxBytes: o.maxQueuedBytes });
  const ctx: AgentRelayContext = { options: o, upstream: new Upstream(o.upstream, o.upstreamTimeoutMs), queue, stats: { forwarded: 0, queued: 0, staleAnswers: 0, delivered: 0, dropped: 0 } };
  const app = createApp(o);
  const agents = agentRelayRoutes(ctx);
  let timer: NodeJS.Timeout | undefined;
  try {
    installErrorHandlers(app);
    app.route<{ Params: RepoParams }>({
      method: ['GET', 'HEAD'],
      url: '/repo/:kind/:hex',
      exposeHeadRoute: false,
      handler: async (request: FastifyRequest<{ Params: RepoParams }>, reply: FastifyReply) => {
        const { kind, hex } = request.params;
        if (!KINDS.has(kind)) throw new FerryError('FERRY_ERR_NOT_FOUND', `no repository folder ${kind.slice(0, 40)}`);
        await cache.ensure(kind as ObjectKind, digestFromHex(hex));
        return serveRepoObject(request, reply, o.cacheDir);
      },
    });
    await app.register(agents.plugin);
    await app.listen({ host: o.host, port: o.port });
  } catch (err) {
    await app.close();
    await cache.close();
    throw err;
  }
  timer = setInterval(() => void agents.drain().catch((err: unknown) => app.log.warn({ err }, 'forwarding buffered reports failed')), o.drainIntervalMs);
  timer.unref();
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host === '0.0.0.0' ? '127.0.0.1' : o.host;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      clearInterval(timer);
      // stop accepting and let answers in flight finish; a request still waiting on the upstream
      // link (minutes, on a DIL link) is not waited for: its fetch stops, it gets 503, its bytes stay in partial/
      const stopping = app.close();
      await cache.close();
      await stopping;
    })());
  return { app, url: `http://${host}:${port}`, cache, queue, stats: ctx.stats, drain: agents.drain, close };
}
