/**
 * Schema migrations, the same for SQLite and PostgreSQL (Kysely's Migrator records which ran, in
 * both engines, under a lock). Add a migration; never edit one that has shipped.
 */
import type { Kysely, Migration, MigrationProvider } from 'kysely';

const initial: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('tokens')
      .addColumn('hash', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('agent_id', 'text')
      .addColumn('created', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('agents')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('created', 'bigint', (c) => c.notNull())
      .addColumn('counter', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('report_counter', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('last_seen', 'bigint')
      .addColumn('channels', 'text')
      .addColumn('installed', 'text')
      .addColumn('inventory', 'text')
      .addColumn('version', 'text')
      .addColumn('report', 'text')
      .addColumn('state', 'text')
      .execute();
    await db.schema
      .createTable('inventories')
      .addColumn('digest', 'text', (c) => c.primaryKey())
      .addColumn('layers', 'text', (c) => c.notNull())
      .addColumn('count', 'integer', (c) => c.notNull())
      .addColumn('created', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('reports')
      .addColumn('agent_id', 'text', (c) => c.notNull())
      .addColumn('counter', 'bigint', (c) => c.notNull())
      .addColumn('received', 'bigint', (c) => c.notNull())
      .addColumn('report', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('reports_pk', ['agent_id', 'counter'])
      .execute();
    await db.schema
      .createTable('releases')
      .addColumn('channel', 'text', (c) => c.notNull())
      .addColumn('release', 'bigint', (c) => c.notNull())
      .addColumn('ref', 'text', (c) => c.notNull())
      .addColumn('manifest', 'text', (c) => c.notNull())
      .addColumn('config', 'text', (c) => c.notNull())
      .addColumn('expires', 'bigint', (c) => c.notNull())
      .addColumn('created', 'bigint', (c) => c.notNull())
      .addColumn('urgent', 'integer', (c) => c.notNull())
      .addColumn('envelope', 'text', (c) => c.notNull())
      .addColumn('published', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('releases_pk', ['channel', 'release'])
      .execute();
    await db.schema
      .createTable('channels')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('release', 'bigint', (c) => c.notNull())
      .addColumn('updated', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('bundles')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('channel', 'text', (c) => c.notNull())
      .addColumn('release', 'bigint', (c) => c.notNull())
      .addColumn('baseline_digest', 'text', (c) => c.notNull())
      .addColumn('baseline', 'text', (c) => c.notNull())
      .addColumn('baseline_count', 'integer', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('bundle_id', 'text')
      .addColumn('payload_size', 'bigint')
      .addColumn('chunk_size', 'integer')
      .addColumn('chunks', 'integer')
      .addColumn('header_size', 'integer')
      .addColumn('pull_bytes', 'bigint')
      .addColumn('error', 'text')
      .addColumn('claimed_by', 'text')
      .addColumn('claimed_at', 'bigint')
      .addColumn('builds', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created', 'bigint', (c) => c.notNull())
      .addColumn('built', 'bigint')
      .execute();
    await db.schema.createIndex('bundles_release').on('bundles').columns(['channel', 'release', 'state']).execute();
    await db.schema.createIndex('bundles_state').on('bundles').columns(['state', 'created']).execute();
  },
};

/** Every migration, by name (names sort in the order they run). */
export const MIGRATIONS: Record<string, Migration> = { '0001-initial': initial };

/** The provider the Migrator reads. */
export const migrationProvider: MigrationProvider = {
  getMigrations: async () => MIGRATIONS,
};
