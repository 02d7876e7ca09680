/**
 * Where a layer rebuild sends the layer's bytes in tar order (header groups, references to stored
 * contents, new bodies): a LayerWriter (apply-writer.ts) hashes, reads and writes them. It runs
 * on the rebuild's own thread (InlineSink, the default: no second V8 isolate, no ring) or on a
 * writer thread fed through a shared ring (ThreadSink: the writer's hashing, content decoding and
 * level-3 compression on a second core, for 13-20 MB more RSS, measured: the thread's isolate and
 * the ring).
 */
import { randomBytes, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { FerryError, toFerryError, type ErrorCode } from '../errors.js';
import { digestToBytes, isDigest, type Digest } from '../util/digest.js';
import { compiledSibling } from '../util/module.js';
import type { Store } from '../store/store.js';
import { REC, RECORD_MAX, RingWriter, ringBuffer } from './apply-ring.js';
import type { ThreadWriterData } from './apply-worker.js';
import { LayerWriter, WriterFailure, bodyTempPath, type WriterData } from './apply-writer.js';

/** Size of the ring between the rebuild and its writer thread. */
const RING_BYTES = 1024 * 1024;

type Answer = { type: 'flushed' } | { type: 'done'; digest: Digest; size: number };
type Failed = { type: 'error'; code?: ErrorCode; message: string; details?: Record<string, unknown>; errno?: string; syscall?: string; path?: string };

/** A writer's failure as the rebuild reports it: a WriterFailure keeps its code; anything else is classified (ENOSPC, EACCES...). */
function writerError(err: unknown): FerryError {
  return err instanceof WriterFailure ? new FerryError(err.code as ErrorCode, err.message, { details: err.details }) : toFerryError(err, 'writing the rebuilt layer');
}

/** The same for a failure the writer thread posted. */
function failure(m: Failed): FerryError {
  return writerError(m.code ? new WriterFailure(m.code, m.message, m.details) : Object.assign(new Error(m.message), { code: m.errno, syscall: m.syscall, path: m.path }));
}

function writerData(store: Store, tempDir: string): WriterData {
  return { root: store.root, tempDir, tempPrefix: `.tmp-${process.pid}-${randomBytes(4).toString('hex')}-` };
}

/** A layer's byte stream on its way to its writer; see {@link openLayerSink}. */
export abstract class LayerSink {
  /** New bodies pushed since the last takeWritten. */
  private written: Digest[] = [];
  /** Times {@link whenStaged} found the writer behind and waited for it (always 0 inline). */
  stagedWaits = 0;

  /** Bytes of the layer held in memory (header groups, padding, the tail). */
  abstract bytes(b: Uint8Array): Promise<void>;
  /** A stored content's body of `size` bytes (read, decoded and hashed by the writer). */
  abstract content(digest: Digest, size: number): Promise<void>;
  /** Waits until every new body pushed so far is durable under its name. */
  abstract flush(): Promise<void>;
  /**
   * The temp file holding new body `digest` until the next flush names it; undefined when the
   * body is not staged, or the writer thread has not written it whole yet (see whenStaged).
   */
  abstract stagedPath(digest: Digest): string | undefined;
  /**
   * Whether new body `digest` can be read without a flush, waiting until the writer has written
   * it whole (the writer thread may be behind): from the temp file {@link stagedPath} names, or
   * from the store when it held the body already. A group that references a body of this layer
   * reads it there instead of flushing the writer to name it.
   */
  abstract whenStaged(digest: Digest): Promise<boolean>;
  /** The digest and size of every byte pushed. */
  abstract finish(): Promise<{ digest: Digest; size: number }>;
  /** Stops the writer (a body in progress is dropped; flushed ones stay). */
  abstract close(): Promise<void>;
  protected abstract begin(stash: boolean, size: number): Promise<void>;
  protected abstract data(c: Uint8Array): Promise<void>;
  protected abstract end(digest: Digest): Promise<void>;

  /**
   * A new body of `size` bytes, streamed: hashed here for its name, then hashed into the layer
   * and written as a content by the writer. Returns its digest.
   */
  async body(size: number, source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Digest> {
    return this.write(false, size, source);
  }

  /**
   * A new body of `size` bytes written as a content but not into the layer's bytes here: a group
   * member decoded before its own entry, which later passes it to `content` (the writer reads it
   * from its temp file until a flush names it). Returns its digest.
   */
  async stash(size: number, source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Digest> {
    return this.write(true, size, source);
  }

  private async write(stash: boolean, size: number, source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Digest> {
    await this.begin(stash, size);
    const hash = createHash('sha256');
    let got = 0;
    for await (const c of source) {
      got += c.length;
      if (got > size) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `payload is malformed: a body runs past its ${size} bytes`);
      hash.update(c);
      await this.data(c);
    }
    if (got !== size) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `payload is malformed: a body is ${got} bytes, declared ${size}`);
    const digest = `sha256:${hash.digest('hex')}` as Digest;
    await this.end(digest);
    this.written.push(digest);
    return digest;
  }

  /** The new bodies pushed since the last call (what a pause records for gc). */
  takeWritten(): Digest[] {
    const out = this.written;
    this.written = [];
    return out;
  }
}

/** How a layer's writer runs. */
export interface LayerSinkOptions {
  /** On a writer thread of its own (default false: on the calling thread). */
  thread?: boolean | undefined;
}

/**
 * A writer for a store's layer rebuild. New bodies are written to temp files in `tempDir` named
 * `.tmp-<pid>-<token>-*` (the pending-apply directory: gc leaves them while this process lives).
 */
export function openLayerSink(store: Store, tempDir: string, opts: LayerSinkOptions = {}): LayerSink {
  return opts.thread ? new ThreadSink(store, tempDir) : new InlineSink(store, tempDir);
}

/** The writer on the calling thread: each call runs it at once (synchronous file I/O). */
class InlineSink extends LayerSink {
  private readonly writer: LayerWriter;
  private failed: FerryError | undefined;

  constructor(store: Store, tempDir: string) {
    super();
    this.writer = new LayerWriter(writerData(store, tempDir));
  }

  private run<T>(f: (w: LayerWriter) => T): T {
    if (this.failed) throw this.failed;
    try {
      return f(this.writer);
    } catch (err) {
      this.failed = writerError(err);
      throw this.failed;
    }
  }

  async bytes(b: Uint8Array): Promise<void> {
    this.run((w) => w.hash(b));
  }

  async content(digest: Digest, size: number): Promise<void> {
    this.run((w) => w.content(digest.slice(7), size));
  }

  protected async begin(stash: boolean, size: number): Promise<void> {
    this.run((w) => w.begin(size, !stash));
  }

  protected async data(c: Uint8Array): Promise<void> {
    this.run((w) => w.bodyData([c]));
  }

  protected async end(digest: Digest): Promise<void> {
    this.run((w) => w.end(digest.slice(7)));
  }

  async flush(): Promise<void> {
    this.run((w) => w.flush());
  }

  stagedPath(digest: Digest): string | undefined {
    return this.writer.stagedPath(digest.slice(7));
  }

  async whenStaged(digest: Digest): Promise<boolean> {
    return this.stagedPath(digest) !== undefined;
  }

  async finish(): Promise<{ digest: Digest; size: number }> {
    const { hex, size } = this.run((w) => w.digest());
    return { digest: `sha256:${hex}` as Digest, size };
  }

  async close(): Promise<void> {
    this.failed ??= new FerryError('FERRY_ERR_ABORTED', 'the layer writer was closed');
    this.writer.close();
  }
}

/**
 * The writer on a thread of its own (apply-worker.ts), fed through a shared ring (1 MiB: four of
 * the largest records, enough to keep the writer busy). It follows the writer's temp files: the
 * writer names them by a sequence number in the order bodies begin (bodyTempPath) and keeps the
 * first of a digest written twice or already stored, so this side knows each new body's temp file
 * and the ring position after which the writer has closed it.
 */
class ThreadSink extends LayerSink {
  private readonly ring: RingWriter;
  private readonly files: WriterData;
  private seq = 0;
  /** The temp file of the body in progress. */
  private tmp = '';
  /** New bodies not yet flushed: digest hex -> temp file, and the ring position after its end record. */
  private readonly staged = new Map<string, { path: string; end: number }>();
  private readonly worker: Worker;
  private failed: FerryError | undefined;
  private readonly waiting: { resolve: (a: Answer) => void; reject: (e: unknown) => void }[] = [];
  private readonly number = new DataView(new ArrayBuffer(8));

  constructor(store: Store, tempDir: string) {
    super();
    const sab = ringBuffer(RING_BYTES);
    this.ring = new RingWriter(sab);
    this.files = writerData(store, tempDir);
    const workerData: ThreadWriterData = { ring: sab, ...this.files };
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

  async bytes(b: Uint8Array): Promise<void> {
    for (let i = 0; i < b.length; i += RECORD_MAX) await this.push(REC.hash, b.subarray(i, i + RECORD_MAX));
  }

  async content(digest: Digest, size: number): Promise<void> {
    await this.push(REC.content, digestToBytes(digest), this.f64(size));
  }

  protected async begin(stash: boolean, size: number): Promise<void> {
    this.tmp = bodyTempPath(this.files, this.seq++);
    await this.push(stash ? REC.stash : REC.begin, this.f64(size));
  }

  protected async data(c: Uint8Array): Promise<void> {
    for (let i = 0; i < c.length; i += RECORD_MAX) await this.push(REC.data, c.subarray(i, i + RECORD_MAX));
  }

  protected async end(digest: Digest): Promise<void> {
    await this.push(REC.end, digestToBytes(digest));
    // the writer's rule (LayerWriter.end): the first temp file of a digest is kept, unless the
    // store holds the body already (the writer checks that; stagedPath sees the file gone)
    const hex = digest.slice(7);
    if (!this.staged.has(hex)) this.staged.set(hex, { path: this.tmp, end: this.ring.position() });
  }

  private async ask(type: number): Promise<Answer> {
    const answer = new Promise<Answer>((resolve, reject) => this.waiting.push({ resolve, reject }));
    answer.catch(() => {});
    await this.push(type);
    return answer;
  }

  async flush(): Promise<void> {
    await this.ask(REC.flush);
    this.staged.clear();
  }

  stagedPath(digest: Digest): string | undefined {
    const s = this.staged.get(digest.slice(7));
    // a body the store held already had its temp file dropped by the writer: the store path serves
    return s && this.ring.handled(s.end) && existsSync(s.path) ? s.path : undefined;
  }

  async whenStaged(digest: Digest): Promise<boolean> {
    const s = this.staged.get(digest.slice(7));
    if (!s) return false;
    if (!this.ring.handled(s.end)) {
      this.stagedWaits++;
      await this.ring.waitHandled(s.end);
    }
    this.check();
    return true;
  }

  async finish(): Promise<{ digest: Digest; size: number }> {
    const a = await this.ask(REC.finish);
    if (a.type !== 'done' || !isDigest(a.digest)) throw new FerryError('FERRY_ERR_INTERNAL', 'the layer writer answered out of turn');
    return { digest: a.digest, size: a.size };
  }

  async close(): Promise<void> {
    this.failed ??= new FerryError('FERRY_ERR_ABORTED', 'the layer writer was closed');
    this.ring.stop();
    await this.worker.terminate();
  }
}
