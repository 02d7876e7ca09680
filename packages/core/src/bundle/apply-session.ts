/**
 * The store lock of one layer rebuild (DESIGN.md section 6: "the store lock is held while
 * writing, never across a network wait"). The rebuild holds the lock while it writes; when the
 * chunk source does not answer within `idleMs`, the session
 *
 *   1. flushes the layer's writes (every content written so far is durable under its name),
 *   2. appends the digests of every content the layer has named so far to its progress list in
 *      the pending-apply directory and syncs it (gc keeps them: resume progress),
 *   3. releases the lock, and waits for the chunk;
 *
 * then takes the lock again (waiting while another process, gc say, holds it), checks that the
 * apply is still pending (an abandonApply or a commit by another process meanwhile ends this
 * rebuild with FERRY_ERR_ABORTED: its progress may be gone) and goes on. The staged skeleton and a
 * large body being streamed are working files in the pending directory that gc leaves alone while
 * this process lives. Baseline layers and earlier rebuilt layers are roots of the pending record.
 */
import { rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError, isFerryError, toFerryError } from '../errors.js';
import { fsyncDir } from '../util/fs.js';
import { acquireLock } from '../store/lock.js';
import type { Digest } from '../util/digest.js';
import type { Store } from '../store/store.js';
import type { ChunkSource } from './container.js';
import { checkExpiry } from './header.js';
import type { ApplyPlan, PlannedLayer } from './apply-plan.js';
import { appendProgress, deadWorkFiles, pendingDir, progressFile, readPending, removeProgress, writePending } from './apply-pending.js';

/** When a rebuild lets go of the store lock. */
export interface LockTiming {
  /** A chunk that takes longer than this releases the lock for the wait (default 200 ms). */
  idleMs?: number | undefined;
  /** How long to wait to take the lock back after a wait before failing with FERRY_ERR_STORE_LOCKED (default 10 min). */
  lockWaitMs?: number | undefined;
}

/** Content writes a pause makes durable, and the digests they named since the last pause. */
export interface DurableWrites {
  flush(): Promise<void>;
  takeWritten(): Digest[];
}

/** Resolves with the value if `p` settles within `ms`, with undefined after that. */
function within<T>(p: Promise<T>, ms: number): Promise<{ value: T } | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    p.then(
      (value) => {
        clearTimeout(timer);
        resolve({ value });
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** The lock and pending-record side of one layer rebuild. */
export class RebuildSession {
  /** The bundle's pending-apply directory (working files go here). */
  readonly dir: string;
  /** Times the lock was released for a wait. */
  waits = 0;
  private batch: DurableWrites | undefined;
  private readonly progress: string;

  private constructor(
    private readonly store: Store,
    private readonly plan: ApplyPlan,
    private readonly layer: PlannedLayer,
    private release: (() => Promise<void>) | undefined,
    private readonly timing: Required<LockTiming>,
    private readonly now: number | undefined,
  ) {
    this.dir = pendingDir(store, plan.bundleId);
    this.progress = progressFile(this.dir, layer.diffId);
  }

  /**
   * Takes the store lock (a held lock is FERRY_ERR_STORE_LOCKED at once), then writes the
   * pending-apply record if there is none and removes working files that dead processes left.
   */
  static async open(store: Store, plan: ApplyPlan, layer: PlannedLayer, timing: LockTiming, now?: number): Promise<RebuildSession> {
    const release = await acquireLock(store.root);
    const s = new RebuildSession(store, plan, layer, release, { idleMs: timing.idleMs ?? 200, lockWaitMs: timing.lockWaitMs ?? 600_000 }, now);
    try {
      await s.ensureRecord();
      for (const f of await deadWorkFiles(s.dir)) await rm(f, { force: true });
    } catch (err) {
      await s.end();
      throw err;
    }
    return s;
  }

  private async ensureRecord(): Promise<void> {
    if (await readPending(this.store, this.plan.bundleId)) return;
    const h = this.plan.header;
    await writePending(this.store, {
      bundle: this.plan.bundleId,
      ref: this.plan.ref,
      channel: this.plan.channel,
      release: this.plan.release,
      expires: h.release.expires,
      started: new Date().toISOString(),
      baseline: h.baseline,
      layers: h.layers.map((l) => l.diffId),
    });
  }

  /** The writes a wait makes durable and records. */
  attach(batch: DurableWrites): void {
    this.batch = batch;
  }

  /** Wraps a chunk source so that a slow chunk is waited for without the lock. */
  guard(source: ChunkSource): ChunkSource {
    return {
      readChunk: async (index, digest, size, signal) => {
        const pending = source.readChunk(index, digest, size, signal);
        const quick = await within(pending, this.timing.idleMs);
        if (quick) return quick.value;
        await this.pause();
        const bytes = await pending; // on failure the rebuild ends without the lock
        await this.resume(signal);
        return bytes;
      },
    };
  }

  private async pause(): Promise<void> {
    if (this.batch) {
      await this.batch.flush();
      await appendProgress(this.progress, this.batch.takeWritten());
    }
    const release = this.release;
    this.release = undefined;
    this.waits++;
    await release?.();
  }

  private async resume(signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.timing.lockWaitMs;
    for (let delay = 20; ; delay = Math.min(delay * 2, 1000)) {
      signal?.throwIfAborted();
      try {
        this.release = await acquireLock(this.store.root);
        break;
      } catch (err) {
        if (!isFerryError(err, 'FERRY_ERR_STORE_LOCKED') || Date.now() + delay > deadline) throw err;
      }
      await sleep(delay, undefined, { signal }).catch((err: unknown) => {
        throw toFerryError(err, 'waiting for the store lock');
      });
    }
    if (!(await readPending(this.store, this.plan.bundleId))) {
      throw new FerryError('FERRY_ERR_ABORTED', `the apply of bundle ${this.plan.bundleId} was abandoned or committed while this rebuild waited for a chunk`);
    }
    checkExpiry(this.plan.header, this.now);
  }

  /**
   * Moves the verified staged skeleton to its name (contents are durable before: the caller
   * flushed them) and drops the layer's progress lists: the skeleton now names those contents.
   */
  async commit(staged: string, final: string): Promise<void> {
    if (!this.release) throw new FerryError('FERRY_ERR_INTERNAL', 'committing a layer without the store lock');
    await rename(staged, final);
    await fsyncDir(dirname(final));
    await removeProgress(this.dir, this.layer.diffId);
  }

  /** True while this rebuild holds the store lock (not during a wait). */
  get holdsLock(): boolean {
    return this.release !== undefined;
  }

  /** Releases the lock if held. */
  async end(): Promise<void> {
    const release = this.release;
    this.release = undefined;
    await release?.();
  }
}
