/**
 * One transfer (DESIGN.md section 6): a verified header's plan, its chunks fetched by the
 * ChunkFetcher while each layer is rebuilt as soon as its chunks are verified (rebuildLayer reads
 * them through the fetcher's chunk source), then the commit. An abort (shutdown, preemption)
 * keeps every verified chunk in the cache and every rebuilt layer in the store (the pending-apply
 * record protects them from gc), so the next attempt redoes at most the unfinished layer.
 */
import { abandonApply, chunkLength, commitApply, isFerryError, openBaselineTable, planApply, rebuildLayer, type ApplyPlan, type ApplyResult, type Store, type VerifiedHeader } from '@ferry/core';
import { ChunkFetcher } from './fetcher.js';
import type { FetcherOptions } from './options.js';
import type { FetchProgress } from './progress.js';

/** What a transfer needs. */
export interface TransferOptions {
  store: Store;
  header: VerifiedHeader;
  channel: string;
  /** Fetcher options (cache, sources in order, cap, concurrency, ...). */
  fetcher: FetcherOptions;
  /** Progress as the transfer moves: its phase and the fetcher's figures. */
  onProgress: (phase: 'fetching' | 'applying', p: FetchProgress) => void;
  signal?: AbortSignal | undefined;
}

/** Runs the transfer to its commit. A non-retryable rebuild failure abandons the apply. */
export async function runTransfer(o: TransferOptions): Promise<ApplyResult> {
  const plan = await planApply(o.store, o.header, { channel: o.channel, signal: o.signal });
  let phase: 'fetching' | 'applying' = 'fetching';
  const fetcher = await ChunkFetcher.open({ ...o.fetcher, onProgress: (p) => o.onProgress(phase, p) });
  const ac = new AbortController();
  const stop = (): void => ac.abort(o.signal!.reason);
  o.signal?.addEventListener('abort', stop, { once: true });
  try {
    o.signal?.throwIfAborted();
    const refs = plan.chunks.map((i) => ({ digest: o.header.chunks[i]!, size: chunkLength(o.header, i) }));
    const fetching = fetcher.fetch(refs, { signal: ac.signal }).then(() => {
      phase = 'applying';
      o.onProgress(phase, fetcher.progress());
    });
    await Promise.all([fetching, rebuildAll(o.store, plan, fetcher, ac.signal)].map((p) => p.catch((err: unknown) => {
      ac.abort(err);
      throw err;
    })));
    o.onProgress('applying', fetcher.progress());
    return await commitApply(o.store, plan, { signal: o.signal });
  } catch (err) {
    if (isFerryError(err) && !err.retryable && err.code !== 'FERRY_ERR_ABORTED') await abandonApply(o.store, plan.bundleId).catch(() => {});
    throw o.signal?.aborted ? o.signal.reason : err;
  } finally {
    o.signal?.removeEventListener('abort', stop);
    fetcher.close();
  }
}

/** Rebuilds every layer still missing, in image order, as their chunks arrive. */
async function rebuildAll(store: Store, plan: ApplyPlan, fetcher: ChunkFetcher, signal: AbortSignal): Promise<void> {
  if (plan.rebuild.length === 0) return;
  // the table's indexing is CPU on this event loop: the link's first requests go out before it
  await fetcher.requestsSent();
  const table = await openBaselineTable(store, plan, { signal });
  try {
    const source = fetcher.chunkSource();
    for (const layer of plan.rebuild) await rebuildLayer(store, plan, layer, source, { baseline: table, signal });
  } finally {
    await table.close();
  }
}
