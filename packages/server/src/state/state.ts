/**
 * The server's state API: tokens, agents, releases and channels, bundle jobs, over one database
 * (SQLite or PostgreSQL). Routes and the operator's views use only this, never SQL.
 */
import { openDatabase, type DatabaseOptions, type Engine } from './db.js';
import { AgentState } from './agents.js';
import { BundleState } from './bundles.js';
import { ReleaseState } from './releases.js';
import { TokenState } from './tokens.js';

/** Options for openState. */
export interface StateOptions extends DatabaseOptions {
  /** Clock in unix milliseconds (tests inject one). */
  now?: () => number;
}

/** The open state. */
export interface State {
  engine: Engine;
  tokens: TokenState;
  agents: AgentState;
  releases: ReleaseState;
  bundles: BundleState;
  close(): Promise<void>;
}

/** Opens (and migrates) the state. */
export async function openState(options: StateOptions): Promise<State> {
  const { db, engine, close } = await openDatabase(options);
  const now = options.now ?? Date.now;
  const tokens = new TokenState(db, now);
  return {
    engine,
    tokens,
    agents: new AgentState(db, tokens, now),
    releases: new ReleaseState(db, engine, now),
    bundles: new BundleState(db, engine, now),
    close,
  };
}
