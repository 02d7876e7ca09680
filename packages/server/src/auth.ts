/**
 * Authentication (docs/protocol.md section 1): `Authorization: Bearer <token>`. A route names the
 * roles it admits; an agent token only admits requests about its own agent id.
 */
import type { FastifyRequest } from 'fastify';
import { FerryError, type TokenRole } from '@ferry/core';
import type { ServerContext } from './context.js';
import type { TokenGrant } from './state/tokens.js';

const TOKEN_RE = /^[A-Za-z0-9_-]{1,128}$/;

/** The bearer token of a request, or undefined. */
export function bearer(request: FastifyRequest): string | undefined {
  const h = request.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer ([A-Za-z0-9_-]{1,128})$/.exec(h.trim());
  return m?.[1];
}

/**
 * The token of a request that may also carry it as `?token=` (the live events: EventSource cannot
 * set headers); the header wins.
 */
export function bearerOrQuery(request: FastifyRequest): string | undefined {
  const q = (request.query as { token?: unknown } | undefined)?.token;
  return bearer(request) ?? (typeof q === 'string' && TOKEN_RE.test(q) ? q : undefined);
}

/**
 * Checks the request's token: none or unknown is FERRY_ERR_AUTH_REQUIRED (401), a role not in
 * `roles` FERRY_ERR_AUTH_FORBIDDEN (403). Admin tokens pass everywhere but agent routes.
 */
export async function authorize(ctx: ServerContext, request: FastifyRequest, roles: readonly TokenRole[]): Promise<TokenGrant> {
  return authorizeToken(ctx, bearer(request), roles);
}

/** authorize for a token found elsewhere than the Authorization header. */
export async function authorizeToken(ctx: ServerContext, token: string | undefined, roles: readonly TokenRole[]): Promise<TokenGrant> {
  if (!token) throw new FerryError('FERRY_ERR_AUTH_REQUIRED', 'this request needs Authorization: Bearer <token>');
  const grant = await ctx.state.tokens.verify(token);
  if (!grant) throw new FerryError('FERRY_ERR_AUTH_REQUIRED', 'the token is not valid on this server');
  if (!roles.includes(grant.role)) throw new FerryError('FERRY_ERR_AUTH_FORBIDDEN', `a ${grant.role} token cannot do this (needs ${roles.join(' or ')})`);
  return grant;
}

/** Checks an agent token bound to `agentId`: another agent's token is FERRY_ERR_AUTH_FORBIDDEN. */
export async function authorizeAgent(ctx: ServerContext, request: FastifyRequest, agentId: string): Promise<void> {
  const grant = await authorize(ctx, request, ['agent']);
  if (grant.agentId !== agentId) throw new FerryError('FERRY_ERR_AUTH_FORBIDDEN', `this token belongs to agent ${grant.agentId ?? '?'}, not ${agentId}`);
}
