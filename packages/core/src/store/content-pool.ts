/**
 * A small shared pool of content-writer workers (content-worker.ts). Workers keep the process
 * alive only while jobs are pending.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { toFerryError } from '../errors.js';
import { compiledSibling } from '../util/module.js';
import type { ContentJob, ContentJobResult } from './content-worker.js';

type Pending = { resolve: (r: ContentJobResult) => void; reject: (e: unknown) => void };

class ContentPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private next = 0;

  constructor(size: number) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(fileURLToPath(compiledSibling(import.meta.url, 'content-worker')));
      w.on('message', (r: ContentJobResult) => this.settle(r));
      w.on('error', (err) => {
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      });
      w.unref();
      this.workers.push(w);
    }
  }

  private settle(r: ContentJobResult): void {
    const p = this.pending.get(r.id);
    this.pending.delete(r.id);
    if (this.pending.size === 0) for (const w of this.workers) w.unref();
    if (!p) return;
    if (r.error) p.reject(toFerryError(Object.assign(new Error(r.error.message), r.error), 'writing contents'));
    else p.resolve(r);
  }

  private send(job: ContentJob, worker: number, transfer: ArrayBuffer[] = []): Promise<ContentJobResult> {
    if (this.pending.size === 0) for (const w of this.workers) w.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(job.id, { resolve, reject });
      this.workers[worker % this.workers.length]!.postMessage(job, transfer);
    });
  }

  /** Compresses `data` into a temp file beside `path` (not yet durable); no temp if `path` exists. */
  write(path: string, data: Uint8Array): Promise<ContentJobResult> {
    const id = this.next++;
    const copy = new Uint8Array(data); // a standalone buffer to transfer
    return this.send({ id, op: 'write', path, data: copy }, id, [copy.buffer as ArrayBuffer]);
  }

  /** fsyncs the temp files and renames them into place, the list shared among the workers. */
  async commit(files: { tmp: string; path: string }[]): Promise<void> {
    const n = this.workers.length;
    const shares = Array.from({ length: n }, (_, w) => files.filter((_, i) => i % n === w)).filter((s) => s.length > 0);
    await Promise.all(shares.map((share, w) => this.send({ id: this.next++, op: 'commit', files: share }, w)));
  }
}

let shared: ContentPool | undefined;

/** The process-wide pool: one worker per core (the main thread mostly waits on I/O and hashing). */
export function contentPool(): ContentPool {
  shared ??= new ContentPool(Math.max(1, Math.min(4, availableParallelism())));
  return shared;
}
