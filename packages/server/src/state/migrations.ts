/**
 * Schema migrations, the same for SQLite and PostgreSQL (Kysely's Migrator records which ran, in
 * both engines, under a lock). Add a migration; never edit one that has shipped.
 */
import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { Engine } from './db.js';
import { CHANGES_CHANNEL } from './changes.js';

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

/**
 * The operator's views (issue 8): each agent's check-in interval (stale = not seen for 3 of them),
 * the compressed layer sizes a pushed image's source declared (what docker pull would send), and on
 * PostgreSQL the triggers that NOTIFY every server process of changes (state/changes.ts).
 */
function operator(engine: Engine): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('agents').addColumn('checkin_interval', 'integer').execute();
      await db.schema
        .createTable('source_layers')
        .addColumn('manifest', 'text', (c) => c.notNull())
        .addColumn('diff_id', 'text', (c) => c.notNull())
        .addColumn('media_type', 'text', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('source_layers_pk', ['manifest', 'diff_id'])
        .execute();
      if (engine === 'postgres') for (const statement of NOTIFY_TRIGGERS) await sql.raw(statement).execute(db);
    },
  };
}

/**
 * Row triggers that publish `{"k": kind, "v": key, "o": application_name}` on the
 * `ferry_changes` channel; delivered at commit, in commit order, to every listening server
 * (`o` lets a server skip its own changes, which it already saw).
 */
const NOTIFY_TRIGGERS = [
  `CREATE FUNCTION ferry_notify() RETURNS trigger LANGUAGE plpgsql AS $$
   DECLARE r jsonb;
   BEGIN
     IF TG_OP = 'DELETE' THEN r := to_jsonb(OLD); ELSE r := to_jsonb(NEW); END IF;
     PERFORM pg_notify('${CHANGES_CHANNEL}', json_build_object('k', TG_ARGV[0], 'v', r ->> TG_ARGV[1], 'o', current_setting('application_name'))::text);
     RETURN NULL;
   END $$`,
  `CREATE TRIGGER agents_notify AFTER INSERT OR UPDATE ON agents FOR EACH ROW EXECUTE FUNCTION ferry_notify('agent', 'id')`,
  `CREATE TRIGGER channels_notify AFTER INSERT OR UPDATE ON channels FOR EACH ROW EXECUTE FUNCTION ferry_notify('channel', 'name')`,
  `CREATE TRIGGER bundles_notify AFTER INSERT OR UPDATE ON bundles FOR EACH ROW EXECUTE FUNCTION ferry_notify('bundle', 'key')`,
  `CREATE TRIGGER tokens_notify AFTER DELETE ON tokens FOR EACH ROW EXECUTE FUNCTION ferry_notify('token', 'hash')`,
];

/** Every migration of an engine, by name (names sort in the order they run). */
export function migrations(engine: Engine): Record<string, Migration> {
  return { '0001-initial': initial, '0002-operator': operator(engine) };
}

/** The provider the Migrator reads. */
export function migrationProvider(engine: Engine): MigrationProvider {
  return { getMigrations: async () => migrations(engine) };
}
