/**
 * Summaries the operator's views need, composed from the state API: each channel with its latest
 * release, how many agents follow it and how many run that release.
 */
import type { State } from './state.js';
import type { StoredRelease } from './releases.js';

/** A channel as a dashboard shows it. */
export interface ChannelSummary {
  name: string;
  release: StoredRelease | undefined;
  /** Agents whose last check-in named the channel. */
  agents: number;
  /** Of those, how many reported the latest release installed. */
  current: number;
}

/** Every channel with its agents (agents that name a channel without a release are counted too). */
export async function channelSummaries(state: State): Promise<ChannelSummary[]> {
  const [channels, agents] = await Promise.all([state.releases.channels(), state.agents.list()]);
  const names = new Set([...channels.map((c) => c.name), ...agents.flatMap((a) => a.channels)]);
  const byName = new Map(channels.map((c) => [c.name, c.release]));
  return [...names].sort().map((name) => {
    const release = byName.get(name);
    const on = agents.filter((a) => a.channels.includes(name));
    const current = release ? on.filter((a) => (a.installed[name]?.release ?? -1) >= release.release).length : 0;
    return { name, release, agents: on.length, current };
  });
}
