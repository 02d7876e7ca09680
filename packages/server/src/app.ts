/**
 * The fastify app: timeouts and body limits set (fastify has no timeouts by default), errors
 * answered as ferry error bodies, the repository routes without authentication, and the API
 * routes behind a per-token rate limit. Every group of routes is a plugin, so more (the
 * operator's views) register the same way: `app.register(plugin(ctx))`.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { LoggerOptions } from 'pino';
import { FerryError } from '@ferry/core';
import { bearerOrQuery } from './auth.js';
import type { ServerContext } from './context.js';
import { clientErrorHandler, installErrorHandlers } from './http-errors.js';
import { hashToken } from './state/tokens.js';
import { EventHub } from './events.js';
import { adminRoutes } from './routes/admin.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { eventRoutes } from './routes/events.js';
import { metricsRoute } from './routes/metrics.js';
import { operatorRoutes } from './routes/operator.js';
import { agentRoutes } from './routes/agent.js';
import { publishRoutes } from './routes/publish.js';
import { releaseRoutes } from './routes/releases.js';
import { repoRoutes } from './routes/repo.js';

/** A request URL as logs show it: a `token=` query value (the live events' token) is hidden. */
export function redactUrl(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/g, '$1[redacted]');
}

/** What the request log shows of a request (fastify's fields, the URL redacted). */
function requestSerializer(request: FastifyRequest): Record<string, unknown> {
  return { method: request.method, url: redactUrl(request.url), host: request.host, remoteAddress: request.ip, remotePort: request.socket?.remotePort };
}

function loggerOptions(logger: ServerContext['options']['logger']): { logger?: unknown; loggerInstance?: FastifyBaseLogger } {
  if (typeof logger === 'object' && logger !== null && typeof (logger as FastifyBaseLogger).info === 'function' && typeof (logger as FastifyBaseLogger).child === 'function') {
    return { loggerInstance: logger as FastifyBaseLogger };
  }
  if (logger === false) return { logger };
  const o = (typeof logger === 'object' && logger !== null ? logger : {}) as LoggerOptions;
  return { logger: { ...o, serializers: { ...o.serializers, req: requestSerializer } } };
}

/** The fastify instance with its server options (timeouts, TLS, limits). */
function createFastify(ctx: ServerContext): FastifyInstance {
  const { timeouts, tls, bodyLimit } = ctx.options;
  const serverOptions = { headersTimeout: timeouts.headers, requestTimeout: timeouts.request, connectionsCheckingInterval: timeouts.checkInterval };
  return Fastify({
    ...(loggerOptions(ctx.options.logger) as object),
    bodyLimit,
    connectionTimeout: timeouts.connection,
    keepAliveTimeout: timeouts.keepAlive,
    requestTimeout: timeouts.request,
    forceCloseConnections: 'idle',
    logController: new RequestLogAtDebug(),
    // requests that arrive while closing get a ferry error body (installShutdownAnswer), not fastify's
    return503OnClosing: false,
    http: serverOptions,
    ...(tls ? { https: { ...serverOptions, cert: tls.cert, key: tls.key } } : {}),
    clientErrorHandler,
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;
}

/**
 * The API routes behind the rate limit: agents, releases, admin, the operator's views and metrics.
 * Publishing is not limited by count: a push sends one request per content the server lacks
 * (thousands for a real image), and those routes refuse anything but a publisher token.
 */
function apiRoutes(ctx: ServerContext, hub: EventHub) {
  return async function plugin(api: FastifyInstance): Promise<void> {
    if (ctx.options.rateLimit) {
      await api.register(rateLimit, {
        max: ctx.options.rateLimit.max,
        timeWindow: ctx.options.rateLimit.windowMs,
        // no x-ratelimit-* on answers under the limit: no agent reads them, and a check-in over a
        // DIL link pays for every header byte; a 429 still carries Retry-After
        addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
        keyGenerator: (request: FastifyRequest) => {
          const token = bearerOrQuery(request);
          return token ? `t:${hashToken(token)}` : `a:${request.ip}`;
        },
        errorResponseBuilder: (_request, c) => new FerryError('FERRY_ERR_RATE_LIMITED', `more than ${c.max} requests in ${Math.round(Number(c.ttl) / 1000)} s; retry after ${c.after}`),
      });
    }
    await api.register(agentRoutes(ctx));
    await api.register(releaseRoutes(ctx));
    await api.register(adminRoutes(ctx));
    await api.register(operatorRoutes(ctx));
    await api.register(eventRoutes(ctx, hub));
    await api.register(metricsRoute(ctx));
  };
}

/**
 * While the server shuts down, a request that still arrives (pipelined, or on a busy keep-alive
 * connection) is answered 503 FERRY_ERR_SERVER_BUSY with Retry-After, and its connection closed.
 */
function installShutdownAnswer(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    reply.header('connection', 'close');
    throw new FerryError('FERRY_ERR_SERVER_BUSY', 'the server is shutting down; retry (another server may answer)');
  });
}

/**
 * Fastify's request log at debug instead of info: by default it writes two lines a request, which
 * at a fleet's check-in rate cost more CPU than a check-in's SQL. A request that ends in an error
 * is still logged at error, and a refused or failed one by the error handler (http-errors.ts).
 */
class RequestLogAtDebug extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, _request: FastifyRequest, reply: FastifyReply): void {
    if (error) reply.log.error({ res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    else reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}

/** Builds the app (not listening yet); the caller registers more plugins, then listens. */
export async function buildApp(ctx: ServerContext): Promise<FastifyInstance> {
  const app = createFastify(ctx);
  installErrorHandlers(app);
  installShutdownAnswer(app);
  ctx.metrics.install(app);
  const { state, options } = ctx;
  const hub = new EventHub({ state, events: options.events, now: options.now, checkinInterval: options.checkinInterval, log: app.log, onClients: (n) => ctx.metrics.sseClients.set(n) });
  // live streams never end by themselves: close them first, or closing would wait for them
  app.addHook('preClose', async () => hub.close());
  await app.register(repoRoutes(ctx));
  await app.register(dashboardRoutes());
  await app.register(publishRoutes(ctx));
  await app.register(apiRoutes(ctx, hub));
  return app;
}
