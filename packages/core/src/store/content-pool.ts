/**
 * A small shared pool of content-writer workers (content-worker.ts). Workers keep the process
 * alive only while jobs are pending. A worker that dies (an uncaught error, `terminate()`, the
 * thread running out of memory) fails the jobs it held with FERRY_ERR_INTERNAL and is replaced, so
 * later writes go to a live worker instead of waiting forever for an answer.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { FerryError, toFerryError } from '../errors.js';
import { compiledSibling } from '../util/module.js';
import type { ContentJob, ContentJobResult, ReadItem } from './content-worker.js';

type Pending = { resolve: (r: ContentJobResult) => void; reject: (e: unknown) => void };

/** One worker thread and the jobs it has been sent. */
interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

/**
 * A worker's young generation, in MB. A worker's JavaScript allocates little (the bodies it takes
 * and returns are transferred buffers, outside the V8 heap), but by default its young generation
 * grows to V8's 16 MiB semi-spaces like a busy main thread's. Capped, `ferry import` of the store
 * bench's 512 MiB image peaked about 10 MiB lower with two workers (202,276 KiB -> 190,788-192,880
 * KiB), at the same speed; the bench's import rows went from 207.6-208.5 MB to 197.0-198.9 MB.
 */
const WORKER_YOUNG_MB = 2;

/** Deaths after which the pool stops replacing workers (one that cannot even start would loop). */
const MAX_DEATHS = 16;

class ContentPool {
  private readonly slots: Slot[] = [];
  private next = 0;
  private deaths = 0;
  /** Set once workers died too often: every job then fails at once with this. */
  private broken: FerryError | undefined;

  constructor(size: number) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  /** The live worker threads (for diagnostics and fault tests). */
  get threads(): readonly Worker[] {
    return this.slots.map((s) => s.worker);
  }

  private spawn(): Slot {
    const slot: Slot = { worker: new Worker(fileURLToPath(compiledSibling(import.meta.url, 'content-worker')), { resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_MB } }), pending: new Map() };
    slot.worker.on('message', (r: ContentJobResult) => this.settle(slot, r));
    slot.worker.on('error', (err) => this.died(slot, err));
    slot.worker.on('exit', (code) => this.died(slot, new Error(`it exited with code ${code}`)));
    slot.worker.unref();
    return slot;
  }

  /** A worker is gone: its jobs fail, and a fresh worker takes its place for later jobs. */
  private died(slot: Slot, cause: unknown): void {
    const i = this.slots.indexOf(slot);
    if (i === -1) return; // 'error' and 'exit' both report one death
    const err = new FerryError('FERRY_ERR_INTERNAL', `a content writer thread died: ${(cause as Error).message ?? String(cause)}`, { cause });
    if (++this.deaths > MAX_DEATHS) this.broken ??= err;
    this.slots[i] = this.broken ? { worker: slot.worker, pending: new Map() } : this.spawn();
    for (const p of slot.pending.values()) p.reject(err);
    slot.pending.clear();
    this.refWhileBusy();
  }

  private settle(slot: Slot, r: ContentJobResult): void {
    const p = slot.pending.get(r.id);
    slot.pending.delete(r.id);
    this.refWhileBusy();
    if (!p) return;
    // a failed read is mapped by its caller, which knows the content it was reading
    if (r.error && !r.failed) p.reject(toFerryError(Object.assign(new Error(r.error.message), r.error), 'writing contents'));
    else p.resolve(r);
  }

  /** Workers hold the process open exactly while some job waits for an answer. */
  private refWhileBusy(): void {
    const busy = this.slots.some((s) => s.pending.size > 0);
    for (const s of this.slots) {
      if (busy) s.worker.ref();
      else s.worker.unref();
    }
  }

  private send(job: ContentJob, worker: number, transfer: ArrayBuffer[] = []): Promise<ContentJobResult> {
    const slot = this.slots[worker % this.slots.length]!;
    return new Promise((resolve, reject) => {
      if (this.broken) return reject(this.broken);
      slot.pending.set(job.id, { resolve, reject });
      this.refWhileBusy();
      slot.worker.postMessage(job, transfer);
    });
  }

  /** Compresses `data` into a temp file beside `path` (not yet durable); no temp if `path` exists. */
  write(path: string, data: Uint8Array): Promise<ContentJobResult> {
    const id = this.next++;
    const copy = new Uint8Array(data); // a standalone buffer to transfer
    return this.send({ id, op: 'write', path, data: copy }, id, [copy.buffer as ArrayBuffer]);
  }

  /**
   * Reads and decodes contents in a worker: resolves with their bodies in one buffer and each
   * one's length, or with `failed` and `error` saying which item failed and how.
   */
  read(items: ReadItem[], verify: boolean): Promise<ContentJobResult> {
    const id = this.next++;
    return this.send({ id, op: 'read', items, verify }, id);
  }

  /** fsyncs the temp files and renames them into place, the list shared among the workers. */
  async commit(files: { tmp: string; path: string }[]): Promise<void> {
    const n = this.slots.length;
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
