/**
 * What `ferry status` prints: one row per agent with a progress bar (cli-progress's bar format),
 * bytes, rate, ETA, last seen (stale agents marked) and last error; the channels below it; and
 * the fleet's bytes saved against docker pull.
 */
import type cliProgress from 'cli-progress';
import type { AgentSummary, BundlesAnswer, ChannelSummary } from '@ferry/core';
import { humanBytes, shortDigest, table } from './format.js';
import { formatDuration } from './units.js';
import { loadCliProgress } from './lazy.js';

/** Everything `ferry status` shows, as the operator API answered it. */
export interface FleetStatus {
  /** The server's clock, unix seconds. */
  now: number;
  agents: AgentSummary[];
  channels: ChannelSummary[];
  bundles: BundlesAnswer;
}

const BAR = 20;
const BAR_OPTIONS = { barsize: BAR, barCompleteString: '\u2588'.repeat(BAR), barIncompleteString: '\u2591'.repeat(BAR), barGlue: '' };
const ERROR_WIDTH = 60;

/** Done fraction of an agent's transfer (a committed agent is whole). */
export function progressOf(a: AgentSummary): number {
  if (a.bytesTotal > 0) return Math.min(1, a.bytesDone / a.bytesTotal);
  return a.state === 'committed' ? 1 : 0;
}

/** `[████░░░░]  25.0%` */
export function progressBar(fraction: number): string {
  return `[${loadCliProgress().Format.BarFormat(fraction, BAR_OPTIONS as cliProgress.Options)}] ${(fraction * 100).toFixed(1).padStart(5)}%`;
}

function lastSeen(a: AgentSummary, now: number): string {
  if (a.lastSeen === null) return 'never';
  const ago = `${formatDuration(Math.max(0, now - a.lastSeen))} ago`;
  return a.stale ? `${ago} (STALE)` : ago;
}

function agentRow(a: AgentSummary, now: number): string[] {
  const moving = a.state === 'fetching' || a.state === 'applying';
  const error = a.error ? `${a.error.code}: ${a.error.message}` : '';
  return [
    a.id,
    a.state,
    a.channel ? `${a.channel}/${a.release ?? '-'}` : a.channels.join(',') || '-',
    progressBar(progressOf(a)),
    a.bytesTotal > 0 ? `${humanBytes(a.bytesDone)} / ${humanBytes(a.bytesTotal)}` : '-',
    a.rate > 0 ? `${humanBytes(Math.round(a.rate))}/s` : '-',
    moving && a.eta !== null ? formatDuration(a.eta) : '-',
    lastSeen(a, now),
    error.length > ERROR_WIDTH ? `${error.slice(0, ERROR_WIDTH - 3)}...` : error,
  ];
}

function channelRow(c: ChannelSummary): string[] {
  const r = c.release;
  return [c.name, r ? String(r.release) : 'none', r?.ref ?? '-', r ? shortDigest(r.config) : '-', r?.urgent ? 'urgent' : '', `${c.current} of ${c.agents} agents`];
}

function summary(s: FleetStatus): string {
  const count = (f: (a: AgentSummary) => boolean): number => s.agents.filter(f).length;
  const parts = [`${s.agents.length} agents`, `${count((a) => a.state === 'fetching' || a.state === 'applying')} transferring`, `${count((a) => a.stale)} stale`, `${count((a) => a.state === 'failed')} failed`];
  return `${parts.join(', ')}  (server time ${new Date(s.now * 1000).toISOString().replace('.000Z', 'Z')})`;
}

function savings(b: BundlesAnswer): string {
  const f = b.totals.fleet;
  if (f.agents === 0) return 'saved against docker pull: no agent is on a bundle whose docker pull size is known';
  const pct = f.pull > 0 ? ` (${Math.round((100 * f.saved) / f.pull)}%)` : '';
  return `saved against docker pull: ${humanBytes(f.saved)}${pct}: ${humanBytes(f.transfer)} of bundles instead of ${humanBytes(f.pull)} of layers, over ${f.agents} agent(s)`;
}

/** The lines of the status view. */
export function statusLines(s: FleetStatus): string[] {
  const agents = s.agents.length > 0 ? table([['AGENT', 'STATE', 'CHANNEL', 'PROGRESS', 'BYTES', 'RATE', 'ETA', 'LAST SEEN', 'LAST ERROR'], ...s.agents.map((a) => agentRow(a, s.now))]) : ['no agents registered (ferry agents add NAME)'];
  const channels = s.channels.length > 0 ? table([['CHANNEL', 'RELEASE', 'IMAGE', 'IMAGE ID', 'URGENT', 'RUNNING'], ...s.channels.map(channelRow)]) : ['no channels yet'];
  return [summary(s), '', ...agents, '', ...channels, '', savings(s.bundles)];
}
