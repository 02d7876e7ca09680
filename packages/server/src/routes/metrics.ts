/** `GET /metrics` (docs/protocol.md section 5): Prometheus text format, for an operator, publisher or admin token. */
import type { FastifyInstance } from 'fastify';
import { authorize } from '../auth.js';
import type { ServerContext } from '../context.js';
import { OPERATORS } from './operator.js';

/** Registers the metrics route. */
export function metricsRoute(ctx: ServerContext) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.get('/metrics', async (request, reply) => {
      await authorize(ctx, request, OPERATORS);
      const { registry } = ctx.metrics;
      void reply.type(registry.contentType);
      return registry.metrics();
    });
  };
}
