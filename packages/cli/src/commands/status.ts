/**
 * `ferry status`: the fleet as a server's operator API sees it (docs/protocol.md section 5): a
 * progress bar per agent, the channels, the bytes saved against docker pull. `--watch` refreshes
 * in place on a terminal (a snapshot per interval otherwise) until Ctrl-C; `--json` prints the
 * API's answers.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError, messages, type AgentSummary, type ApiClient } from '@ferry/core';
import { stringOpt, type CommandSpec } from '../command.js';
import { writeJson, writeLines, type CliContext, type Invocation } from '../context.js';
import { EXIT } from '../errors.js';
import { REMOTE_OPTIONS, apiClient } from '../remote.js';
import { statusLines, type FleetStatus } from '../status-view.js';
import { parseDuration } from '../units.js';

/** Pages of agents read at most (1,000 agents each): a server that never ends its list is refused. */
const MAX_PAGES = 1000;

async function getJson(client: ApiClient, path: string, signal?: AbortSignal): Promise<unknown> {
  return (await client.request({ method: 'GET', path, signal })).body;
}

/** Every agent, page by page. */
async function allAgents(client: ApiClient, signal?: AbortSignal): Promise<{ now: number; agents: AgentSummary[] }> {
  const agents: AgentSummary[] = [];
  let after: string | null = null;
  for (let page = 0; page < MAX_PAGES; page++) {
    const a = await messages.agentsAnswer(await getJson(client, `/v1/agents${after === null ? '' : `?after=${encodeURIComponent(after)}`}`, signal));
    agents.push(...a.agents);
    if (a.next === null) return { now: a.now, agents };
    if (after !== null && a.next <= after) throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', `the server's agent list went back from ${after} to ${a.next}`);
    after = a.next;
  }
  throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `the server listed more than ${MAX_PAGES} pages of agents`);
}

/** The fleet as the server sees it now. */
export async function fetchStatus(client: ApiClient, signal?: AbortSignal): Promise<FleetStatus> {
  const [{ now, agents }, channels, bundles] = await Promise.all([allAgents(client, signal), getJson(client, '/v1/channels', signal), getJson(client, '/v1/bundles', signal)]);
  return { now, agents, channels: (await messages.channelsAnswer(channels)).channels, bundles: await messages.bundlesAnswer(bundles) };
}

/** Lines cut to the terminal's width, so a redraw knows how many lines it wrote. */
function fit(lines: string[], columns: number | undefined): string[] {
  return columns ? lines.map((l) => (l.length > columns ? l.slice(0, columns) : l)) : lines;
}

/** One refresh: the view, or the reason it could not be read (the watch goes on). */
async function frame(ctx: CliContext, client: ApiClient, json: boolean): Promise<string[]> {
  try {
    const s = await fetchStatus(client, ctx.signal);
    return json ? [JSON.stringify(s)] : statusLines(s);
  } catch (err) {
    if (!(err instanceof FerryError) || err.code !== 'FERRY_ERR_NETWORK') throw err;
    return [`ferry: ${err.message}; retrying`];
  }
}

async function watch(ctx: CliContext, client: ApiClient, intervalMs: number, json: boolean): Promise<number> {
  const inPlace = ctx.stdout.isTTY === true && !json;
  let drawn = 0;
  while (!ctx.signal?.aborted) {
    let lines: string[];
    try {
      lines = await frame(ctx, client, json);
    } catch (err) {
      if (ctx.signal?.aborted) break;
      throw err;
    }
    if (inPlace) {
      // back to the first line of the previous view, clear below, draw the new one
      lines = fit(lines, ctx.stdout.columns);
      ctx.stdout.write(`${drawn > 0 ? `\x1b[${drawn}A\r` : ''}\x1b[J${lines.join('\n')}\n`);
      drawn = lines.length;
    } else {
      writeLines(ctx, json ? lines : [...lines, '']);
    }
    await sleep(intervalMs, undefined, { signal: ctx.signal }).catch(() => {});
  }
  return EXIT.ok;
}

async function run(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const client = apiClient(inv);
  const interval = stringOpt(inv, 'interval');
  const intervalMs = interval === undefined ? 2000 : parseDuration(interval, '--interval');
  if (inv.values.watch === true) return watch(ctx, client, Math.max(200, intervalMs), global.json);
  const s = await fetchStatus(client, ctx.signal);
  if (global.json) writeJson(ctx, s);
  else writeLines(ctx, statusLines(s));
  return EXIT.ok;
}

/** The status command. */
export const statusCommand: CommandSpec = {
  name: 'status',
  summary: "Show every agent's transfer (a progress bar each, rate, ETA, last seen, stale agents marked, last error) and each channel's target, from a server.",
  args: '',
  positionals: { min: 0, max: 0 },
  options: {
    watch: { type: 'boolean', short: 'w', description: 'refresh until Ctrl-C (in place on a terminal; a snapshot per interval otherwise)' },
    interval: { type: 'string', arg: 'DURATION', description: 'time between refreshes with --watch (default 2s)' },
    ...REMOTE_OPTIONS,
  },
  notes: [
    'An agent is STALE when it missed 3 of its check-in intervals. --json prints the operator API\'s',
    'answers ({now, agents, channels, bundles}; one line per refresh with --watch).',
    'The token may be an operator, publisher or admin token (ferry tokens add --role operator).',
    'example:',
    '  ferry status --server https://ferry.example:8443 --token fyo_... --watch',
  ],
  run,
};
