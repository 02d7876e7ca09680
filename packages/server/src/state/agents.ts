/**
 * Agents: registration, request counters (replay protection), check-in facts, inventories and
 * reports (docs/protocol.md sections 3.1-3.2), and the queries an operator view needs.
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import { FerryError, type Digest, type Report } from '@ferry/core';
import { TtlCache } from './cache.js';
import type { ChangeFeed } from './changes.js';
import type { AgentsTable, Database } from './schema.js';
import type { TokenState } from './tokens.js';

/** Reports kept per agent for its recent history (at least; trimmed every TRIM_EVERY reports). */
const HISTORY = 100;
/**
 * Reports an agent adds between two trims of its history by this process: trimming is the
 * costliest statement of a report (an index walk past HISTORY rows), so it runs once per batch.
 */
const TRIM_EVERY = 16;
/** Inventory layers kept in memory at most (inventories are immutable: named by their digest). */
const INVENTORY_CACHE_LAYERS = 256 * 1024;

/** What accepting a request counter tells about the agent. */
export interface Accepted {
  /** Counter of the report kept so far (reports at or below it are dropped). */
  reportCounter: number;
  /** Seconds the previous check-in answer told it to wait, if any. */
  interval: number | undefined;
}

/** What a check-in tells about an agent. */
export interface CheckinFacts {
  channels: string[];
  installed: Record<string, { release: number; manifest: Digest }>;
  inventory: Digest;
  version: string | undefined;
}

/** What one agent request records (AgentState.record). */
export interface AgentRequest {
  counter: number;
  /** A check-in's facts. */
  facts?: CheckinFacts;
  /** Layers the agent sent (already checked against the digest). */
  inventory?: { digest: Digest; layers: Digest[] };
  reports?: Report[];
}

/** Reports kept and dropped (replayed or reordered). */
export interface ReportsRecorded {
  accepted: number;
  dropped: number;
}

/** What recording a request tells. */
export interface RecordedRequest extends Accepted {
  reports: ReportsRecorded;
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
  /** Seconds its last check-in answer told it to wait. */
  interval: number | undefined;
}

const parse = <T>(s: string | null, fallback: T): T => (s === null ? fallback : (JSON.parse(s) as T));

/** Agents in the state database. */
export class AgentState {
  private readonly inventories = new TtlCache<Digest, Digest[]>({ ttlMs: Infinity, maxWeight: INVENTORY_CACHE_LAYERS, weigh: (l) => Math.max(1, l.length) });
  /** Reports stored per agent since this process last trimmed its history (absent: trim at the next). */
  private readonly untrimmed = new Map<string, number>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly tokens: TokenState,
    private readonly now: () => number,
    private readonly changes: ChangeFeed,
    /** Record a request in one transaction (SQLite); false runs its statements one by one. */
    private readonly oneTransaction = true,
  ) {}

  /** Registers an agent and returns its token (shown once); a taken id is FERRY_ERR_ALREADY_EXISTS. */
  async create(id: string): Promise<string> {
    const r = await this.db.insertInto('agents').values({ id, created: this.now(), last_seen: null, channels: null, installed: null, inventory: null, version: null, report: null, state: null }).onConflict((oc) => oc.column('id').doNothing()).executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0n) === 0) throw new FerryError('FERRY_ERR_ALREADY_EXISTS', `agent ${id} exists`);
    const token = await this.tokens.create('agent', `agent:${id}`, id);
    this.changes.emit({ kind: 'agent', key: id });
    return token;
  }

  /**
   * Accepts a request counter only when it is higher than the last accepted one (atomically, so
   * two servers sharing the database cannot both accept it): otherwise FERRY_ERR_PROTOCOL_REPLAY.
   * A check-in's facts are recorded by the same statement, which also returns what the rest of
   * the request needs to know about the agent (one round trip).
   */
  async acceptCounter(id: string, counter: number, facts?: CheckinFacts): Promise<Accepted> {
    const accepted = await this.accept(this.db, id, counter, facts);
    this.changes.emit({ kind: 'agent', key: id });
    return accepted;
  }

  /**
   * Records one agent request in one transaction: its counter (acceptCounter), a check-in's
   * facts, an inventory it sent that this process does not hold yet, and its reports
   * (recordReports). On SQLite in one transaction: one commit (one WAL append and its locks)
   * instead of one per statement, and a replay, or any failure, records nothing. On PostgreSQL
   * (oneTransaction false) the statements commit one by one, as before: measured, BEGIN and COMMIT
   * cost more round trips than the commits they save (bench/README.md, the server bench).
   */
  async record(id: string, r: AgentRequest): Promise<RecordedRequest> {
    const inventory = r.inventory && !this.inventories.get(r.inventory.digest) ? r.inventory : undefined;
    const run = <T>(fn: (q: Kysely<Database>) => Promise<T>): Promise<T> => (this.oneTransaction ? this.db.transaction().execute(fn) : fn(this.db));
    const out = await run(async (trx) => {
      const accepted = await this.accept(trx, id, r.counter, r.facts);
      if (inventory) await this.insertInventory(trx, inventory.digest, inventory.layers);
      const reports = r.reports && r.reports.length > 0 ? await this.insertReports(trx, id, r.reports, accepted.reportCounter) : { accepted: 0, dropped: 0 };
      return { ...accepted, reports };
    });
    if (inventory) this.inventories.set(inventory.digest, [...new Set(inventory.layers)].sort());
    this.changes.emit({ kind: 'agent', key: id });
    return out;
  }

  private async accept(q: Kysely<Database>, id: string, counter: number, facts?: CheckinFacts): Promise<Accepted> {
    const set = facts ? { channels: JSON.stringify(facts.channels), installed: JSON.stringify(facts.installed), inventory: facts.inventory, version: facts.version ?? null } : {};
    const r = await q.updateTable('agents').set({ counter, last_seen: this.now(), ...set }).where('id', '=', id).where('counter', '<', counter).returning(['report_counter', 'checkin_interval']).executeTakeFirst();
    if (r) return { reportCounter: r.report_counter, interval: r.checkin_interval ?? undefined };
    const row = await q.selectFrom('agents').select('counter').where('id', '=', id).executeTakeFirst();
    if (!row) throw new FerryError('FERRY_ERR_NOT_FOUND', `no agent ${id}`);
    throw new FerryError('FERRY_ERR_PROTOCOL_REPLAY', `request counter ${counter} is not higher than ${row.counter}, the last accepted from ${id}`, { details: { counter, last: row.counter } });
  }

  /** Stores an inventory (already checked against its digest). */
  async putInventory(digest: Digest, layers: Digest[]): Promise<void> {
    await this.insertInventory(this.db, digest, layers);
  }

  private async insertInventory(q: Kysely<Database>, digest: Digest, layers: Digest[]): Promise<void> {
    await q.insertInto('inventories').values({ digest, layers: JSON.stringify([...new Set(layers)].sort()), count: layers.length, created: this.now() }).onConflict((oc) => oc.column('digest').doNothing()).execute();
  }

  /** The layers of a known inventory (kept in memory: an inventory never changes). */
  async getInventory(digest: Digest): Promise<Digest[] | undefined> {
    const cached = this.inventories.get(digest);
    if (cached) return cached;
    const row = await this.db.selectFrom('inventories').select('layers').where('digest', '=', digest).executeTakeFirst();
    if (!row) return undefined;
    const layers = JSON.parse(row.layers) as Digest[];
    this.inventories.set(digest, layers);
    return layers;
  }

  /** Records the check-in interval an answer gave the agent (written only when it changed). */
  async setInterval(id: string, seconds: number, previous: number | undefined): Promise<void> {
    if (seconds === previous) return;
    await this.db.updateTable('agents').set({ checkin_interval: seconds }).where('id', '=', id).execute();
    this.changes.emit({ kind: 'agent', key: id });
  }

  /**
   * Keeps the reports whose counter is higher than the last kept one (docs/protocol.md section
   * 3.2); replayed or reordered ones are dropped. The agent row keeps the highest. `kept` is the
   * counter of the report kept so far when the caller already read it (acceptCounter).
   */
  async recordReports(id: string, reports: Report[], kept?: number): Promise<ReportsRecorded> {
    const out = await this.insertReports(this.db, id, reports, kept);
    if (out.accepted > 0) this.changes.emit({ kind: 'agent', key: id });
    return out;
  }

  private async insertReports(q: Kysely<Database>, id: string, reports: Report[], kept?: number): Promise<ReportsRecorded> {
    const last = kept ?? (await q.selectFrom('agents').select('report_counter').where('id', '=', id).executeTakeFirst())?.report_counter;
    if (last === undefined) throw new FerryError('FERRY_ERR_NOT_FOUND', `no agent ${id}`);
    const fresh = [...new Map(reports.filter((r) => r.counter > last).map((r) => [r.counter, r])).values()].sort((a, b) => a.counter - b.counter);
    const newest = fresh.at(-1);
    if (!newest) return { accepted: 0, dropped: reports.length };
    const received = this.now();
    await q.insertInto('reports').values(fresh.map((r) => ({ agent_id: id, counter: r.counter, received, report: JSON.stringify(r) }))).onConflict((oc) => oc.doNothing()).execute();
    await q.updateTable('agents').set({ report: JSON.stringify(newest), report_counter: newest.counter, state: newest.state }).where('id', '=', id).where('report_counter', '<', newest.counter).execute();
    await this.trimHistory(q, id, fresh.length);
    return { accepted: fresh.length, dropped: reports.length - fresh.length };
  }

  /**
   * Keeps the newest HISTORY reports of an agent, trimming once TRIM_EVERY reports were added since
   * this process last did (the first time it sees the agent too, so a restart trims at once).
   */
  private async trimHistory(q: Kysely<Database>, id: string, added: number): Promise<void> {
    const since = this.untrimmed.get(id);
    if (since !== undefined && since + added < TRIM_EVERY) {
      this.untrimmed.set(id, since + added);
      return;
    }
    // one statement: the cut is a subquery
    const cut = q.selectFrom('reports').select('counter').where('agent_id', '=', id).orderBy('counter', 'desc').offset(HISTORY).limit(1);
    await q.deleteFrom('reports').where('agent_id', '=', id).where('counter', '<=', cut).execute();
    this.untrimmed.set(id, 0);
  }

  /** One agent, or undefined. */
  async get(id: string): Promise<AgentView | undefined> {
    const row = await this.db.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toView(row) : undefined;
  }

  /** Agents by id, a page at a time: ids after `after`, at most `limit`. */
  async list(o: { after?: string | undefined; limit?: number | undefined } = {}): Promise<AgentView[]> {
    let q = this.db.selectFrom('agents').selectAll().orderBy('id');
    if (o.after !== undefined) q = q.where('id', '>', o.after);
    if (o.limit !== undefined) q = q.limit(o.limit);
    return (await q.execute()).map(toView);
  }

  /** The agents with these ids (unknown ids are left out). */
  async many(ids: readonly string[]): Promise<AgentView[]> {
    const out: AgentView[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.db.selectFrom('agents').selectAll().where('id', 'in', ids.slice(i, i + 500)).execute();
      out.push(...rows.map(toView));
    }
    return out;
  }

  /**
   * How many agents are in each reported state ('unknown' before any report), and how many are
   * stale: not seen for 3 of their check-in intervals (`fallback` seconds when they have none).
   */
  async counts(fallback: number): Promise<{ states: Record<string, number>; stale: number }> {
    const states: Record<string, number> = {};
    const rows = await this.db.selectFrom('agents').select(['state', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('state').execute();
    for (const r of rows) states[r.state ?? 'unknown'] = Number(r.n);
    const now = this.now();
    const stale = await this.db
      .selectFrom('agents')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('last_seen', 'is not', null)
      .where(sql<boolean>`last_seen + 3000 * coalesce(checkin_interval, ${fallback}) < ${now}`)
      .executeTakeFirstOrThrow();
    return { states, stale: Number(stale.n) };
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
    interval: row.checkin_interval ?? undefined,
  };
}
