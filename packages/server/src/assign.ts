/**
 * Assignment (docs/protocol.md section 3.1): for each channel an agent follows, what it should do
 * next. The agent's baseline is the layers it holds that the server's store also holds; it gets
 * the smallest built bundle of the channel's latest release whose baseline it holds, else the job
 * for its own baseline is queued (shared by every agent with the same baseline) and it is told to
 * come back later.
 */
import { FerryError, inventoryDigest, type Assignment, type Digest } from '@ferry/core';
import type { ServerContext } from './context.js';
import { bundleKey, type BundleRow } from './state/bundles.js';
import type { StoredRelease } from './state/releases.js';

/** An assignment with the delay the agent should wait before checking in again. */
interface Assigned {
  assignment: Assignment;
  retryAfter: number;
}

function readyAssignment(release: StoredRelease, b: BundleRow, repository: string): Assignment {
  return {
    channel: release.channel,
    release: release.release,
    ref: release.ref,
    urgent: release.urgent,
    state: 'ready',
    bundle: { id: b.bundleId!, payloadSize: b.payloadSize!, chunkSize: b.chunkSize!, chunks: b.chunks!, baseline: b.baseline.length },
    repository,
  };
}

/** The layers of `held` that the server's store has (a baseline the differ can use). */
async function serverBaseline(ctx: ServerContext, held: Digest[]): Promise<Digest[]> {
  const out: Digest[] = [];
  for (const d of [...new Set(held)].sort()) if (await ctx.store.hasSkeleton(d)) out.push(d);
  return out;
}

async function assignChannel(ctx: ServerContext, channel: string, installed: number | undefined, held: Digest[], repository: string): Promise<Assigned> {
  const { checkinInterval, buildRetryAfter, now } = ctx.options;
  const release = await ctx.state.releases.latest(channel);
  if (!release) return { assignment: { channel, state: 'none', error: { code: 'FERRY_ERR_NOT_FOUND', message: `channel ${channel} has no release` } }, retryAfter: checkinInterval };
  const base = { channel, release: release.release, ref: release.ref, urgent: release.urgent };
  if (installed !== undefined && installed >= release.release) return { assignment: { ...base, state: 'current' }, retryAfter: checkinInterval };
  if (release.expires * 1000 <= now()) return { assignment: { ...base, state: 'none', error: { code: 'FERRY_ERR_BUNDLE_EXPIRED', message: `release ${release.release} of ${channel} has expired` } }, retryAfter: checkinInterval };
  const have = new Set(held);
  const fits = (await ctx.state.bundles.ready(channel, release.release)).filter((b) => b.baseline.every((d) => have.has(d)));
  const smallest = fits.sort((a, b) => a.payloadSize! + a.headerSize! - (b.payloadSize! + b.headerSize!))[0];
  if (smallest) return { assignment: readyAssignment(release, smallest, repository), retryAfter: checkinInterval };
  const baseline = await serverBaseline(ctx, held);
  const digest = inventoryDigest(baseline);
  const existing = await ctx.state.bundles.get(bundleKey(channel, release.release, digest));
  if (!existing && (await ctx.state.bundles.pending()) >= ctx.options.build.maxQueued) {
    // the queue is full: this agent's job is queued on a later check-in
    return { assignment: { ...base, state: 'building' }, retryAfter: buildRetryAfter * 4 };
  }
  const job = existing ?? (await ctx.state.bundles.ensure(channel, release.release, digest, baseline));
  if (job.state === 'failed' && (job.built ?? 0) <= now() - ctx.options.build.retryFailedMs && (await ctx.state.bundles.requeue(job.key))) {
    ctx.builds.notify();
    return { assignment: { ...base, state: 'building' }, retryAfter: buildRetryAfter };
  }
  if (job.state === 'failed') return { assignment: { ...base, state: 'none', error: { code: 'FERRY_ERR_INTERNAL', message: `the bundle could not be built: ${job.error ?? 'unknown'}`.slice(0, 2000) } }, retryAfter: checkinInterval };
  if (job.state === 'ready') return { assignment: readyAssignment(release, job, repository), retryAfter: checkinInterval };
  if (!existing) ctx.builds.notify();
  return { assignment: { ...base, state: 'building' }, retryAfter: buildRetryAfter };
}

/** What an agent should do on each of its channels, and when to check in next. */
export async function assign(ctx: ServerContext, channels: string[], installed: Record<string, { release: number }>, held: Digest[], repository: string): Promise<{ assignments: Assignment[]; retryAfter: number }> {
  if (new Set(channels).size !== channels.length) throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', 'a channel is named twice');
  const results = [];
  for (const c of channels) results.push(await assignChannel(ctx, c, installed[c]?.release, held, repository));
  return { assignments: results.map((r) => r.assignment), retryAfter: Math.min(...results.map((r) => r.retryAfter)) };
}
