/**
 * The main-thread end of a layer rebuild's writer thread (apply-worker.ts): the rebuild pushes the
 * layer's bytes in tar order (header groups, references to stored contents, new bodies) into a
 * shared ring, and the writer hashes, reads and writes on the second core. Memory: the ring
 * (1 MiB: four of the largest records, enough to keep the writer busy) and the writer's buffers, whatever the layer holds.
 */
import { randomBytes, createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { FerryError, toFerryError, type ErrorCode } from '../errors.js';
import { digestToBytes, isDigest, type Digest } from '../util/digest.js';
import { compiledSibling } from '../util/module.js';
import type { Store } from '../store/store.js';
import { REC, RECORD_MAX, RingWriter, ringBuffer } from './apply-ring.js';
import type { WriterData } from './apply-worker.js';

/** Size of the ring between the rebuild and its writer. */
const RING_BYTES = 1024 * 1024;

type Answer = { type: 'flushed' } | { type: 'done'; digest: Digest; size: number };
type Failed = { type: 'error'; code?: ErrorCode; message: string; details?: Record<string, unknown>; errno?: string; syscall?: string; path?: string };

function failure(m: Failed): FerryError {
  if (m.code) return new FerryError(m.code, m.message, { details: m.details });
  return toFerryError(Object.assign(new Error(m.message), { code: m.errno, syscall: m.syscall, path: m.path }), 'writing the rebuilt layer');
}

/** A layer's byte stream on its way to the writer thread. */
export class LayerSink {
  private readonly ring: RingWriter;
  private readonly worker: Worker;
  private failed: FerryError | undefined;
  private readonly waiting: { resolve: (a: Answer) => void; reject: (e: unknown) => void }[] = [];
  /** New bodies pushed since the last takeWritten. */
  private written: Digest[] = [];
  private readonly number = new DataView(new ArrayBuffer(8));

  /**
   * Starts a writer for a store. New bodies are written to temp files in `tempDir` named
   * `.tmp-<pid>-<token>-*` (the pending-apply directory: gc leaves them while this process lives).
   */
  constructor(store: Store, tempDir: string) {
    const sab = ringBuffer(RING_BYTES);
    this.ring = new RingWriter(sab);
    const workerData: WriterData = { ring: sab, root: store.root, tempDir, tempPrefix: `.tmp-${process.pid}-${randomBytes(4).toString('hex')}-` };
    this.worker = new Worker(fileURLToPath(compiledSibling(import.meta.url, 'apply-worker')), { workerData });
    this.worker.on('message', (m: Answer | Failed) => (m.type === 'error' ? this.fail(failure(m)) : this.waiting.shift()?.resolve(m)));
    this.worker.on('error', (err) => this.fail(toFerryError(err, 'the layer writer thread')));
    this.worker.on('exit', (code) => this.fail(new FerryError('FERRY_ERR_INTERNAL', `the layer writer thread exited (${code})`)));
  }

  private fail(err: FerryError): void {
    this.failed ??= err;
    this.ring.stop();
    for (const w of this.waiting.splice(0)) w.reject(this.failed);
  }

  private check(): void {
    if (this.failed) throw this.failed;
  }

  private async push(type: number, ...parts: Uint8Array[]): Promise<void> {
    this.check();
    await this.ring.push(type, ...parts);
    this.check();
  }

  private f64(n: number): Uint8Array {
    this.number.setFloat64(0, n);
    return new Uint8Array(this.number.buffer);
  }

  /** Bytes of the layer held in memory (header groups, padding, the tail). */
  async bytes(b: Uint8Array): Promise<void> {
    for (let i = 0; i < b.length; i += RECORD_MAX) await this.push(REC.hash, b.subarray(i, i + RECORD_MAX));
  }

  /** A stored content's body of `size` bytes (read, decoded and hashed by the writer). */
  async content(digest: Digest, size: number): Promise<void> {
    await this.push(REC.content, digestToBytes(digest), this.f64(size));
  }

  /**
   * A new body of `size` bytes, streamed: hashed here for its name, then hashed into the layer
   * and written as a content by the writer. Returns its digest.
   */
  async body(size: number, source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Digest> {
    return this.write(REC.begin, size, source);
  }

  /**
   * A new body of `size` bytes written as a content but not into the layer's bytes here: a group
   * member decoded before its own entry, which later passes it to `content` (the writer reads it
   * from its temp file until a flush names it). Returns its digest.
   */
  async stash(size: number, source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Digest> {
    return this.write(REC.stash, size, source);
  }

  private async write(type: number, size: number, source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Digest> {
    await this.push(type, this.f64(size));
    const hash = createHash('sha256');
    let got = 0;
    for await (const c of source) {
      got += c.length;
      if (got > size) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `payload is malformed: a body runs past its ${size} bytes`);
      hash.update(c);
      for (let i = 0; i < c.length; i += RECORD_MAX) await this.push(REC.data, c.subarray(i, i + RECORD_MAX));
    }
    if (got !== size) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `payload is malformed: a body is ${got} bytes, declared ${size}`);
    const digest = `sha256:${hash.digest('hex')}` as Digest;
    await this.push(REC.end, digestToBytes(digest));
    this.written.push(digest);
    return digest;
  }

  private async ask(type: number): Promise<Answer> {
    const answer = new Promise<Answer>((resolve, reject) => this.waiting.push({ resolve, reject }));
    answer.catch(() => {});
    await this.push(type);
    return answer;
  }

  /** Waits until every new body pushed so far is durable under its name. */
  async flush(): Promise<void> {
    await this.ask(REC.flush);
  }

  /** The new bodies pushed since the last call (what a pause records for gc). */
  takeWritten(): Digest[] {
    const out = this.written;
    this.written = [];
    return out;
  }

  /** The digest and size of every byte pushed. */
  async finish(): Promise<{ digest: Digest; size: number }> {
    const a = await this.ask(REC.finish);
    if (a.type !== 'done' || !isDigest(a.digest)) throw new FerryError('FERRY_ERR_INTERNAL', 'the layer writer answered out of turn');
    return { digest: a.digest, size: a.size };
  }

  /** Stops the writer (a body in progress is dropped; flushed ones stay). */
  async close(): Promise<void> {
    this.failed ??= new FerryError('FERRY_ERR_ABORTED', 'the layer writer was closed');
    this.ring.stop();
    await this.worker.terminate();
  }
}
