/**
 * The operator API (docs/protocol.md section 5): agents, channels, releases and bundles, for
 * operator, publisher and admin tokens. Answers are the views of state/views.ts.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AGENTS_PAGE_MAX, AGENT_ID_RE, FerryError, type AgentDetailAnswer, type AgentsAnswer, type BundlesAnswer, type ChannelsAnswer, type ReleasesAnswer } from '@ferry/core';
import { authorize } from '../auth.js';
import type { ServerContext } from '../context.js';
import { releaseInfo } from '../state/releases.js';
import { agentSummary, bundleSummaries, channelSummaries } from '../state/views.js';

/** Roles that may read the operator's views. */
export const OPERATORS = ['operator', 'publisher', 'admin'] as const;

const nowSeconds = (ctx: ServerContext): number => Math.floor(ctx.options.now() / 1000);

/** `?after=ID&limit=N`, checked: a malformed page is FERRY_ERR_PROTOCOL_INVALID. */
function page(request: FastifyRequest<{ Querystring: { after?: string; limit?: string } }>): { after: string | undefined; limit: number } {
  const { after, limit } = request.query;
  if (after !== undefined && !AGENT_ID_RE.test(after)) throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', `after=${JSON.stringify(after.slice(0, 70))} is not an agent id`);
  const n = limit === undefined ? AGENTS_PAGE_MAX : Number(limit);
  if (!Number.isInteger(n) || n < 1 || n > AGENTS_PAGE_MAX) throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', `limit takes a whole number from 1 to ${AGENTS_PAGE_MAX}`);
  return { after, limit: n };
}

async function agents(ctx: ServerContext, request: FastifyRequest<{ Querystring: { after?: string; limit?: string } }>): Promise<AgentsAnswer> {
  const { after, limit } = page(request);
  // one more than asked tells whether another page follows
  const rows = await ctx.state.agents.list({ after, limit: limit + 1 });
  const shown = rows.slice(0, limit);
  const now = ctx.options.now();
  return { now: Math.floor(now / 1000), agents: shown.map((a) => agentSummary(a, now, ctx.options.checkinInterval)), next: rows.length > limit ? shown.at(-1)!.id : null };
}

async function agent(ctx: ServerContext, id: string): Promise<AgentDetailAnswer> {
  if (!AGENT_ID_RE.test(id)) throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', `${JSON.stringify(id.slice(0, 70))} is not an agent id`);
  const a = await ctx.state.agents.get(id);
  if (!a) throw new FerryError('FERRY_ERR_NOT_FOUND', `no agent ${id}`);
  const [reports, layers] = await Promise.all([ctx.state.agents.recentReports(id, 20), a.inventory ? ctx.state.agents.getInventory(a.inventory) : undefined]);
  const now = ctx.options.now();
  return {
    now: Math.floor(now / 1000),
    agent: agentSummary(a, now, ctx.options.checkinInterval),
    created: Math.floor(a.created / 1000),
    inventory: a.inventory ? { digest: a.inventory, layers: layers?.length ?? null } : null,
    reports,
  };
}

/** Registers the operator routes. */
export function operatorRoutes(ctx: ServerContext) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.addHook('onRequest', async (request) => {
      await authorize(ctx, request, [...OPERATORS]);
    });
    app.get<{ Querystring: { after?: string; limit?: string } }>('/v1/agents', (request) => agents(ctx, request));
    app.get<{ Params: { id: string } }>('/v1/agents/:id', (request) => agent(ctx, request.params.id));
    app.get('/v1/channels', async (): Promise<ChannelsAnswer> => ({ now: nowSeconds(ctx), channels: await channelSummaries(ctx.state) }));
    app.get('/v1/releases', async (): Promise<ReleasesAnswer> => ({ releases: (await ctx.state.releases.list()).map(releaseInfo) }));
    app.get('/v1/bundles', async (): Promise<BundlesAnswer> => bundleSummaries(ctx.state));
  };
}
