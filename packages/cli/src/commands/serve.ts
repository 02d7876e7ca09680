/**
 * `ferry serve`: one server process (DESIGN.md section 7) until SIGINT/SIGTERM, then a graceful
 * shutdown. Options come from the command line, or a JSON config file (--config) that the command
 * line overrides. Structured logs (pino) go to stderr; the startup summary to stdout.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { FerryError, parsePublicKey, type PublicKey } from '@ferry/core';
import type { ServerOptions } from '@ferry/server';
import { listOpt, stringOpt, userPath, type CommandSpec } from '../command.js';
import { until, writeJson, writeLines, type Invocation } from '../context.js';
import { EXIT, usage } from '../errors.js';
import { parseWhole } from '../units.js';

/** The config file's keys (paths relative to the file). */
interface ServeConfig {
  data?: string;
  host?: string;
  port?: number;
  database?: string;
  tlsCert?: string;
  tlsKey?: string;
  trustRelease?: string[];
  repoUrl?: string;
  checkinInterval?: number;
  logLevel?: string;
  plainHeader?: boolean;
}

async function readConfig(inv: Invocation): Promise<{ config: ServeConfig; base: string }> {
  const file = stringOpt(inv, 'config');
  if (file === undefined) return { config: {}, base: inv.ctx.cwd };
  const path = userPath(inv, file);
  let config: unknown;
  try {
    config = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw usage(`--config ${path} is not a readable JSON file (${(err as Error).message})`);
  }
  if (!config || typeof config !== 'object' || Array.isArray(config)) throw usage(`--config ${path} must hold a JSON object`);
  return { config: config as ServeConfig, base: dirname(path) };
}

async function readKey(path: string): Promise<PublicKey> {
  try {
    return parsePublicKey(await readFile(path), path);
  } catch (err) {
    if (err instanceof FerryError) throw err;
    throw new FerryError('FERRY_ERR_KEY_INVALID', `cannot read release key ${path}: ${(err as Error).message}`, { cause: err });
  }
}

async function options(inv: Invocation): Promise<ServerOptions> {
  const { config, base } = await readConfig(inv);
  const rel = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  const pick = (name: string, fromConfig: string | undefined): string | undefined => {
    const v = stringOpt(inv, name);
    return v !== undefined ? userPath(inv, v) : fromConfig !== undefined ? rel(fromConfig) : undefined;
  };
  const data = pick('data', config.data);
  if (!data) throw usage('ferry serve needs --data DIR (the server keeps its store, repository, state and keys there)');
  const trust = [...listOpt(inv, 'trust-release').map((p) => userPath(inv, p)), ...(config.trustRelease ?? []).map(rel)];
  if (trust.length === 0) throw usage('ferry serve needs --trust-release FILE: the public key(s) release statements must be signed with (ferry keygen)');
  const [cert, key] = [pick('tls-cert', config.tlsCert), pick('tls-key', config.tlsKey)];
  if ((cert === undefined) !== (key === undefined)) throw usage('TLS needs both --tls-cert and --tls-key');
  const port = stringOpt(inv, 'port');
  const level = stringOpt(inv, 'log-level') ?? config.logLevel ?? 'info';
  return {
    dataDir: data,
    host: stringOpt(inv, 'host') ?? config.host ?? '127.0.0.1',
    port: port !== undefined ? parseWhole(port, '--port', 0, 65535) : (config.port ?? 8080),
    databaseUrl: stringOpt(inv, 'database') ?? config.database,
    tls: cert && key ? { cert: await readFile(cert), key: await readFile(key) } : undefined,
    releaseKeys: await Promise.all(trust.map(readKey)),
    repoUrl: stringOpt(inv, 'repo-url') ?? config.repoUrl,
    checkinInterval: config.checkinInterval,
    build: { plainHeader: inv.values['plain-header'] === true || config.plainHeader === true },
    logger: level === 'silent' ? false : { level, stream: inv.ctx.stderr },
  } as ServerOptions;
}

async function run(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const o = await options(inv);
  // loaded here, not at startup: fastify, the database drivers and the differ cost every other command time
  const { startServer } = await import('@ferry/server');
  const server = await startServer(o);
  const facts = { url: server.url, data: o.dataDir, database: server.state.engine, adminToken: server.paths.adminToken, adminTokenCreated: server.admin.created, bundlePub: server.paths.bundlePub, bundleKeyCreated: server.bundleKeyCreated, pid: process.pid };
  if (global.json) writeJson(ctx, facts);
  else {
    writeLines(ctx, [
      `ferry server listening on ${server.url} (state: ${server.state.engine}, data: ${o.dataDir})`,
      `  admin token: ${server.paths.adminToken}${server.admin.created ? ' (created now, mode 0600)' : ''}`,
      `  bundle key:  agents trust ${server.paths.bundlePub} for the header role${server.bundleKeyCreated ? ' (created now)' : ''}`,
      '  stop with Ctrl-C or SIGTERM (in-flight requests finish first)',
    ]);
  }
  await until(ctx.signal);
  await server.close();
  return EXIT.ok;
}

/** The serve command. */
export const serveCommand: CommandSpec = {
  name: 'serve',
  summary: 'Run a ferry server: hosts bundle headers and chunks, accepts pushes and releases, answers agents\' check-ins and builds their bundles.',
  args: '',
  positionals: { min: 0, max: 0 },
  options: {
    data: { type: 'string', arg: 'DIR', description: 'data directory: store/, repo/, state.db, keys/, admin.token (required)' },
    'trust-release': { type: 'string', multiple: true, arg: 'FILE', description: 'public key trusted to sign release statements (repeatable; required)' },
    host: { type: 'string', arg: 'HOST', description: 'address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)' },
    port: { type: 'string', arg: 'PORT', description: 'port (default 8080; 0 picks a free one)' },
    database: { type: 'string', arg: 'URL', description: 'postgres://... to share state with other ferry serve processes (default: SQLite in --data)' },
    'tls-cert': { type: 'string', arg: 'FILE', description: 'TLS certificate (PEM); with --tls-key, serve HTTPS' },
    'tls-key': { type: 'string', arg: 'FILE', description: 'TLS private key (PEM)' },
    'repo-url': { type: 'string', arg: 'URL', description: 'repository URL announced to agents, e.g. nginx or a CDN serving DIR/repo (default: this server\'s /repo/)' },
    'plain-header': { type: 'boolean', description: 'sign bundle headers uncompressed, for agents older than header version 4 (they refuse compressed headers)' },
    config: { type: 'string', arg: 'FILE', description: 'JSON file with any of: data, host, port, database, tlsCert, tlsKey, trustRelease, repoUrl, checkinInterval, logLevel, plainHeader' },
    'log-level': { type: 'string', arg: 'LEVEL', description: 'log level: trace, debug, info, warn, error, silent (default info; logs go to stderr)' },
  },
  notes: [
    'On first start it creates the admin token (DIR/admin.token, mode 0600) and the online bundle key',
    '(DIR/keys/bundle.key); agents trust DIR/keys/bundle.pub for the header role and the release key',
    'for the release role. Several servers share one --database and one --data directory.',
    'examples:',
    '  ferry serve --data /var/lib/ferry --trust-release release.pub --host 0.0.0.0 --port 8443 --tls-cert c.pem --tls-key k.pem',
    '  ferry serve --data /srv/ferry --trust-release release.pub --database postgres://ferry@db/ferry',
  ],
  run,
};
