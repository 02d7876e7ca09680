/** A pool of patch workers, one per core by default; results do not depend on scheduling. */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { FerryError, compiledSibling, type Digest } from '@ferry/core';
import type { PatchJob, PatchResult } from './patch-worker.js';

export class PatchPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: { job: PatchJob; resolve: (r: PatchResult) => void; reject: (e: unknown) => void }[] = [];
  private readonly pending = new Map<number, { resolve: (r: PatchResult) => void; reject: (e: unknown) => void }>();
  private nextId = 0;

  /** `signal` fails every job, sent or queued, with FERRY_ERR_ABORTED when it fires. */
  constructor(
    private readonly root: string,
    private readonly level: number,
    size = availableParallelism(),
    signal?: AbortSignal,
  ) {
    signal?.addEventListener('abort', () => this.fail(new FerryError('FERRY_ERR_ABORTED', 'aborted', { cause: signal.reason })), { once: true });
    for (let i = 0; i < Math.max(1, size); i++) {
      const w = new Worker(compiledSibling(import.meta.url, 'patch-worker'));
      w.on('message', (r: PatchResult) => this.done(w, r));
      w.on('error', (err) => this.fail(err));
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  private broken: unknown;

  /** A worker died: every job, sent or queued, fails, and so does every later one. */
  private fail(err: unknown): void {
    this.broken ??= err instanceof FerryError ? err : new FerryError('FERRY_ERR_INTERNAL', `a patch worker failed: ${(err as Error).message ?? String(err)}`, { cause: err });
    for (const p of this.pending.values()) p.reject(this.broken);
    for (const q of this.queue) q.reject(this.broken);
    this.pending.clear();
    this.queue.length = 0;
  }

  private done(w: Worker, r: PatchResult): void {
    const p = this.pending.get(r.id);
    this.pending.delete(r.id);
    if (r.error) p?.reject(new FerryError('FERRY_ERR_INTERNAL', `patch worker failed: ${r.error}`));
    else p?.resolve(r);
    this.idle.push(w);
    this.pump();
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const { job, resolve, reject } = this.queue.shift()!;
      this.pending.set(job.id, { resolve, reject });
      w.postMessage(job);
    }
  }

  /** The cheapest encoding of `target` against `ref`: patch-from, bsdiff, or the literal. */
  patch(ref: Digest, target: Digest): Promise<PatchResult> {
    return new Promise((resolve, reject) => {
      if (this.broken) return reject(this.broken);
      this.queue.push({ job: { id: this.nextId++, root: this.root, ref, target, level: this.level }, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
