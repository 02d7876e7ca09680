/**
 * The server's tables, as Kysely sees them. One schema for SQLite and PostgreSQL (migrations.ts):
 * times are unix milliseconds in bigint columns, booleans 0/1 integers, lists JSON text, so both
 * engines store and return the same values.
 */
import type { Generated } from 'kysely';

/** Bearer tokens: only their sha256 is kept (docs/protocol.md section 1). */
export interface TokensTable {
  hash: string;
  name: string;
  role: string;
  /** The agent an agent token is bound to. */
  agent_id: string | null;
  created: number;
}

/** Agents, with their counters (replay protection) and their last check-in and report. */
export interface AgentsTable {
  id: string;
  created: number;
  /** Highest request counter accepted. */
  counter: Generated<number>;
  /** Counter of the report kept (the highest seen). */
  report_counter: Generated<number>;
  last_seen: number | null;
  channels: string | null;
  installed: string | null;
  inventory: string | null;
  version: string | null;
  /** The last report, JSON. */
  report: string | null;
  /** Its state, for queries. */
  state: string | null;
  /** Seconds the last check-in answer told it to wait (stale after 3 of them). */
  checkin_interval: number | null;
}

/** Inventories by digest: the layers an agent's store holds. */
export interface InventoriesTable {
  digest: string;
  layers: string;
  count: number;
  created: number;
}

/** Every report kept, for an agent's recent history. */
export interface ReportsTable {
  agent_id: string;
  counter: number;
  received: number;
  report: string;
}

/** Signed releases (docs/format.md section 4). */
export interface ReleasesTable {
  channel: string;
  release: number;
  ref: string;
  manifest: string;
  config: string;
  expires: number;
  created: number;
  urgent: number;
  /** The release envelope, base64. */
  envelope: string;
  published: number;
}

/** Channels: the latest release of each. */
export interface ChannelsTable {
  name: string;
  release: number;
  updated: number;
}

/** Bundle jobs and built bundles, one per (channel, release, baseline). */
export interface BundlesTable {
  key: string;
  channel: string;
  release: number;
  baseline_digest: string;
  baseline: string;
  baseline_count: number;
  state: string;
  bundle_id: string | null;
  payload_size: number | null;
  chunk_size: number | null;
  chunks: number | null;
  header_size: number | null;
  /** What docker pull would send for the same update (gzip layers the baseline lacks). */
  pull_bytes: number | null;
  error: string | null;
  claimed_by: string | null;
  claimed_at: number | null;
  /** How many times a builder claimed it (1 when each bundle is built once). */
  builds: Generated<number>;
  created: number;
  built: number | null;
}

/** Compressed layer sizes a pushed image's source manifest declared (what docker pull sends). */
export interface SourceLayersTable {
  manifest: string;
  diff_id: string;
  media_type: string;
  size: number;
}

/** The database. */
export interface Database {
  tokens: TokensTable;
  agents: AgentsTable;
  inventories: InventoriesTable;
  reports: ReportsTable;
  releases: ReleasesTable;
  channels: ChannelsTable;
  bundles: BundlesTable;
  source_layers: SourceLayersTable;
}
