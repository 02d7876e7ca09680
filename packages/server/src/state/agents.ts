/**
 * Agents: registration, request counters (replay protection), check-in facts, inventories and
 * reports (docs/protocol.md sections 3.1-3.2), and the queries an operator view needs.
 */
import type { Kysely, Selectable } from 'kysely';
import { FerryError, type Digest, type Report } from '@ferry/core';
import type { AgentsTable, Database } from './schema.js';
import type { TokenState } from './tokens.js';

/** Reports kept per agent for its recent history. */
const HISTORY = 100;

/** What a check-in tells about an agent. */
export interface CheckinFacts {
  channels: string[];
  installed: Record<string, { release: number; manifest: Digest }>;
  inventory: Digest;
  version: string | undefined;
}

/** An agent as the operator sees it. */
export interface AgentView {
  id: string;
  created: number;
  lastSeen: number | undefined;
  channels: string[];
  installed: Record<string, { release: number; manifest: Digest }>;
  inventory: Digest | undefined;
  version: string | undefined;
  /** The report with the highest counter, when any arrived. */
  report: Report | undefined;
  state: string | undefined;
}

const parse = <T>(s: string | null, fallback: T): T => (s === null ? fallback : (JSON.parse(s) as T));

/** Agents in the state database. */
export class AgentState {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly tokens: TokenState,
    private readonly now: () => number,
  ) {}

  /** Registers an agent and returns its token (shown once); a taken id is FERRY_ERR_ALREADY_EXISTS. */
  async create(id: string): Promise<string> {
    const r = await this.db.insertInto('agents').values({ id, created: this.now(), last_seen: null, channels: null, installed: null, inventory: null, version: null, report: null, state: null }).onConflict((oc) => oc.column('id').doNothing()).executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0n) === 0) throw new FerryError('FERRY_ERR_ALREADY_EXISTS', `agent ${id} exists`);
    return this.tokens.create('agent', `agent:${id}`, id);
  }

  /**
   * Accepts a request counter only when it is higher than the last accepted one (atomically, so
   * two servers sharing the database cannot both accept it): otherwise FERRY_ERR_PROTOCOL_REPLAY.
   * A check-in's facts are recorded by the same statement.
   */
  async acceptCounter(id: string, counter: number, facts?: CheckinFacts): Promise<void> {
    const set = facts ? { channels: JSON.stringify(facts.channels), installed: JSON.stringify(facts.installed), inventory: facts.inventory, version: facts.version ?? null } : {};
    const r = await this.db.updateTable('agents').set({ counter, last_seen: this.now(), ...set }).where('id', '=', id).where('counter', '<', counter).executeTakeFirst();
    if (Number(r.numUpdatedRows) > 0) return;
    const row = await this.db.selectFrom('agents').select('counter').where('id', '=', id).executeTakeFirst();
    if (!row) throw new FerryError('FERRY_ERR_NOT_FOUND', `no agent ${id}`);
    throw new FerryError('FERRY_ERR_PROTOCOL_REPLAY', `request counter ${counter} is not higher than ${row.counter}, the last accepted from ${id}`, { details: { counter, last: row.counter } });
  }

  /** Stores an inventory (already checked against its digest). */
  async putInventory(digest: Digest, layers: Digest[]): Promise<void> {
    await this.db.insertInto('inventories').values({ digest, layers: JSON.stringify([...new Set(layers)].sort()), count: layers.length, created: this.now() }).onConflict((oc) => oc.column('digest').doNothing()).execute();
  }

  /** The layers of a known inventory. */
  async getInventory(digest: Digest): Promise<Digest[] | undefined> {
    const row = await this.db.selectFrom('inventories').select('layers').where('digest', '=', digest).executeTakeFirst();
    return row ? (JSON.parse(row.layers) as Digest[]) : undefined;
  }

  /**
   * Keeps the reports whose counter is higher than the last kept one (docs/protocol.md section
   * 3.2); replayed or reordered ones are dropped. The agent row keeps the highest.
   */
  async recordReports(id: string, reports: Report[]): Promise<{ accepted: number; dropped: number }> {
    const row = await this.db.selectFrom('agents').select('report_counter').where('id', '=', id).executeTakeFirst();
    if (!row) throw new FerryError('FERRY_ERR_NOT_FOUND', `no agent ${id}`);
    const fresh = [...new Map(reports.filter((r) => r.counter > row.report_counter).map((r) => [r.counter, r])).values()].sort((a, b) => a.counter - b.counter);
    const last = fresh.at(-1);
    if (!last) return { accepted: 0, dropped: reports.length };
    const received = this.now();
    await this.db.insertInto('reports').values(fresh.map((r) => ({ agent_id: id, counter: r.counter, received, report: JSON.stringify(r) }))).onConflict((oc) => oc.doNothing()).execute();
    await this.db.updateTable('agents').set({ report: JSON.stringify(last), report_counter: last.counter, state: last.state }).where('id', '=', id).where('report_counter', '<', last.counter).execute();
    const cut = await this.db.selectFrom('reports').select('counter').where('agent_id', '=', id).orderBy('counter', 'desc').offset(HISTORY).limit(1).executeTakeFirst();
    if (cut) await this.db.deleteFrom('reports').where('agent_id', '=', id).where('counter', '<=', cut.counter).execute();
    return { accepted: fresh.length, dropped: reports.length - fresh.length };
  }

  /** One agent, or undefined. */
  async get(id: string): Promise<AgentView | undefined> {
    const row = await this.db.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toView(row) : undefined;
  }

  /** Every agent, by id. */
  async list(): Promise<AgentView[]> {
    return (await this.db.selectFrom('agents').selectAll().orderBy('id').execute()).map(toView);
  }

  /** An agent's recent reports, newest first. */
  async recentReports(id: string, limit = 20): Promise<Report[]> {
    const rows = await this.db.selectFrom('reports').select('report').where('agent_id', '=', id).orderBy('counter', 'desc').limit(limit).execute();
    return rows.map((r) => JSON.parse(r.report) as Report);
  }
}

function toView(row: Selectable<AgentsTable>): AgentView {
  return {
    id: row.id,
    created: row.created,
    lastSeen: row.last_seen ?? undefined,
    channels: parse<string[]>(row.channels, []),
    installed: parse(row.installed, {}),
    inventory: (row.inventory ?? undefined) as Digest | undefined,
    version: row.version ?? undefined,
    report: parse<Report | undefined>(row.report, undefined),
    state: row.state ?? undefined,
  };
}
