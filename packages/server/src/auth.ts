/**
 * Authentication (docs/protocol.md section 1): `Authorization: Bearer <token>`. A route names the
 * roles it admits; an agent token only admits requests about its own agent id.
 */
import type { FastifyRequest } from 'fastify';
import { FerryError, type TokenRole } from '@ferry/core';
import type { ServerContext } from './context.js';
import type { TokenGrant } from './state/tokens.js';

/** The bearer token of a request, or undefined. */
export function bearer(request: FastifyRequest): string | undefined {
  const h = request.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer ([A-Za-z0-9_-]{1,128})$/.exec(h.trim());
  return m?.[1];
}

/**
 * Checks the request's token: none or unknown is FERRY_ERR_AUTH_REQUIRED (401), a role not in
 * `roles` FERRY_ERR_AUTH_FORBIDDEN (403). Admin tokens pass everywhere but agent routes.
 */
export async function authorize(ctx: ServerContext, request: FastifyRequest, roles: TokenRole[]): Promise<TokenGrant> {
  const token = bearer(request);
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
