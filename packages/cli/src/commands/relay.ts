/**
 * `ferry relay`: a pull-through cache for a site (packages/relay, docs/protocol.md section 7) until
 * SIGINT/SIGTERM, then a graceful shutdown. Logs (pino) go to stderr; the startup line to stdout.
 */
import type { RelayOptions } from '@ferry/relay';
import { requiredOpt, stringOpt, userPath, type CommandSpec } from '../command.js';
import { until, writeJson, writeLines, type Invocation } from '../context.js';
import { EXIT } from '../errors.js';
import { parseDuration, parseHostPort, parseRate, parseSize, parseWhole } from '../units.js';

function options(inv: Invocation): RelayOptions {
  const listen = parseHostPort(stringOpt(inv, 'listen') ?? '0.0.0.0:8480', '--listen', true);
  /** `{ [key]: parsed }` when the option is given, else nothing (the relay's default applies). */
  const opt = <T>(name: string, key: keyof RelayOptions, parse: (v: string) => T): Partial<RelayOptions> => {
    const v = stringOpt(inv, name);
    return v === undefined ? {} : { [key]: parse(v) };
  };
  const level = stringOpt(inv, 'log-level') ?? 'info';
  const rate = stringOpt(inv, 'upstream-rate');
  return {
    upstream: requiredOpt(inv, 'upstream', 'URL'),
    upstreamRepo: stringOpt(inv, 'upstream-repo'),
    cacheDir: userPath(inv, requiredOpt(inv, 'cache', 'DIR')),
    host: listen.host,
    port: listen.port,
    publicRepoUrl: stringOpt(inv, 'public-url'),
    ...opt('cache-max', 'maxCacheBytes', (v) => parseSize(v, '--cache-max')),
    ...opt('concurrency', 'upstreamConcurrency', (v) => parseWhole(v, '--concurrency', 1, 64)),
    ...opt('stale-answer', 'staleAnswerMs', (v) => parseDuration(v, '--stale-answer')),
    fetcher: rate === undefined ? {} : { maxBytesPerSecond: parseRate(rate, '--upstream-rate') / 8 },
    logger: level === 'silent' ? false : { level, stream: inv.ctx.stderr },
  };
}

async function run(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const o = options(inv);
  // loaded here: fastify costs every other command time
  const { startRelay } = await import('@ferry/relay');
  const relay = await startRelay(o);
  const facts = { url: relay.url, upstream: o.upstream, cache: o.cacheDir, queued: relay.queue.length, pid: process.pid };
  if (global.json) writeJson(ctx, facts);
  else {
    writeLines(ctx, [
      `ferry relay listening on ${relay.url} -> ${o.upstream} (cache ${o.cacheDir}${relay.queue.length > 0 ? `, ${relay.queue.length} buffered report requests` : ''})`,
      `  agents use ${relay.url} as their server; stop with Ctrl-C or SIGTERM`,
    ]);
  }
  await until(ctx.signal);
  await relay.close();
  return EXIT.ok;
}

/** The relay command. */
export const relayCommand: CommandSpec = {
  name: 'relay',
  summary: 'Run a site relay: a pull-through cache agents use as their server, so each chunk crosses the upstream link once.',
  args: '',
  positionals: { min: 0, max: 0 },
  options: {
    upstream: { type: 'string', arg: 'URL', description: 'the ferry server (required); check-ins and reports are forwarded there' },
    cache: { type: 'string', arg: 'DIR', description: 'cache directory: chunks/ and headers/ (the repository layout), partial/, queue/ (required)' },
    listen: { type: 'string', arg: 'HOST:PORT', description: 'address to listen on (default 0.0.0.0:8480; port 0 picks one)' },
    'upstream-repo': { type: 'string', arg: 'URL', description: 'where chunks and headers come from (default URL/repo/)' },
    'public-url': { type: 'string', arg: 'URL', description: 'repository URL announced to agents (default: this relay\'s /repo/ as the agent reached it)' },
    'cache-max': { type: 'string', arg: 'SIZE', description: 'cache size cap; past it the least recently served chunks are evicted to 90% (default 20GiB)' },
    concurrency: { type: 'string', arg: 'N', description: 'objects fetched from upstream at once (default 4)' },
    'upstream-rate': { type: 'string', arg: 'RATE', description: 'bandwidth cap on the upstream link, leaving room for other traffic: 512kbit (default none)' },
    'stale-answer': { type: 'string', arg: 'TIME', description: 'while upstream is down, answer a check-in with that agent\'s last answer if younger than this (default 1h)' },
    'log-level': { type: 'string', arg: 'LEVEL', description: 'log level: trace, debug, info, warn, error, silent (default info; logs go to stderr)' },
  },
  notes: [
    'Agents point at the relay exactly as at the server. Chunks and headers are verified against their',
    'digest before they are cached, and concurrent requests for one share one upstream fetch. While',
    'upstream is down, cached chunks are still served, reports are buffered on disk (bounded) and',
    'forwarded in order later, and a check-in gets the agent\'s last answer or 503 with Retry-After.',
    'example: ferry relay --upstream https://ferry.example:8443 --cache /var/cache/ferry-relay --upstream-rate 512kbit',
  ],
  run,
};
