/**
 * The agent API through the relay (docs/protocol.md section 7). Check-ins and reports are checked
 * with the protocol's schemas, then forwarded upstream with the agent's token; upstream's answer
 * goes back as it came, except that a check-in answer's `repository` becomes the relay's own.
 * Upstream down: reports are queued (202) and forwarded in order later; a check-in gets that
 * agent's last answer when it is still valid (same token, channels, installed releases and
 * inventory, younger than `staleAnswerMs`), its reports queued, else 503
 * FERRY_ERR_UPSTREAM_UNAVAILABLE with Retry-After. An agent's buffered requests are forwarded
 * before any new one of its own, so upstream sees its counters in order.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AGENT_ID_RE, FerryError, parseJsonText, type CheckinAnswer, type CheckinRequest } from '@ferry/core';
import { protocol } from '@ferry/core/protocol';
import type { ResolvedRelayOptions } from './options.js';
import type { QueuedRequest, ReportQueue, SendResult } from './queue.js';
import type { Upstream, UpstreamAnswer } from './upstream.js';

type AgentRequest = FastifyRequest<{ Params: { id: string } }>;

/** An agent's last check-in answer from upstream. */
interface Remembered {
  token: Buffer;
  fingerprint: string;
  answer: CheckinAnswer;
  at: number;
}

/** What the agent routes share. */
export interface AgentRelayContext {
  options: ResolvedRelayOptions;
  upstream: Upstream;
  queue: ReportQueue;
  /** Counts for tests and logs. */
  stats: { forwarded: number; queued: number; staleAnswers: number; delivered: number; dropped: number };
}

/** Agents whose last answer is remembered at most (the oldest is forgotten first). */
const MAX_REMEMBERED = 65_536;

const hashOf = (v: string | undefined): Buffer => createHash('sha256').update(v ?? '').digest();

function agentId(request: AgentRequest): string {
  const { id } = request.params;
  if (!AGENT_ID_RE.test(id)) throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', `${JSON.stringify(id.slice(0, 70))} is not an agent id`);
  return id;
}

/** What a check-in asks about: a remembered answer fits only the same question. */
function fingerprint(req: CheckinRequest): string {
  const installed = Object.entries(req.installed ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return JSON.stringify([[...req.channels].sort(), installed, req.inventory.digest]);
}

/** The repository URL agents are told to use: the relay's own. */
function repoUrl(ctx: AgentRelayContext, request: FastifyRequest): string {
  return ctx.options.publicRepoUrl ?? `${request.protocol}://${request.host}/repo/`;
}

/** Sends upstream's answer back as it came. */
function passThrough(reply: FastifyReply, a: UpstreamAnswer): FastifyReply {
  if (a.retryAfter !== undefined) reply.header('retry-after', a.retryAfter);
  return reply.code(a.status).type('application/json').send(a.text);
}

/** The agent routes of the relay. */
export function agentRelayRoutes(ctx: AgentRelayContext) {
  const remembered = new Map<string, Remembered>();

  const send = async (r: QueuedRequest): Promise<SendResult> => {
    try {
      const a = await ctx.upstream.post(r.path, r.body, r.authorization);
      if (a.status >= 500) return 'down';
      ctx.stats[a.status < 300 ? 'delivered' : 'dropped']++; // a 4xx (a replayed counter, a revoked token) can never succeed
      return a.status < 300 ? 'sent' : 'dropped';
    } catch {
      return 'down';
    }
  };
  /** True when nothing buffered is left ahead of a new request. */
  const drained = async (): Promise<boolean> => ctx.queue.length === 0 || (await ctx.queue.drain(send));

  const queueReports = async (request: AgentRequest, reply: FastifyReply, body: string): Promise<FastifyReply> => {
    await ctx.queue.push({ agent: request.params.id, path: `/v1/agents/${request.params.id}/reports`, authorization: request.headers.authorization, body });
    ctx.stats.queued++;
    const n = (JSON.parse(body) as { reports: unknown[] }).reports.length;
    return reply.code(202).send({ accepted: 0, dropped: 0, queued: n });
  };

  const reports = async (request: AgentRequest, reply: FastifyReply): Promise<FastifyReply> => {
    agentId(request);
    const body = JSON.stringify(protocol.reportsRequest(request.body));
    if (!(await drained())) return queueReports(request, reply, body);
    try {
      const a = await ctx.upstream.post(request.url, body, request.headers.authorization);
      if (a.status >= 500) return queueReports(request, reply, body);
      ctx.stats.forwarded++;
      return passThrough(reply, a);
    } catch (err) {
      if (err instanceof FerryError && err.code === 'FERRY_ERR_UPSTREAM_UNAVAILABLE') return queueReports(request, reply, body);
      throw err;
    }
  };

  /** Upstream is down: the remembered answer if it still fits, with this check-in's reports queued. */
  const fromMemory = async (request: AgentRequest, reply: FastifyReply, req: CheckinRequest, cause: FerryError): Promise<FastifyReply> => {
    const id = request.params.id;
    const m = remembered.get(id);
    const token = hashOf(request.headers.authorization);
    const fits = m && timingSafeEqual(m.token, token) && m.fingerprint === fingerprint(req) && ctx.options.now() - m.at <= ctx.options.staleAnswerMs;
    if (!fits) {
      reply.header('retry-after', String(ctx.options.retryAfterSeconds));
      throw new FerryError('FERRY_ERR_UPSTREAM_UNAVAILABLE', `${cause.message}; the relay has no valid answer for agent ${id}, retry later`, { cause });
    }
    if (req.reports && req.reports.length > 0) {
      await ctx.queue.push({ agent: id, path: `/v1/agents/${id}/reports`, authorization: request.headers.authorization, body: JSON.stringify({ counter: req.counter, reports: req.reports }) });
      ctx.stats.queued++;
    }
    ctx.stats.staleAnswers++;
    const answer: CheckinAnswer = { ...m.answer, now: Math.floor(ctx.options.now() / 1000), retryAfter: ctx.options.retryAfterSeconds };
    return reply.code(200).header('x-ferry-relay', 'stale').send(answer);
  };

  const checkin = async (request: AgentRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const id = agentId(request);
    const req = protocol.checkinRequest(request.body);
    const down = new FerryError('FERRY_ERR_UPSTREAM_UNAVAILABLE', 'upstream is unreachable');
    if (!(await drained())) return fromMemory(request, reply, req, down);
    let a: UpstreamAnswer;
    try {
      a = await ctx.upstream.post(request.url, JSON.stringify(req), request.headers.authorization);
    } catch (err) {
      if (err instanceof FerryError && err.code === 'FERRY_ERR_UPSTREAM_UNAVAILABLE') return fromMemory(request, reply, req, err);
      throw err;
    }
    ctx.stats.forwarded++;
    if (a.status !== 200) return passThrough(reply, a);
    const answer = protocol.checkinAnswer(parseJsonText(a.text, 'upstream check-in answer'));
    const own = repoUrl(ctx, request);
    answer.assignments = answer.assignments.map((x) => (x.repository === undefined ? x : { ...x, repository: own }));
    if (!answer.needInventory) {
      remembered.delete(id);
      remembered.set(id, { token: hashOf(request.headers.authorization), fingerprint: fingerprint(req), answer, at: ctx.options.now() });
      if (remembered.size > MAX_REMEMBERED) remembered.delete(remembered.keys().next().value!); // the least recently seen agent
    }
    return reply.code(200).send(answer);
  };

  const plugin = async (app: FastifyInstance): Promise<void> => {
    app.post<{ Params: { id: string } }>('/v1/agents/:id/checkin', checkin);
    app.post<{ Params: { id: string } }>('/v1/agents/:id/reports', reports);
  };
  return { plugin, drain: drained };
}
