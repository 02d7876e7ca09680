/**
 * The applier (DESIGN.md section 6) in three steps an agent drives as chunks arrive:
 *
 *   planApply      every check "before any chunk"; touches nothing        (apply-plan.ts)
 *   rebuildLayer   one layer from its chunks, verified, lock released      (apply-layer.ts)
 *                  while a chunk is awaited; gc keeps its progress
 *   commitApply    config, manifest, ref and channel state; ends the pending record
 *
 * abandonApply drops an uncommitted apply's record; applyBundle composes the steps for
 * `ferry apply`. A rerun after a crash skips the layers already rebuilt.
 */
import { FerryError, isFerryError } from '../errors.js';
import type { Digest } from '../util/digest.js';
import type { Progress } from '../store/import.js';
import type { Store } from '../store/store.js';
import type { BundleSource } from './container.js';
import { checkExpiry, verifyHeader } from './header.js';
import type { TrustPolicy } from './keys.js';
import { removePending } from './apply-pending.js';
import { checkRollback, planApply, type ApplyPlan } from './apply-plan.js';
import { openBaselineTable, rebuildLayer, type RebuildResult } from './apply-layer.js';
import type { LockTiming } from './apply-session.js';

/** Options for applyBundle. */
export interface ApplyOptions extends LockTiming {
  trust: TrustPolicy;
  /** Refuse headers for other channels. */
  channel?: string | undefined;
  /** Install under this ref instead of the one the release statement names. */
  ref?: string | undefined;
  /** Unix seconds (tests inject it). */
  now?: number;
  /** Largest delta reference held in memory (default and most PATCH_REFERENCE_MAX). */
  maxPatchReference?: number;
  /** Each layer's writer on a thread of its own (RebuildOptions.writerThread; default false). */
  writerThread?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

/** What an apply did. */
export interface ApplyResult {
  ref: string;
  channel: string;
  release: number;
  manifestDigest: Digest;
  configDigest: Digest;
  layers: { diffId: Digest; mode: 'reuse' | 'rebuild'; alreadyPresent: boolean; files?: number }[];
  /** Payload bytes read by the rebuilds of this run. */
  payloadBytes: number;
}

/** Options of commitApply. */
export interface CommitOptions {
  signal?: AbortSignal | undefined;
  /** Unix seconds (tests inject it): an expired header is refused, as gc drops its progress. */
  now?: number | undefined;
}

/**
 * Installs a planned image whose layers are all in the store: writes config and manifest, moves
 * the ref, records the channel's release (rollback re-checked under the lock), then removes the
 * pending-apply record. A layer still missing is FERRY_ERR_OBJECT_MISSING.
 */
export async function commitApply(store: Store, plan: ApplyPlan, opts: CommitOptions = {}): Promise<ApplyResult> {
  opts.signal?.throwIfAborted();
  checkExpiry(plan.header, opts.now);
  return store.withLock(async () => {
    await checkRollback(store, plan.header);
    const missing: Digest[] = [];
    for (const l of plan.layers) if (!(await store.hasSkeleton(l.diffId))) missing.push(l.diffId);
    if (missing.length > 0) throw new FerryError('FERRY_ERR_OBJECT_MISSING', `cannot commit: ${missing.length} layer(s) of the image are not in the store yet: ${missing.join(', ')}`, { details: { missing } });
    opts.signal?.throwIfAborted();
    const h = plan.header;
    const configDigest = await store.putBlob(h.config);
    const manifestDigest = await store.putBlob(h.manifest);
    // the ref before the channel state: a recorded release always names an installed image
    await store.setRef(plan.ref, manifestDigest);
    await store.setChannel(plan.channel, { release: plan.release, ref: plan.ref, manifest: manifestDigest, installed: new Date().toISOString() });
    await removePending(store, plan.bundleId);
    return {
      ref: plan.ref,
      channel: plan.channel,
      release: plan.release,
      manifestDigest,
      configDigest,
      layers: plan.layers.map((l) => ({ diffId: l.diffId, mode: l.mode, alreadyPresent: l.present })),
      payloadBytes: 0,
    };
  });
}

/**
 * Drops an uncommitted apply's pending record: the layers it rebuilt and the contents it wrote
 * become ordinary garbage for gc. Returns whether there was a record.
 */
export async function abandonApply(store: Store, bundleId: Digest): Promise<boolean> {
  return store.withLock(() => removePending(store, bundleId));
}

/**
 * Applies a whole bundle (`ferry apply`): verify, plan, rebuild each missing layer, commit. A
 * failure that retrying cannot cure (a malformed payload, a digest mismatch) abandons the apply;
 * a retryable one (a missing chunk, a full disk, an abort) keeps its progress for a rerun.
 */
export async function applyBundle(store: Store, source: BundleSource, opts: ApplyOptions): Promise<ApplyResult> {
  const header = verifyHeader(source.headerBytes, { trust: opts.trust, now: opts.now, channel: opts.channel });
  const plan = await planApply(store, header, { ref: opts.ref, channel: opts.channel, now: opts.now, signal: opts.signal });
  const rebuilt = new Map<Digest, RebuildResult>();
  if (plan.rebuild.length > 0) {
    const chunks = source.chunks(header);
    const table = await openBaselineTable(store, plan, { signal: opts.signal });
    try {
      for (const l of plan.rebuild) {
        rebuilt.set(l.diffId, await rebuildLayer(store, plan, l, chunks, { ...opts, baseline: table }));
      }
    } catch (err) {
      if (isFerryError(err) && !err.retryable) await abandonApply(store, plan.bundleId).catch(() => {});
      throw err;
    } finally {
      await table.close();
    }
  }
  opts.onProgress?.({ phase: 'commit', done: plan.payloadBytes, total: plan.payloadBytes });
  const result = await commitApply(store, plan, { signal: opts.signal, now: opts.now });
  for (const l of result.layers) {
    const r = rebuilt.get(l.diffId);
    if (r) Object.assign(l, { alreadyPresent: r.alreadyPresent, files: r.files });
  }
  const payloadBytes = plan.rebuild.filter((l) => !rebuilt.get(l.diffId)?.alreadyPresent).reduce((a, l) => a + (l.end - l.start), 0);
  return { ...result, payloadBytes };
}
