/**
 * A running ferry server: the data directory prepared, the state opened (SQLite, or PostgreSQL
 * shared with other servers), the builder started, the app listening. `close` is the graceful
 * shutdown: stop accepting, let in-flight requests finish, let running builds finish, close the
 * database.
 */
import type { FastifyInstance } from 'fastify';
import { FerryError, Store, rolePolicy } from '@ferry/core';
import { buildApp } from './app.js';
import { Metrics } from './metrics.js';
import { BundleBuilder } from './builder.js';
import type { ServerContext } from './context.js';
import { loadAdminToken, loadBundleKey, prepareDataDir, type DataPaths } from './data-dir.js';
import { resolveOptions, type ServerOptions } from './options.js';
import { openState, type State } from './state/state.js';

/** A server that is listening. */
export interface RunningServer {
  app: FastifyInstance;
  /** `http(s)://host:port` it listens on. */
  url: string;
  paths: DataPaths;
  state: State;
  builder: BundleBuilder;
  /** The admin token and whether this start created it (and the bundle key). */
  admin: { token: string; created: boolean };
  bundleKeyCreated: boolean;
  /** Graceful shutdown. */
  close(): Promise<void>;
}

/** Prepares everything and builds the app without listening (tests may add hooks first). */
export async function createServer(options: ServerOptions): Promise<Omit<RunningServer, 'url'> & { listen(): Promise<string> }> {
  const o = resolveOptions(options);
  if (o.releaseKeys.length === 0) throw new FerryError('FERRY_ERR_USAGE', 'the server needs at least one trusted release key (--trust-release FILE)');
  const releaseTrust = rolePolicy(o.releaseKeys, o.releaseThreshold);
  const paths = await prepareDataDir(o.dataDir);
  const store = await Store.open(paths.store, { create: true });
  const key = await loadBundleKey(paths);
  const state = await openState({ sqlitePath: paths.sqlite, url: o.databaseUrl, now: o.now, instanceId: o.instanceId });
  try {
    const admin = await loadAdminToken(paths);
    await state.tokens.ensure('admin', 'admin', admin.token);
    const builds = { notify: () => builder.notify() };
    const metrics = new Metrics({ state, checkinInterval: o.checkinInterval, processMetrics: o.processMetrics });
    const ctx: ServerContext = { options: o, state, store, repoDir: paths.repo, releaseTrust, builds, metrics };
    const app = await buildApp(ctx);
    const builder = new BundleBuilder({ state, store, repoDir: paths.repo, headerKey: key.key, build: o.build, instanceId: o.instanceId, now: o.now, log: app.log, onBuilt: (ok, ms) => metrics.built(ok, ms) });
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        try {
          await app.close();
          await builder.close();
        } finally {
          await state.close();
        }
      })());
    const listen = async (): Promise<string> => {
      await app.listen({ host: o.host, port: o.port, backlog: o.backlog });
      builder.start();
      const addr = app.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : o.port;
      const host = o.host.includes(':') ? `[${o.host}]` : o.host;
      return `${o.tls ? 'https' : 'http'}://${host}:${port}`;
    };
    return { app, paths, state, builder, admin, bundleKeyCreated: key.created, close, listen };
  } catch (err) {
    await state.close();
    throw err;
  }
}

/** Prepares, builds and listens. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const s = await createServer(options);
  try {
    return { ...s, url: await s.listen() };
  } catch (err) {
    await s.close();
    throw err;
  }
}
