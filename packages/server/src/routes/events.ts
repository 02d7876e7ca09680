/**
 * `GET /v1/events` (docs/protocol.md section 5): the dashboard's live feed, server-sent events
 * (events.ts). The token may come as `?token=` because EventSource cannot set headers (the
 * request log never shows it: app.ts redacts it).
 */
import type { FastifyInstance } from 'fastify';
import { authorizeToken, bearerOrQuery } from '../auth.js';
import type { ServerContext } from '../context.js';
import type { EventHub } from '../events.js';
import { OPERATORS } from './operator.js';

/** Registers the live events route. */
export function eventRoutes(ctx: ServerContext, hub: EventHub) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.get('/v1/events', async (request, reply) => {
      await authorizeToken(ctx, bearerOrQuery(request), OPERATORS);
      hub.admit();
      // from here on the stream is ours: fastify neither answers nor times it out
      reply.hijack();
      try {
        await hub.attach(reply.raw);
      } catch (err) {
        request.log.error({ err }, 'live events: the stream could not start');
        reply.raw.destroy();
      }
    });
  };
}
