/** What every route plugin works with: the state, the store, the repository and the builder. */
import type { RolePolicy, Store } from '@ferry/core';
import type { Metrics } from './metrics.js';
import type { ResolvedOptions } from './options.js';
import type { State } from './state/state.js';

/** Wakes the bundle builder when a job was queued. */
export interface BuildQueue {
  notify(): void;
}

/** The collaborators of the routes (injected, so tests can build an app around their own). */
export interface ServerContext {
  options: ResolvedOptions;
  state: State;
  store: Store;
  /** The bundle repository directory (headers/, chunks/). */
  repoDir: string;
  /** Keys trusted to sign release statements. */
  releaseTrust: RolePolicy;
  builds: BuildQueue;
  metrics: Metrics;
}
