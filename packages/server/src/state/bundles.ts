/**
 * Bundle jobs and built bundles: one row per (channel, release, baseline), shared by every agent
 * with that baseline. A job is queued once (primary key), claimed by exactly one builder with
 * `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite serialises writers, so the same statement without
 * the clause is atomic there), and a claim whose builder died is taken over after `staleMs`.
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import { sha256, type Digest } from '@ferry/core';
import { TtlCache } from './cache.js';
import type { ChangeFeed } from './changes.js';
import type { Engine } from './db.js';
import type { BundlesTable, Database } from './schema.js';

/** Job and bundle states. */
export type BundleRowState = 'queued' | 'building' | 'ready' | 'failed';

/** A bundle job or built bundle. */
export interface BundleRow {
  key: string;
  channel: string;
  release: number;
  baselineDigest: Digest;
  baseline: Digest[];
  state: BundleRowState;
  bundleId: Digest | undefined;
  payloadSize: number | undefined;
  chunkSize: number | undefined;
  chunks: number | undefined;
  headerSize: number | undefined;
  pullBytes: number | undefined;
  error: string | undefined;
  builds: number;
  created: number;
  built: number | undefined;
}

/** What a finished build records. */
export interface BuiltBundle {
  bundleId: Digest;
  payloadSize: number;
  chunkSize: number;
  chunks: number;
  headerSize: number;
  /** What docker pull would send instead; null when unknown. */
  pullBytes: number | null;
}

function toRow(r: Selectable<BundlesTable>): BundleRow {
  return {
    key: r.key,
    channel: r.channel,
    release: r.release,
    baselineDigest: r.baseline_digest as Digest,
    baseline: JSON.parse(r.baseline) as Digest[],
    state: r.state as BundleRowState,
    bundleId: (r.bundle_id ?? undefined) as Digest | undefined,
    payloadSize: r.payload_size ?? undefined,
    chunkSize: r.chunk_size ?? undefined,
    chunks: r.chunks ?? undefined,
    headerSize: r.header_size ?? undefined,
    pullBytes: r.pull_bytes ?? undefined,
    error: r.error ?? undefined,
    builds: r.builds,
    created: r.created,
    built: r.built ?? undefined,
  };
}

/** The job key of a (channel, release, baseline). */
export function bundleKey(channel: string, release: number, baselineDigest: Digest): string {
  return sha256(`${channel}\n${release}\n${baselineDigest}`).slice(7);
}

/** Bundle jobs in the state database. */
export class BundleState {
  /** Built bundles per release (asked by every check-in that needs one), dropped on any bundle change. */
  private readonly readyCache: TtlCache<string, BundleRow[]>;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly engine: Engine,
    private readonly now: () => number,
    private readonly changes: ChangeFeed,
    ttlMs: number,
  ) {
    this.readyCache = new TtlCache({ ttlMs, maxWeight: 100_000, weigh: (rows) => 1 + rows.reduce((a, b) => a + b.baseline.length, 0), now });
    changes.on((c) => {
      if (c.kind === 'bundle' || c.kind === 'resync') this.readyCache.clear();
    });
  }

  private changed(key: string): void {
    this.changes.emit({ kind: 'bundle', key });
  }

  /** Built bundles of a release (candidates for any agent whose layers cover their baseline). */
  ready(channel: string, release: number): Promise<BundleRow[]> {
    return this.readyCache.through(`${channel}\n${release}`, () => this.readReady(channel, release));
  }

  private async readReady(channel: string, release: number): Promise<BundleRow[]> {
    const rows = await this.db.selectFrom('bundles').selectAll().where('channel', '=', channel).where('release', '=', release).where('state', '=', 'ready').execute();
    return rows.map(toRow);
  }

  /** One job or bundle by key. */
  async get(key: string): Promise<BundleRow | undefined> {
    const row = await this.db.selectFrom('bundles').selectAll().where('key', '=', key).executeTakeFirst();
    return row ? toRow(row) : undefined;
  }

  /** Jobs waiting or being built. */
  async pending(): Promise<number> {
    const r = await this.db.selectFrom('bundles').select((eb) => eb.fn.countAll<number>().as('n')).where('state', 'in', ['queued', 'building']).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** Queues the job for a baseline unless it exists; returns the row either way. */
  async ensure(channel: string, release: number, baselineDigest: Digest, baseline: Digest[]): Promise<BundleRow> {
    const key = bundleKey(channel, release, baselineDigest);
    await this.db
      .insertInto('bundles')
      .values({ key, channel, release, baseline_digest: baselineDigest, baseline: JSON.stringify(baseline), baseline_count: baseline.length, state: 'queued', bundle_id: null, payload_size: null, chunk_size: null, chunks: null, header_size: null, pull_bytes: null, error: null, claimed_by: null, claimed_at: null, created: this.now(), built: null })
      .onConflict((oc) => oc.column('key').doNothing())
      .execute();
    this.changed(key);
    return (await this.get(key))!;
  }

  /**
   * Claims the oldest queued job (or one whose builder stopped answering before `staleBefore`) for
   * `worker`; undefined when there is none. Exactly one builder gets each job.
   */
  async claim(worker: string, staleBefore: number): Promise<BundleRow | undefined> {
    const lock = this.engine === 'postgres' ? sql` FOR UPDATE SKIP LOCKED` : sql``;
    const result = await sql<Selectable<BundlesTable>>`
      UPDATE bundles SET state = 'building', claimed_by = ${worker}, claimed_at = ${this.now()}, builds = builds + 1
      WHERE key = (
        SELECT key FROM bundles
        WHERE state = 'queued' OR (state = 'building' AND claimed_at < ${staleBefore})
        ORDER BY created LIMIT 1${lock}
      )
      RETURNING *`.execute(this.db);
    const row = result.rows[0];
    if (row) this.changed(row.key);
    return row ? toRow(row) : undefined;
  }

  /** Records a built bundle (only by the builder holding the claim). */
  async finish(key: string, worker: string, b: BuiltBundle): Promise<void> {
    await this.db
      .updateTable('bundles')
      .set({ state: 'ready', bundle_id: b.bundleId, payload_size: b.payloadSize, chunk_size: b.chunkSize, chunks: b.chunks, header_size: b.headerSize, pull_bytes: b.pullBytes, built: this.now(), error: null })
      .where('key', '=', key)
      .where('claimed_by', '=', worker)
      .execute();
    this.changed(key);
  }

  /** Queues a failed job again (a failure may have been passing: a full disk); false if it was not failed. */
  async requeue(key: string): Promise<boolean> {
    const r = await this.db.updateTable('bundles').set({ state: 'queued', error: null, claimed_by: null, claimed_at: null }).where('key', '=', key).where('state', '=', 'failed').executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) return false;
    this.changed(key);
    return true;
  }

  /** Records a failed build. */
  async fail(key: string, worker: string, error: string): Promise<void> {
    await this.db.updateTable('bundles').set({ state: 'failed', error: error.slice(0, 2000), built: this.now() }).where('key', '=', key).where('claimed_by', '=', worker).execute();
    this.changed(key);
  }

  /** Every job and bundle, newest first. */
  async list(): Promise<BundleRow[]> {
    return (await this.db.selectFrom('bundles').selectAll().orderBy('created', 'desc').execute()).map(toRow);
  }
}
