/**
 * Options of the agent daemon (DESIGN.md section 6), with every default merged in one place
 * ({@link resolveAgentOptions}). Only the CLI reads config files and argv; it builds these.
 */
import { join } from 'node:path';
import { AGENT_ID_RE, CHANNEL_RE, FerryError, PROTOCOL_LIMITS, type Report, type TrustPolicy } from '@ferry/core';
import type { FetcherOptions } from './options.js';
import type { FetchProgress } from './progress.js';

/** Options of {@link Agent}. */
export interface AgentOptions {
  /** Server base URLs, tried in order at each contact (a relay, then the server, ...). */
  servers: string[];
  /** This agent's id (docs/protocol.md section 6). */
  id: string;
  /** Its agent token (`fya_...`). */
  token: string;
  /** Channels it follows, in order of preference (an urgent release goes first whatever its channel). */
  channels: string[];
  /** Trusted release and header keys. */
  trust: TrustPolicy;
  /** The store directory (it must exist: `ferry import` or a first `ferry agent` run creates it). */
  store: string;
  /** The agent's own state (lock, request counter, buffered reports; default `<store>/agent`). */
  stateDir?: string | undefined;
  /** The chunk cache (default `<stateDir>/cache`). */
  cacheDir?: string | undefined;
  /**
   * Keep every chunk and header after a commit (a cache copied onward to other devices). Default
   * false: each commit prunes the headers whose release is installed and every chunk no other
   * cached header names (cache-prune.ts).
   */
  keepCache?: boolean | undefined;
  /** Extra chunk sources tried before the assignment's repository: a relay URL, a USB stick directory. */
  sources?: string[] | undefined;
  /** Bandwidth cap for chunk transfers, bytes/s (default none). */
  maxBytesPerSecond?: number | undefined;
  /** Chunks in flight at once (default 3). */
  concurrency?: number | undefined;
  /** Seconds between check-ins while idle, unless the server says otherwise (default 60). */
  checkinSeconds?: number | undefined;
  /** Seconds between check-ins during a transfer (priority, reports; default 30). */
  transferCheckinSeconds?: number | undefined;
  /** Seconds between progress reports during a transfer (default 10). */
  reportSeconds?: number | undefined;
  /** Reports kept while offline (default and at most PROTOCOL_LIMITS.reports); the oldest go first. */
  maxBufferedReports?: number | undefined;
  /** Seconds a bad bundle is left alone before it is tried again (default 3600). */
  badBundleSeconds?: number | undefined;
  /** First wait after a failure, seconds; it doubles up to `maxBackoffSeconds` (default 1, or `maxBackoffSeconds` when that is less). */
  minBackoffSeconds?: number | undefined;
  /** Longest wait between attempts after network errors, seconds (default 60; jitter adds up to as much again). */
  maxBackoffSeconds?: number | undefined;
  /**
   * While the agent waits after a network failure (no server answered), it probes the servers this
   * often, seconds, and checks in as soon as one answers (default 1): a link that comes back is used
   * within one probe, not at the end of a backoff that may run past the link's next outage.
   */
  probeSeconds?: number | undefined;
  /** Runs after each commit with the installed ref; a failure is reported, not fatal. */
  onCommit?: ((ref: string, signal: AbortSignal) => Promise<void>) | undefined;
  /** Every report the agent makes (logs, the CLI's progress line). */
  onReport?: ((report: Report) => void) | undefined;
  /** Transfer progress about every second (a progress line); reports stay at `reportSeconds`. */
  onProgress?: ((phase: 'fetching' | 'applying', p: FetchProgress) => void) | undefined;
  /** Extra chunk fetcher options (stall timeouts, retries; tests shorten them). */
  fetcher?: Partial<Omit<FetcherOptions, 'cacheDir' | 'sources'>> | undefined;
  /** Unix seconds now (tests inject it). */
  now?: (() => number) | undefined;
  /** The agent's version string sent at check-in. */
  version?: string | undefined;
}

/** AgentOptions with every default filled in. */
export type ResolvedAgentOptions = Required<Omit<AgentOptions, 'onCommit' | 'onReport' | 'onProgress' | 'maxBytesPerSecond' | 'version'>> & Pick<AgentOptions, 'onCommit' | 'onReport' | 'onProgress' | 'maxBytesPerSecond' | 'version'>;

function need(ok: boolean, msg: string): void {
  if (!ok) throw new FerryError('FERRY_ERR_USAGE', msg);
}

/** Fills in defaults and checks the options (FERRY_ERR_USAGE). */
export function resolveAgentOptions(o: AgentOptions): ResolvedAgentOptions {
  const stateDir = o.stateDir ?? join(o.store, 'agent');
  const r: ResolvedAgentOptions = {
    ...o,
    stateDir,
    cacheDir: o.cacheDir ?? join(stateDir, 'cache'),
    sources: o.sources ?? [],
    keepCache: o.keepCache ?? false,
    concurrency: o.concurrency ?? 3,
    checkinSeconds: o.checkinSeconds ?? 60,
    transferCheckinSeconds: o.transferCheckinSeconds ?? 30,
    reportSeconds: o.reportSeconds ?? 10,
    maxBufferedReports: o.maxBufferedReports ?? PROTOCOL_LIMITS.reports,
    badBundleSeconds: o.badBundleSeconds ?? 3600,
    minBackoffSeconds: o.minBackoffSeconds ?? Math.min(1, o.maxBackoffSeconds ?? 60),
    maxBackoffSeconds: o.maxBackoffSeconds ?? 60,
    probeSeconds: o.probeSeconds ?? 1,
    fetcher: o.fetcher ?? {},
    now: o.now ?? (() => Date.now() / 1000),
  };
  need(r.servers.length > 0 && r.servers.every((s) => /^https?:\/\//.test(s)), 'the agent needs at least one server URL (http:// or https://)');
  need(AGENT_ID_RE.test(r.id), `${JSON.stringify(r.id)} is not an agent id (${AGENT_ID_RE.source})`);
  need(r.token.length > 0, 'the agent needs its token');
  need(r.channels.length > 0 && r.channels.length <= PROTOCOL_LIMITS.channels && r.channels.every((c) => CHANNEL_RE.test(c)), 'the agent needs 1 to 64 valid channel names');
  need(r.maxBufferedReports >= 1 && r.maxBufferedReports <= PROTOCOL_LIMITS.reports, `reports buffered must be 1 to ${PROTOCOL_LIMITS.reports}`);
  for (const k of ['checkinSeconds', 'transferCheckinSeconds', 'reportSeconds', 'badBundleSeconds', 'minBackoffSeconds', 'maxBackoffSeconds', 'probeSeconds'] as const) need(r[k] > 0, `${k} must be positive`);
  need(r.minBackoffSeconds <= r.maxBackoffSeconds, 'minBackoffSeconds must not exceed maxBackoffSeconds');
  return r;
}
