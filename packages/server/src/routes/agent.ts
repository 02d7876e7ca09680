/**
 * The agent API (docs/protocol.md section 3): check-in and reports. The token must be the agent's
 * own; the request counter must grow (replays are refused before anything is recorded).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AGENT_ID_RE, FerryError, inventoryDigest, type CheckinAnswer, type ReportsAnswer } from '@ferry/core';
import { protocol } from '@ferry/core/protocol';
import { authorizeAgent } from '../auth.js';
import { assign } from '../assign.js';
import type { ServerContext } from '../context.js';

type AgentRequest = FastifyRequest<{ Params: { id: string } }>;

function agentId(request: AgentRequest): string {
  const { id } = request.params;
  if (!AGENT_ID_RE.test(id)) throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', `${JSON.stringify(id.slice(0, 70))} is not an agent id`);
  return id;
}

/** The repository URL announced to agents: the configured one, or this server's own /repo/. */
export function repositoryUrl(ctx: ServerContext, request: FastifyRequest): string {
  if (ctx.options.repoUrl) return ctx.options.repoUrl;
  return `${request.protocol}://${request.host}/repo/`;
}

async function checkin(ctx: ServerContext, request: AgentRequest): Promise<CheckinAnswer> {
  const id = agentId(request);
  await authorizeAgent(ctx, request, id);
  const req = protocol.checkinRequest(request.body);
  const { digest, layers: sent } = req.inventory;
  if (sent && inventoryDigest(sent) !== digest) throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', `inventory digest ${digest} is not the digest of the layers sent`);
  const installed = req.installed ?? {};
  // the counter, the facts, a new inventory and the reports: one transaction
  const facts = { channels: req.channels, installed, inventory: digest, version: req.agent?.version };
  const accepted = await ctx.state.agents.record(id, { counter: req.counter, facts, ...(sent ? { inventory: { digest, layers: sent } } : {}), ...(req.reports ? { reports: req.reports } : {}) });
  const layers = sent ?? (await ctx.state.agents.getInventory(digest));
  const now = Math.floor(ctx.options.now() / 1000);
  if (!layers) return { now, retryAfter: 0, needInventory: true, assignments: [] };
  const { assignments, retryAfter } = await assign(ctx, req.channels, installed, layers, repositoryUrl(ctx, request));
  // the interval it was told decides when it counts as stale (3 missed check-ins)
  await ctx.state.agents.setInterval(id, retryAfter, accepted.interval);
  return { now, retryAfter, needInventory: false, assignments };
}

async function reports(ctx: ServerContext, request: AgentRequest): Promise<ReportsAnswer> {
  const id = agentId(request);
  await authorizeAgent(ctx, request, id);
  const req = protocol.reportsRequest(request.body);
  return (await ctx.state.agents.record(id, { counter: req.counter, reports: req.reports })).reports;
}

/** Registers the agent routes. */
export function agentRoutes(ctx: ServerContext) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.post<{ Params: { id: string } }>('/v1/agents/:id/checkin', (request) => checkin(ctx, request));
    app.post<{ Params: { id: string } }>('/v1/agents/:id/reports', (request) => reports(ctx, request));
  };
}
