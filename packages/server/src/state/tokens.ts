/**
 * Bearer tokens (docs/protocol.md section 1): random, prefixed by role, stored only as their
 * sha256. A token is looked up by its hash and the stored hash is then compared in constant time.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { FerryError, TOKEN_PREFIX, tokenRole, type TokenRole } from '@ferry/core';
import type { Database } from './schema.js';

/** What a valid token grants. */
export interface TokenGrant {
  name: string;
  role: TokenRole;
  /** For agent tokens: the only agent id it may act as. */
  agentId: string | undefined;
}

/** sha256 hex of a token: all the server keeps. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** A new random token for a role (32 random bytes, base64url, with the role's prefix). */
export function newToken(role: TokenRole): string {
  return `${TOKEN_PREFIX[role]}${randomBytes(32).toString('base64url')}`;
}

/** Tokens in the state database. */
export class TokenState {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly now: () => number,
  ) {}

  /** Creates a token; a taken name is FERRY_ERR_ALREADY_EXISTS. Returns the token (shown once). */
  async create(role: TokenRole, name: string, agentId?: string, token = newToken(role)): Promise<string> {
    const taken = await this.db.selectFrom('tokens').select('name').where('name', '=', name).executeTakeFirst();
    if (taken) throw new FerryError('FERRY_ERR_ALREADY_EXISTS', `a token named ${name} exists`);
    await this.db.insertInto('tokens').values({ hash: hashToken(token), name, role, agent_id: agentId ?? null, created: this.now() }).execute();
    return token;
  }

  /** Makes sure `token` is known (the admin token file survives restarts and shared databases). */
  async ensure(role: TokenRole, name: string, token: string): Promise<void> {
    await this.db.insertInto('tokens').values({ hash: hashToken(token), name, role, agent_id: null, created: this.now() }).onConflict((oc) => oc.doNothing()).execute();
  }

  /** What a presented token grants, or undefined for an unknown token. */
  async verify(token: string): Promise<TokenGrant | undefined> {
    const role = tokenRole(token);
    if (!role || token.length > 128) return undefined;
    const hash = hashToken(token);
    const row = await this.db.selectFrom('tokens').selectAll().where('hash', '=', hash).executeTakeFirst();
    if (!row || row.role !== role) return undefined;
    if (!timingSafeEqual(Buffer.from(row.hash, 'hex'), Buffer.from(hash, 'hex'))) return undefined;
    return { name: row.name, role, agentId: row.agent_id ?? undefined };
  }

  /** Revokes a token by name; unknown: FERRY_ERR_NOT_FOUND. */
  async revoke(name: string): Promise<void> {
    const r = await this.db.deleteFrom('tokens').where('name', '=', name).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) throw new FerryError('FERRY_ERR_NOT_FOUND', `no token named ${name}`);
  }
}
