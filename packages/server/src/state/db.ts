/**
 * Opening the state database: SQLite (better-sqlite3, the embedded default) or PostgreSQL (pg),
 * both behind Kysely, migrated to the latest schema on open. Kysely is chosen over hand-written
 * dual SQL because one query builder compiles every statement for both engines (quoting,
 * placeholders, RETURNING, ON CONFLICT), and its Migrator gives both the same locked,
 * recorded migrations; the one engine-specific statement (the SKIP LOCKED job claim) is marked.
 */
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type KyselyConfig } from 'kysely';
import pg from 'pg';
import { FerryError } from '@ferry/core';
import { migrationProvider } from './migrations.js';
import type { Database } from './schema.js';

/** Which engine holds the state. */
export type Engine = 'sqlite' | 'postgres';

/** An open state database. */
export interface OpenDatabase {
  db: Kysely<Database>;
  engine: Engine;
  /** Closes every connection (after in-flight queries). */
  close(): Promise<void>;
}

/** Where the state lives: a SQLite file, or a `postgres://` URL. */
export interface DatabaseOptions {
  /** SQLite file (used when `url` is absent). */
  sqlitePath?: string;
  /** `postgres://user@host:port/db` (several servers may share it). */
  url?: string;
  /** Connections in the PostgreSQL pool (default 10). */
  poolSize?: number;
  /** PostgreSQL application_name of the pool's connections. */
  applicationName?: string;
  /** Called with the SQL of every statement run (tests count a request's statements). */
  onQuery?: (sql: string) => void;
}

/** bigint columns (counters, times, sizes) come back as numbers; they stay below 2^53. */
const INT8_OID = 20;

type Log = KyselyConfig['log'];

/** Kysely's log hook for `onQuery`. */
const queryLog = (onQuery: DatabaseOptions['onQuery']): { log?: Log } => (onQuery ? { log: (e) => (e.level === 'query' ? onQuery(e.query.sql) : undefined) } : {});

function postgres(url: string, poolSize: number, applicationName: string | undefined, log: { log?: Log }): Kysely<Database> {
  const types = {
    getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format ?? 'text')),
  };
  const pool = new pg.Pool({ connectionString: url, max: poolSize, types: types as pg.CustomTypesConfig, ...(applicationName ? { application_name: applicationName } : {}) });
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }), ...log });
}

/** Prepared statements kept per SQL text (Kysely's driver prepares every query anew). */
const STATEMENT_CACHE = 256;

function sqlite(path: string, log: { log?: Log }): Kysely<Database> {
  const database = new BetterSqlite3(path);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('busy_timeout = 5000');
  // Kysely runs one query at a time on this connection, so a cached statement is never busy
  const statements = new Map<string, BetterSqlite3.Statement>();
  const cached = {
    close: () => database.close(),
    prepare(sql: string): BetterSqlite3.Statement {
      let s = statements.get(sql);
      if (!s) {
        if (statements.size >= STATEMENT_CACHE) statements.clear();
        s = database.prepare(sql);
        statements.set(sql, s);
      }
      return s;
    },
  };
  return new Kysely<Database>({ dialect: new SqliteDialect({ database: cached as unknown as BetterSqlite3.Database }), ...log });
}

/** Opens (and migrates) the state database. */
export async function openDatabase(options: DatabaseOptions): Promise<OpenDatabase> {
  let engine: Engine;
  let db: Kysely<Database>;
  if (options.url) {
    if (!/^postgres(ql)?:\/\//.test(options.url)) throw new FerryError('FERRY_ERR_USAGE', `--database takes a postgres:// URL, got ${JSON.stringify(options.url.slice(0, 40))}`);
    engine = 'postgres';
    db = postgres(options.url, options.poolSize ?? 10, options.applicationName, queryLog(options.onQuery));
  } else if (options.sqlitePath) {
    engine = 'sqlite';
    db = sqlite(options.sqlitePath, queryLog(options.onQuery));
  } else {
    throw new FerryError('FERRY_ERR_USAGE', 'the state database needs a SQLite path or a postgres:// URL');
  }
  try {
    const { error, results } = await new Migrator({ db, provider: migrationProvider(engine) }).migrateToLatest();
    if (error) {
      const failed = results?.find((r) => r.status === 'Error')?.migrationName;
      throw new FerryError('FERRY_ERR_INTERNAL', `state migration ${failed ?? ''} failed: ${(error as Error).message}`, { cause: error });
    }
  } catch (err) {
    await db.destroy();
    throw err instanceof FerryError ? err : new FerryError('FERRY_ERR_IO', `cannot open the state database: ${(err as Error).message}`, { cause: err });
  }
  return { db, engine, close: () => db.destroy() };
}
