/** Options and the API client of the commands that talk to a ferry server. */
import { ApiClient } from '@ferry/core';
import { stringOpt, type OptionSpec } from './command.js';
import type { Invocation } from './context.js';
import { usage } from './errors.js';

/** --server and --token, shared by every remote command. */
export const REMOTE_OPTIONS: Record<string, OptionSpec> = {
  server: { type: 'string', arg: 'URL', description: 'the ferry server (default $FERRY_SERVER)' },
  token: { type: 'string', arg: 'TOKEN', description: 'bearer token (default $FERRY_TOKEN)' },
};

/** The client for --server with --token (both may come from the environment). */
export function apiClient(inv: Invocation): ApiClient {
  const server = stringOpt(inv, 'server') ?? inv.ctx.serverFromEnv;
  if (!server) throw usage(`ferry ${inv.command} needs --server URL (or $FERRY_SERVER)`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw usage(`--server ${JSON.stringify(server)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usage(`--server must be an http:// or https:// URL, got ${server}`);
  const token = stringOpt(inv, 'token') ?? inv.ctx.tokenFromEnv;
  if (!token) throw usage(`ferry ${inv.command} needs --token TOKEN (or $FERRY_TOKEN)`);
  return new ApiClient({ server: url.toString(), token });
}
