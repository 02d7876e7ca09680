/**
 * What gc and fsck make of pending-apply records (docs/format.md section 1): a live record's
 * baseline layers, target layers and progress lists are roots; a dead one (expired, or its channel
 * installed a release at least as high) is garbage, its directory included.
 */
import type { Digest } from '../util/digest.js';
import { deadWorkFiles, listPending, pendingLiveness, readProgress, type PendingEntry } from '../bundle/apply-pending.js';
import type { Store } from './store.js';

/** A pending apply as fsck and gc report it. */
export interface PendingSummary {
  /** The bundle id (or the directory name when its record is unreadable). */
  bundle: string;
  ref?: string | undefined;
  channel?: string | undefined;
  release?: number | undefined;
  /** ISO time. */
  expires?: string | undefined;
  /** Whether gc keeps what it names. */
  live: boolean;
  /** Why it is kept or dropped. */
  reason: string;
  /** Target layers already in the store (rebuilt, or held before). */
  layers?: number | undefined;
  /** Contents that unfinished layers have written (their progress lists). */
  contents?: number | undefined;
  /** Baseline layers it needs. */
  baseline?: number | undefined;
}

/** One pending directory, judged. */
export interface PendingState {
  entry: PendingEntry;
  summary: PendingSummary;
  /** Live records: the layers (present ones) and contents gc must keep. */
  skeletons: Digest[];
  contents: Digest[];
  /** Working files of processes that are gone. */
  deadFiles: string[];
}

/** Judges every pending directory of the store at `now` (unix seconds). */
export async function pendingStates(store: Store, now = Math.floor(Date.now() / 1000)): Promise<PendingState[]> {
  const out: PendingState[] = [];
  for (const entry of await listPending(store)) {
    const rec = entry.record;
    if (!rec || entry.problem) {
      // unreadable: nothing to protect, nothing to judge; fsck reports it, gc leaves it alone
      out.push({ entry, summary: { bundle: entry.name, live: false, reason: entry.problem ?? 'unreadable' }, skeletons: [], contents: [], deadFiles: [] });
      continue;
    }
    const installed = await store.getChannel(rec.channel).catch(() => undefined);
    const { live, reason } = pendingLiveness(rec, installed, now);
    const summary: PendingSummary = { bundle: rec.bundle, ref: rec.ref, channel: rec.channel, release: rec.release, expires: new Date(rec.expires * 1000).toISOString(), live, reason, baseline: rec.baseline.length };
    if (!live) {
      out.push({ entry, summary, skeletons: [], contents: [], deadFiles: [] });
      continue;
    }
    const skeletons: Digest[] = [];
    for (const d of new Set([...rec.baseline, ...rec.layers])) if (await store.hasSkeleton(d)) skeletons.push(d);
    const contents = await readProgress(entry.dir);
    summary.layers = rec.layers.filter((d) => skeletons.includes(d)).length;
    summary.contents = new Set(contents).size;
    out.push({ entry, summary, skeletons, contents, deadFiles: await deadWorkFiles(entry.dir) });
  }
  return out;
}
