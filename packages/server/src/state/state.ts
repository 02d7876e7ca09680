/**
 * The server's state API: tokens, agents, releases and channels, bundle jobs, declared image
 * layers, over one database (SQLite or PostgreSQL), with the change feed that keeps its caches
 * and the dashboard current. Routes and the operator's views use only this, never SQL.
 */
import { openDatabase, type DatabaseOptions, type Engine } from './db.js';
import { AgentState } from './agents.js';
import { BundleState } from './bundles.js';
import { ChangeFeed, PgChangeListener } from './changes.js';
import { ImageState } from './images.js';
import { ReleaseState } from './releases.js';
import { TokenState } from './tokens.js';

/** Options for openState. */
export interface StateOptions extends DatabaseOptions {
  /** Clock in unix milliseconds (tests inject one). */
  now?: () => number;
  /**
   * Milliseconds a cached token grant (PostgreSQL only: on SQLite this process makes every
   * change), latest release or built-bundle list may be used without a change notification
   * (default 5 s): how long a change another server made can go unseen while the notification
   * listener is down.
   */
  cacheTtlMs?: number;
  /** Names this process to PostgreSQL (application_name), so it skips its own notifications. */
  instanceId?: string;
}

/** The open state. */
export interface State {
  engine: Engine;
  tokens: TokenState;
  agents: AgentState;
  releases: ReleaseState;
  bundles: BundleState;
  images: ImageState;
  /** What changed, here and (on PostgreSQL) in every other server on the database. */
  changes: ChangeFeed;
  close(): Promise<void>;
}

/** PostgreSQL's application_name: printable ASCII, at most 63 bytes. */
function applicationName(id: string): string {
  return `ferry:${id}`.replace(/[^\x20-\x7e]/g, '_').slice(0, 56);
}

/** Opens (and migrates) the state. */
export async function openState(options: StateOptions): Promise<State> {
  const origin = applicationName(options.instanceId ?? `${process.pid}:${Math.random().toString(36).slice(2, 8)}`);
  const { db, engine, close } = await openDatabase({ ...options, applicationName: origin });
  const now = options.now ?? Date.now;
  const ttl = options.cacheTtlMs ?? 5_000;
  const changes = new ChangeFeed();
  let listener: PgChangeListener | undefined;
  if (engine === 'postgres' && options.url) {
    listener = new PgChangeListener({ url: options.url, origin, feed: changes });
    try {
      await listener.start();
    } catch (err) {
      await close();
      throw err;
    }
  }
  // on SQLite this process is the only writer and announces every revocation itself, so a grant
  // stays cached until revoked (an agent checking in every minute would outlive a 5 s TTL and
  // cost a lookup each time); on PostgreSQL the TTL bounds a notification missed while the
  // listener reconnects
  const tokens = new TokenState(db, now, changes, engine === 'sqlite' ? Infinity : ttl);
  return {
    engine,
    tokens,
    agents: new AgentState(db, tokens, now, changes, engine === 'sqlite'),
    releases: new ReleaseState(db, engine, now, changes, ttl),
    bundles: new BundleState(db, engine, now, changes, ttl),
    images: new ImageState(db),
    changes,
    async close() {
      try {
        await listener?.close();
      } finally {
        await close();
      }
    },
  };
}
