/** The admin API (docs/protocol.md section 6): agents and publisher/operator tokens. */
import type { FastifyInstance } from 'fastify';
import { AGENT_ID_RE, TOKEN_NAME_RE, FerryError, type CreateAgentAnswer, type CreateTokenAnswer } from '@ferry/core';
import { protocol } from '@ferry/core/protocol';
import { authorize } from '../auth.js';
import type { ServerContext } from '../context.js';

/** Registers the admin routes. */
export function adminRoutes(ctx: ServerContext) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.post('/v1/agents', async (request, reply): Promise<CreateAgentAnswer> => {
      await authorize(ctx, request, ['admin']);
      const { id } = protocol.createAgentRequest(request.body);
      const token = await ctx.state.agents.create(id);
      void reply.code(201);
      return { id, token };
    });
    app.post('/v1/tokens', async (request, reply): Promise<CreateTokenAnswer> => {
      await authorize(ctx, request, ['admin']);
      const { role, name } = protocol.createTokenRequest(request.body);
      const token = await ctx.state.tokens.create(role, name);
      void reply.code(201);
      return { name, role, token };
    });
    app.delete<{ Params: { name: string } }>('/v1/tokens/:name', async (request, reply) => {
      await authorize(ctx, request, ['admin']);
      const { name } = request.params;
      const agentToken = name.startsWith('agent:') && AGENT_ID_RE.test(name.slice(6));
      if (!(TOKEN_NAME_RE.test(name) || agentToken) || name === 'admin') throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', `${JSON.stringify(name.slice(0, 70))} is not a token name that can be revoked`);
      await ctx.state.tokens.revoke(name);
      return reply.code(204).send();
    });
  };
}
