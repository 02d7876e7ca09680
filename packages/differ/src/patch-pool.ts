/**
 * A pool of patch workers (patch-worker.ts), one per core by default. Jobs start in the order they
 * are asked for, while a worker is idle and the memory they are estimated to need fits the pool's
 * budget (one job always may run, whatever its estimate), so two large patches never run at once
 * on a small publisher. Results do not depend on scheduling.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { FerryError, PATCH_ONE_SHOT_REFERENCE, compiledSibling } from '@ferry/core';
import type { PatchJob, PatchResult } from './patch-worker.js';

/** A job without the fields the pool fills in. */
export type PoolJob = PatchJob extends infer J ? (J extends PatchJob ? Omit<J, 'id' | 'root' | 'level'> : never) : never;

/**
 * Peak memory of compressing `target` bytes against `reference` bytes at a high level: both
 * buffers, zstd's copy of the reference, its match tables (up to ~80 MB at level 19) and the
 * output. References over PATCH_ONE_SHOT_REFERENCE take the long path, whose dictionary tables and
 * context tables both live during the call: measured 2026-12-02, a 16 MiB window of
 * libicudata.so.72.1 and a 10.6 MB segment at level 19 took 255 MB beside the two buffers. The
 * dictionary is now attached (ZSTD_C_FORCE_ATTACH_DICT), so the context's tables are sized for the
 * target alone, but a target over 8 MB still reaches level 19's largest tables (~190 MB measured
 * for 14.8 MB against 9.1 MB). So a long-path job costs more than the default budget and runs alone.
 */
export function patchMemory(reference: number, target: number): number {
  const tables = reference <= PATCH_ONE_SHOT_REFERENCE ? Math.min(80e6, 12 * (reference + target) + 4e6) : LONG_PATH_TABLES;
  return 2 * reference + 2 * target + tables;
}

/**
 * The running jobs' estimates may add up to this by default. Two of the largest one-shot patches
 * (a reference of PATCH_ONE_SHOT_REFERENCE: up to ~110 MB each) do not fit it, so they run one
 * after the other: side by side they put dep-bump's `ferry bundle` 30-40 MB over its 512 MB
 * target (bench/README.md "Bundle RSS", 2026-12-03), while small jobs still fill the other worker.
 */
export const PATCH_POOL_BUDGET = 128e6;

/**
 * zstd's memory on the long path (see patchMemory): the measured 255 MB, rounded up; over the
 * default budget, so a long-path patch always runs alone in a default pool.
 */
const LONG_PATH_TABLES = 256e6;

/** What a pool has run so far, counted by the pool. */
export interface PatchPoolStats {
  /** Most jobs running at once. */
  peakRunning: number;
  /** Largest sum of the running jobs' estimates. */
  peakInUse: number;
  /** Jobs started. */
  started: number;
}

interface Queued {
  job: PatchJob;
  cost: number;
  resolve: (r: PatchResult) => void;
  reject: (e: unknown) => void;
}

/** Options of a pool. */
export interface PatchPoolOptions {
  /** Worker threads (default: every core). */
  size?: number | undefined;
  /** Bytes the running jobs' estimates may add up to (default PATCH_POOL_BUDGET). */
  memoryBudget?: number | undefined;
  /** Fails every job, running or queued, with FERRY_ERR_ABORTED when it fires. */
  signal?: AbortSignal | undefined;
}

export class PatchPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: Queued[] = [];
  private readonly running = new Map<number, Queued>();
  private readonly budget: number;
  private inUse = 0;
  private readonly counted: PatchPoolStats = { peakRunning: 0, peakInUse: 0, started: 0 };
  private nextId = 0;
  private broken: unknown;

  constructor(
    private readonly root: string,
    private readonly level: number,
    opts: PatchPoolOptions = {},
  ) {
    this.budget = opts.memoryBudget ?? PATCH_POOL_BUDGET;
    const signal = opts.signal;
    signal?.addEventListener('abort', () => this.fail(new FerryError('FERRY_ERR_ABORTED', 'aborted', { cause: signal.reason })), { once: true });
    for (let i = 0; i < Math.max(1, opts.size ?? availableParallelism()); i++) {
      const w = new Worker(compiledSibling(import.meta.url, 'patch-worker'));
      w.on('message', (r: PatchResult) => this.done(w, r));
      w.on('error', (err) => this.fail(err));
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  /** A worker died: every job, running or queued, fails, and so does every later one. */
  private fail(err: unknown): void {
    this.broken ??= err instanceof FerryError ? err : new FerryError('FERRY_ERR_INTERNAL', `a patch worker failed: ${(err as Error).message ?? String(err)}`, { cause: err });
    for (const p of [...this.running.values(), ...this.queue]) p.reject(this.broken);
    this.running.clear();
    this.queue.length = 0;
  }

  private done(w: Worker, r: PatchResult): void {
    const p = this.running.get(r.id);
    this.running.delete(r.id);
    if (p) this.inUse -= p.cost;
    if (r.error) p?.reject(new FerryError('FERRY_ERR_INTERNAL', `patch worker failed: ${r.error}`));
    else p?.resolve(r);
    this.idle.push(w);
    this.pump();
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const next = this.queue[0]!;
      if (this.running.size > 0 && this.inUse + next.cost > this.budget) return;
      this.queue.shift();
      this.inUse += next.cost;
      this.running.set(next.job.id, next);
      this.count();
      if (process.env.FERRY_DEBUG_POOL) process.stderr.write(`${Date.now()} start ${next.job.kind} ${next.job.id} cost ${(next.cost / 1e6).toFixed(0)} inUse ${(this.inUse / 1e6).toFixed(0)} rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} heap ${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} ab ${(process.memoryUsage().arrayBuffers / 1e6).toFixed(0)}\n`);
      this.idle.pop()!.postMessage(next.job);
    }
  }

  private count(): void {
    const c = this.counted;
    c.started++;
    c.peakRunning = Math.max(c.peakRunning, this.running.size);
    c.peakInUse = Math.max(c.peakInUse, this.inUse);
  }

  /** What the pool has run so far. */
  stats(): PatchPoolStats {
    return { ...this.counted };
  }

  /** Runs a job whose peak memory is estimated at `cost` bytes. */
  run(job: PoolJob, cost: number): Promise<PatchResult> {
    return new Promise((resolve, reject) => {
      if (this.broken) return reject(this.broken);
      this.queue.push({ job: { ...job, id: this.nextId++, root: this.root, level: this.level } as PatchJob, cost, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
