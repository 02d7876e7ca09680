/**
 * The agent's configuration (`ferry agent --config FILE`): a JSON object whose keys the command
 * line overrides. Paths in the file are relative to it. Only the CLI reads it; the agent package
 * takes the resulting AgentOptions.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { readRegularFile } from '@ferry/core';
import type { AgentOptions } from '@ferry/agent';
import { listOpt, stringOpt, userPath } from './command.js';
import type { Invocation } from './context.js';
import { usage } from './errors.js';
import { loadTrust } from './trust.js';
import { parseRate, parseWhole } from './units.js';

/** The config file's keys. */
export interface AgentConfig {
  servers?: string[];
  id?: string;
  token?: string;
  tokenFile?: string;
  channels?: string[];
  trust?: string[];
  store?: string;
  stateDir?: string;
  cacheDir?: string;
  sources?: string[];
  /** A link rate (`256kbit`, `50kB/s`) or a number of bytes/s. */
  bandwidth?: string | number;
  concurrency?: number;
  checkinInterval?: number;
  onCommit?: string;
  keepCache?: boolean;
}

const CONFIG_KEYS = new Set(['servers', 'id', 'token', 'tokenFile', 'channels', 'trust', 'store', 'stateDir', 'cacheDir', 'sources', 'bandwidth', 'concurrency', 'checkinInterval', 'onCommit', 'keepCache']);
const SMALL = 1024 * 1024;

async function readConfig(inv: Invocation): Promise<{ config: AgentConfig; base: string }> {
  const file = stringOpt(inv, 'config');
  if (file === undefined) return { config: {}, base: inv.ctx.cwd };
  const path = userPath(inv, file);
  const text = (await readRegularFile(path, { what: 'agent config', missing: 'FERRY_ERR_USAGE', notRegular: 'FERRY_ERR_USAGE', tooBig: 'FERRY_ERR_USAGE', maxBytes: SMALL })).toString('utf8');
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (err) {
    throw usage(`--config ${path} is not valid JSON (${(err as Error).message})`);
  }
  if (!config || typeof config !== 'object' || Array.isArray(config)) throw usage(`--config ${path} must hold a JSON object`);
  const unknown = Object.keys(config).filter((k) => !CONFIG_KEYS.has(k));
  if (unknown.length > 0) {
    // the list keys are plural ("servers", "channels"...): the singular is the likely slip
    const named = unknown.map((k) => (CONFIG_KEYS.has(`${k}s`) ? `${k} (did you mean ${k}s, a list?)` : k));
    throw usage(`--config ${path}: unknown key(s) ${named.join(', ')} (known: ${[...CONFIG_KEYS].join(', ')})`);
  }
  return { config: config as AgentConfig, base: dirname(path) };
}

async function readToken(path: string): Promise<string> {
  const bytes = await readRegularFile(path, { what: 'token file', missing: 'FERRY_ERR_USAGE', notRegular: 'FERRY_ERR_USAGE', tooBig: 'FERRY_ERR_USAGE', maxBytes: 4096 });
  return bytes.toString('utf8').trim();
}

/** The agent's options from the config file and the command line (which wins), and the on-commit command template. */
export async function agentOptions(inv: Invocation): Promise<{ options: AgentOptions; onCommit: string | undefined }> {
  const { config, base } = await readConfig(inv);
  const rel = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  const list = (name: string, fromConfig: string[] | undefined): string[] => {
    const v = listOpt(inv, name);
    return v.length > 0 ? v : (fromConfig ?? []);
  };
  const servers = list('server', config.servers);
  if (servers.length === 0 && inv.ctx.serverFromEnv) servers.push(inv.ctx.serverFromEnv);
  const tokenFile = stringOpt(inv, 'token-file') ?? (config.tokenFile !== undefined ? rel(config.tokenFile) : undefined);
  const token = stringOpt(inv, 'token') ?? config.token ?? (tokenFile !== undefined ? await readToken(userPath(inv, tokenFile)) : inv.ctx.tokenFromEnv);
  const id = stringOpt(inv, 'id') ?? config.id;
  const channels = list('channel', config.channels);
  const trustFiles = listOpt(inv, 'trust').length > 0 ? listOpt(inv, 'trust').map((p) => userPath(inv, p)) : (config.trust ?? []).map(rel);
  if (servers.length === 0) throw usage('ferry agent needs --server URL (or "servers" in --config, or $FERRY_SERVER)');
  if (!id) throw usage('ferry agent needs --id ID (the id given to ferry agents add)');
  if (!token) throw usage('ferry agent needs --token, --token-file or $FERRY_TOKEN (the agent token from ferry agents add)');
  if (channels.length === 0) throw usage('ferry agent needs --channel NAME (repeatable)');
  if (trustFiles.length === 0) throw usage('ferry agent needs --trust FILE: the release key and the server\'s bundle key (DATA/keys/bundle.pub), or a JSON trust file');
  const pathOpt = (name: string, fromConfig: string | undefined): string | undefined => {
    const v = stringOpt(inv, name);
    return v !== undefined ? userPath(inv, v) : fromConfig !== undefined ? rel(fromConfig) : undefined;
  };
  const bandwidth = stringOpt(inv, 'bandwidth') ?? config.bandwidth;
  const concurrency = stringOpt(inv, 'concurrency');
  const interval = stringOpt(inv, 'checkin-interval');
  const options: AgentOptions = {
    servers,
    id,
    token,
    channels,
    trust: await loadTrust(trustFiles),
    store: inv.global.storeGiven || config.store === undefined ? inv.global.store : rel(config.store),
    stateDir: pathOpt('state', config.stateDir),
    cacheDir: pathOpt('cache', config.cacheDir),
    sources: list('source', config.sources).map((s) => (/^[a-z]+:/i.test(s) ? s : userPath(inv, s))),
    maxBytesPerSecond: bandwidth === undefined ? undefined : typeof bandwidth === 'number' ? bandwidth : parseRate(bandwidth, '--bandwidth') / 8,
    concurrency: concurrency !== undefined ? parseWhole(concurrency, '--concurrency', 1, 64) : config.concurrency,
    keepCache: inv.values['keep-cache'] === true || config.keepCache === true,
    checkinSeconds: interval !== undefined ? parseWhole(interval, '--checkin-interval', 1, 86_400) : config.checkinInterval,
  };
  return { options, onCommit: stringOpt(inv, 'on-commit') ?? config.onCommit };
}
