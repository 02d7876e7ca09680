/**
 * Read-ahead for reassembly: while one entry's body is being written out, the bodies of the next
 * entries are already being read (their file reads run on the thread pool). Small bodies only, and
 * a byte cap, so memory stays bounded.
 */
import type { Digest } from '../util/digest.js';
import type { SkeletonEntry } from './skeleton.js';

/** An entry whose body may already be on its way. */
export type PrefetchedEntry = SkeletonEntry & { preloaded?: Promise<Uint8Array> | undefined };

/** Read-ahead settings. */
export interface PrefetchOptions {
  /** Loads a whole body. */
  load(digest: Digest, size: number): Promise<Uint8Array>;
  /** Bodies above this size are not preloaded (they stream). Default 4 MiB. */
  maxBodySize?: number;
  /** Entries looked ahead. Default 64. */
  depth?: number;
  /** Preloaded bytes held at most. Default 32 MiB. */
  maxBytes?: number;
}

/**
 * Yields `entries` in order, with bodies of upcoming small entries loading in the background. The
 * window is refilled when half of it has been consumed, all the refill's loads at once.
 * However it ends (done, a consumer that stops early, a failed body), the upstream iterator is
 * closed, so a skeleton file read ahead does not stay open.
 */
export async function* prefetchBodies(entries: AsyncIterable<SkeletonEntry>, o: PrefetchOptions): AsyncGenerator<PrefetchedEntry> {
  const maxBody = o.maxBodySize ?? 4 * 1024 * 1024;
  const depth = o.depth ?? 64;
  const maxBytes = o.maxBytes ?? 32 * 1024 * 1024;
  const it = entries[Symbol.asyncIterator]();
  const window: PrefetchedEntry[] = [];
  let bytes = 0;
  let ended = false;
  try {
    for (;;) {
      // refill in strides (once half the window is used), so the loads of one refill go out
      // together and a batching loader can serve them in one job
      const low = window.length <= depth / 2 && bytes <= maxBytes / 2;
      while (low && !ended && window.length < depth && bytes < maxBytes) {
        const next = await it.next();
        if (next.done) {
          ended = true;
          break;
        }
        const e: PrefetchedEntry = next.value;
        if (e.digest && e.size <= maxBody) {
          e.preloaded = o.load(e.digest, e.size);
          e.preloaded.catch(() => {}); // surfaces when the entry is written
          bytes += e.size;
        }
        window.push(e);
      }
      const e = window.shift();
      if (!e) return;
      if (e.preloaded) bytes -= e.size;
      yield e;
    }
  } finally {
    if (!ended) await it.return?.();
  }
}
