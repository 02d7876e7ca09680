/**
 * The operator's views (docs/protocol.md section 5), composed from the state API: each agent with
 * its last report and whether it is stale, each channel's target and how many agents run it, and
 * each bundle against docker pull. The REST routes and the live events send exactly these.
 */
import type { AgentSummary, BundleSummary, BundlesAnswer, ChannelSummary, Digest, TransferFigures } from '@ferry/core';
import type { AgentView } from './agents.js';
import type { BundleRow } from './bundles.js';
import { releaseInfo } from './releases.js';
import type { State } from './state.js';

/** An agent counts as stale when not seen for this many of its check-in intervals. */
export const STALE_INTERVALS = 3;

const seconds = (ms: number): number => Math.floor(ms / 1000);

/** One agent as the operator sees it at `nowMs`. */
export function agentSummary(a: AgentView, nowMs: number, defaultInterval: number): AgentSummary {
  const r = a.report;
  const interval = a.interval ?? defaultInterval;
  const lastSeen = a.lastSeen === undefined ? null : seconds(a.lastSeen);
  const staleAt = lastSeen === null ? null : lastSeen + STALE_INTERVALS * interval;
  return {
    id: a.id,
    state: r?.state ?? (lastSeen === null ? 'new' : 'unknown'),
    channel: r?.channel ?? null,
    release: r?.release ?? null,
    bundle: r?.bundle ?? null,
    bytesDone: r?.bytesDone ?? 0,
    bytesTotal: r?.bytesTotal ?? 0,
    chunksDone: r?.chunksDone ?? 0,
    chunksTotal: r?.chunksTotal ?? 0,
    rate: r?.rate ?? 0,
    eta: r?.eta ?? null,
    error: r?.error ?? null,
    link: r?.link ?? null,
    lastSeen,
    reportedAt: r?.at ?? null,
    interval,
    staleAt,
    stale: staleAt !== null && seconds(nowMs) >= staleAt,
    channels: a.channels,
    installed: a.installed,
    version: a.version ?? null,
  };
}

/** Every channel (named by a release or by an agent's check-in) with its target and its agents. */
export async function channelSummaries(state: State, agents?: AgentView[]): Promise<ChannelSummary[]> {
  const [channels, all] = await Promise.all([state.releases.channels(), agents ?? state.agents.list()]);
  const names = new Set([...channels.map((c) => c.name), ...all.flatMap((a) => a.channels)]);
  const byName = new Map(channels.map((c) => [c.name, c.release]));
  return [...names].sort().map((name) => {
    const release = byName.get(name);
    const on = all.filter((a) => a.channels.includes(name));
    const current = release ? on.filter((a) => (a.installed[name]?.release ?? -1) >= release.release).length : 0;
    return { name, release: release ? releaseInfo(release) : null, agents: on.length, current };
  });
}

function vsPull(b: BundleRow): TransferFigures | null {
  if (b.state !== 'ready' || b.pullBytes === undefined || b.payloadSize === undefined) return null;
  const transfer = b.payloadSize + (b.headerSize ?? 0);
  return { transfer, pull: b.pullBytes, saved: b.pullBytes - transfer };
}

function bundleSummary(b: BundleRow, refs: Map<string, string>, users: Map<Digest, number>): BundleSummary {
  return {
    key: b.key,
    id: b.bundleId ?? null,
    channel: b.channel,
    release: b.release,
    ref: refs.get(`${b.channel}\n${b.release}`) ?? null,
    state: b.state,
    baseline: b.baseline.length,
    payloadSize: b.payloadSize ?? null,
    headerSize: b.headerSize ?? null,
    chunks: b.chunks ?? null,
    chunkSize: b.chunkSize ?? null,
    created: seconds(b.created),
    built: b.built === undefined ? null : seconds(b.built),
    builds: b.builds,
    error: b.error ?? null,
    agents: b.bundleId ? (users.get(b.bundleId) ?? 0) : 0,
    vsPull: vsPull(b),
  };
}

/** Adds `times` copies of `f` to `t`. */
const add = (t: TransferFigures, f: TransferFigures, times = 1): void => {
  t.transfer += f.transfer * times;
  t.pull += f.pull * times;
  t.saved += f.saved * times;
};

/**
 * Every bundle (newest first) with the agents using it and its cost against docker pull, and the
 * totals: each built bundle once, and each agent's current bundle (what the fleet's transfers save).
 */
export async function bundleSummaries(state: State, agents?: AgentView[]): Promise<BundlesAnswer> {
  const [rows, releases, all] = await Promise.all([state.bundles.list(), state.releases.list(), agents ?? state.agents.list()]);
  const refs = new Map(releases.map((r) => [`${r.channel}\n${r.release}`, r.ref]));
  const users = new Map<Digest, number>();
  for (const a of all) if (a.report?.bundle) users.set(a.report.bundle, (users.get(a.report.bundle) ?? 0) + 1);
  const bundles = rows.map((b) => bundleSummary(b, refs, users));
  const totals = { bundles: { transfer: 0, pull: 0, saved: 0, count: 0 }, fleet: { transfer: 0, pull: 0, saved: 0, agents: 0 } };
  for (const b of bundles) {
    if (!b.vsPull) continue;
    add(totals.bundles, b.vsPull);
    totals.bundles.count++;
    add(totals.fleet, b.vsPull, b.agents);
    totals.fleet.agents += b.agents;
  }
  return { bundles, totals };
}
