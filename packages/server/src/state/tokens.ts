/**
 * Bearer tokens (docs/protocol.md section 1): random, prefixed by role, stored only as their
 * sha256. A token is looked up by its hash and the stored hash is then compared in constant time.
 * What a valid token grants is cached briefly (every check-in presents one): a revocation removes
 * the entry at once in this process and, through the change feed, in every other server; the TTL
 * bounds the rest (a missed notification).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { FerryError, TOKEN_PREFIX, tokenRole, type TokenRole } from '@ferry/core';
import { TtlCache } from './cache.js';
import type { ChangeFeed } from './changes.js';
import type { Database } from './schema.js';

/** Valid tokens cached at most (unknown tokens are never cached, so guessing cannot fill it). */
const TOKEN_CACHE = 100_000;

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
  private readonly grants: TtlCache<string, TokenGrant | undefined>;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly now: () => number,
    private readonly changes: ChangeFeed,
    ttlMs: number,
  ) {
    this.grants = new TtlCache({ ttlMs, maxWeight: TOKEN_CACHE, now });
    changes.on((c) => {
      if (c.kind === 'token') this.grants.delete(c.key);
      else if (c.kind === 'resync') this.grants.clear();
    });
  }

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
    return this.grants.through(hash, () => this.lookup(hash, role), (g) => g !== undefined);
  }

  private async lookup(hash: string, role: TokenRole): Promise<TokenGrant | undefined> {
    const row = await this.db.selectFrom('tokens').selectAll().where('hash', '=', hash).executeTakeFirst();
    if (!row || row.role !== role) return undefined;
    if (!timingSafeEqual(Buffer.from(row.hash, 'hex'), Buffer.from(hash, 'hex'))) return undefined;
    return { name: row.name, role, agentId: row.agent_id ?? undefined };
  }

  /** Revokes a token by name; unknown: FERRY_ERR_NOT_FOUND. It stops working at once. */
  async revoke(name: string): Promise<void> {
    const rows = await this.db.deleteFrom('tokens').where('name', '=', name).returning('hash').execute();
    if (rows.length === 0) throw new FerryError('FERRY_ERR_NOT_FOUND', `no token named ${name}`);
    for (const r of rows) this.changes.emit({ kind: 'token', key: r.hash });
  }
}
