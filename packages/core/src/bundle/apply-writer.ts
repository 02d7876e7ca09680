/**
 * The writer of a layer rebuild: it takes the layer's bytes in tar order and
 *   - hashes them all: the layer's diff_id, computed while the layer is written;
 *   - reads, decodes and hashes each stored content the layer uses (once, with reused buffers);
 *   - compresses each new body into a temp file in the pending-apply directory while hashing it,
 *     and at a flush makes the new bodies durable and renames them to their names;
 *   - writes a stashed body (a group member decoded before its own entry) the same way without
 *     hashing it into the layer, keeping a copy in a small slab while one fits (apply-keep.ts):
 *     its entry later takes that copy, or else reads it as a content, from its temp file until a
 *     flush names it.
 * Every buffer is allocated once per rebuild, so it makes no garbage per record (memory stays
 * flat, DESIGN.md section 6: "bounded memory"). It runs on the rebuild's own thread
 * (apply-sink.ts, the default) or on a writer thread fed by a shared ring (apply-worker.ts).
 * Synchronous file I/O throughout: on the writer thread nothing else waits for it; inline, each
 * call is bounded by one stored content or one record.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import binding from 'zstd-napi/binding.js';
import { syncFileSystem } from '../util/fs.js';
import { openContentFile, type ContentFile } from '../store/content-open.js';
import { KeptBodies } from './apply-keep.js';

/** Where a writer puts what it writes. */
export interface WriterData {
  /** The store's root (contents/ is under it). */
  root: string;
  /** Where temp files of new bodies go (the pending-apply directory). */
  tempDir: string;
  /** Their name prefix (`.tmp-<pid>-<token>-`): gc keeps them while this process lives. */
  tempPrefix: string;
}

/**
 * The temp file of the `seq`-th new body a writer begins (stashed or not, counted from 0): the
 * writer thread's sink names it by the same rule to read a body before the writer names it.
 */
export function bodyTempPath(data: WriterData, seq: number): string {
  return join(data.tempDir, `${data.tempPrefix}${seq}`);
}

/** A failure with a code of core's ERROR_CODES (the thread passes code, message and details on). */
export class WriterFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

const PIECE = 256 * 1024;
const STAGED_FOR_SYNCFS = 32;

/** A writer's zstd contexts: its stored-content decoder and its new-body compressor. */
interface WriterContexts {
  dctx: binding.DCtx;
  cctx: binding.CCtx;
}

/**
 * Contexts of closed writers, taken by the next layer's writer on the same thread. A context per
 * layer was freed by the collector some time after its layer, with the buffers it had grown to
 * (megabytes: the level-3 tables, the largest content's window); each such free raises glibc's
 * dynamic mmap threshold, after which allocations up to that size come from the heap, where they
 * fragment and are not returned (bench/README.md "Figures: apply memory").
 */
const idleContexts: WriterContexts[] = [];
let contextsCreated = 0;

/** How many writer context pairs this thread has created (a test counts reuse). */
export function writerContextsCreated(): number {
  return contextsCreated;
}

function takeContexts(): WriterContexts {
  const idle = idleContexts.pop();
  if (idle) return idle;
  contextsCreated++;
  return { dctx: new binding.DCtx(), cctx: new binding.CCtx() };
}

/** One layer's writer (see the file comment). */
export class LayerWriter {
  private readonly layer = createHash('sha256');
  private layerSize = 0;
  private readonly contexts = takeContexts();
  private readonly dctx = this.contexts.dctx;
  private readonly cctx = this.contexts.cctx;
  private released = false;
  private readonly readBuf = Buffer.allocUnsafe(PIECE);
  private readonly outBuf = Buffer.allocUnsafe(PIECE);
  private readonly zBuf = Buffer.allocUnsafe(PIECE);
  /** New bodies written and not yet flushed: digest hex -> temp file. */
  private readonly staged = new Map<string, string>();
  /** The new body in progress; `layer` false for a stashed one (not hashed into the layer), `copy` its bytes being kept. */
  private body: { fd: number; tmp: string; size: number; got: number; layer: boolean; copy?: Buffer | undefined } | undefined;
  /** Stashed bodies kept in memory until their entries take them (apply-keep.ts). */
  readonly kept = new KeptBodies();
  private seq = 0;

  constructor(private readonly data: WriterData) {
    this.cctx.setParameter(binding.CParameter.compressionLevel, 3);
    this.cctx.setParameter(binding.CParameter.checksumFlag, 1);
  }

  private contentPath(hex: string): string {
    return join(this.data.root, 'contents', hex.slice(0, 2), hex);
  }

  /** Bytes of the layer held in memory: hashed into the layer. */
  hash(b: Uint8Array): void {
    this.layer.update(b);
    this.layerSize += b.length;
  }

  /** Reads a stored content (or a new body not flushed yet), decodes it and hashes it into the layer. */
  content(hex: string, size: number): void {
    const kept = this.kept.take(hex, size);
    if (kept) return this.hash(kept);
    const path = this.staged.get(hex) ?? this.contentPath(hex);
    let file: ContentFile;
    try {
      file = openContentFile(path, size);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new WriterFailure('FERRY_ERR_BASELINE_MISSING', `content sha256:${hex} that the payload uses is not in the store`, { digest: `sha256:${hex}` });
      throw err;
    }
    if ('fault' in file) throw new WriterFailure('FERRY_ERR_OBJECT_CORRUPT', `content sha256:${hex} is ${file.fault}`, { digest: `sha256:${hex}` });
    try {
      this.decodeFrom(file.fd, hex, size, file.fileSize);
    } finally {
      closeSync(file.fd);
    }
  }

  /** Decodes the frame of `fileSize` bytes (read up to that size: no read past the end to find it). */
  private decodeFrom(fd: number, hex: string, size: number, fileSize: number): void {
    const corrupt = (why: string): WriterFailure => new WriterFailure('FERRY_ERR_OBJECT_CORRUPT', `content sha256:${hex} is corrupt (${why})`, { digest: `sha256:${hex}` });
    const { dctx, readBuf, outBuf } = this;
    dctx.reset(binding.ResetDirective.sessionOnly);
    let got = 0;
    let ret = 1;
    const produced = (n: number): void => {
      got += n;
      if (got > size) throw corrupt(`it holds more than the ${size} bytes the layer needs`);
      if (n > 0) this.hash(outBuf.subarray(0, n));
    };
    for (let pos = 0; pos < fileSize; ) {
      const n = readSync(fd, readBuf, 0, Math.min(readBuf.length, fileSize - pos), pos);
      if (n === 0) break;
      pos += n;
      let src = readBuf.subarray(0, n);
      while (src.length > 0) {
        let out: number, consumed: number;
        try {
          [ret, out, consumed] = dctx.decompressStream(outBuf, src);
        } catch (err) {
          throw corrupt((err as Error).message);
        }
        produced(out);
        src = src.subarray(consumed);
        if (consumed === 0 && out === 0) break;
      }
    }
    // a frame ends with ret 0; drain output held back in the context
    while (ret !== 0) {
      const [r, out] = dctx.decompressStream(outBuf, Buffer.alloc(0));
      if (out === 0) break;
      produced(out);
      ret = r;
    }
    if (ret !== 0 || got !== size) throw corrupt(ret !== 0 ? 'truncated' : `${got} bytes, the layer needs ${size}`);
  }

  private compress(fd: number, input: Uint8Array, end: boolean): void {
    let src = input;
    for (;;) {
      const [ret, produced, consumed] = this.cctx.compressStream2(this.zBuf, src, end ? binding.EndDirective.end : binding.EndDirective.continue);
      if (produced > 0) writeSync(fd, this.zBuf, 0, produced);
      src = src.subarray(consumed);
      if (src.length === 0 && (!end || ret === 0)) return;
    }
  }

  /** Starts a new body of `size` bytes; `layer` false for a stashed one. */
  begin(size: number, layer: boolean): void {
    const tmp = bodyTempPath(this.data, this.seq++);
    this.body = { fd: openSync(tmp, 'wx'), tmp, size, got: 0, layer, copy: layer ? undefined : this.kept.reserve(size) };
    this.cctx.reset(binding.ResetDirective.sessionOnly);
    this.cctx.setPledgedSrcSize(size);
  }

  /** Bytes of the body in progress. */
  bodyData(parts: readonly Uint8Array[]): void {
    const b = this.body!;
    for (const p of parts) {
      if (b.layer) this.hash(p);
      else b.copy?.set(p, b.got);
      b.got += p.length;
      this.compress(b.fd, p, false);
    }
  }

  /** Ends the body in progress, whose digest is `hex`: staged for the next flush. */
  end(hex: string): void {
    const b = this.body!;
    this.body = undefined;
    try {
      this.compress(b.fd, new Uint8Array(0), true);
    } finally {
      closeSync(b.fd);
    }
    if (b.got !== b.size) throw new WriterFailure('FERRY_ERR_INTERNAL', `a new body of ${b.size} bytes received ${b.got}`);
    if (b.copy) this.kept.keep(hex, b.copy);
    if (this.staged.has(hex) || existsSync(this.contentPath(hex))) rmSync(b.tmp, { force: true });
    else this.staged.set(hex, b.tmp);
  }

  /** The temp file of new body `hex` while it waits for a flush (a stashed group member, say). */
  stagedPath(hex: string): string | undefined {
    return this.staged.get(hex);
  }

  /** Durable, then named: the data first (one syncfs, or each file), then the renames and their directories. */
  flush(): void {
    if (this.staged.size === 0) return;
    const whole = this.staged.size >= STAGED_FOR_SYNCFS && syncFileSystem(this.data.tempDir);
    if (!whole) for (const tmp of this.staged.values()) fsyncPath(tmp);
    const dirs = new Set<string>();
    for (const [hex, tmp] of this.staged) {
      renameSync(tmp, this.contentPath(hex));
      dirs.add(dirname(this.contentPath(hex)));
    }
    this.staged.clear();
    if (whole && syncFileSystem(this.data.tempDir)) return;
    for (const d of dirs) fsyncPath(d);
  }

  /** The digest (hex) and size of every byte of the layer so far. */
  digest(): { hex: string; size: number } {
    return { hex: this.layer.copy().digest('hex'), size: this.layerSize };
  }

  /**
   * Drops a body in progress (its temp file); flushed and staged ones stay. The zstd contexts go
   * to the next writer of this thread: nothing may be written after this.
   */
  close(): void {
    if (!this.released) {
      this.released = true;
      this.dctx.reset(binding.ResetDirective.sessionOnly);
      this.cctx.reset(binding.ResetDirective.sessionOnly);
      if (idleContexts.length < 2) idleContexts.push(this.contexts);
    }
    const b = this.body;
    this.body = undefined;
    if (!b) return;
    closeSync(b.fd);
    rmSync(b.tmp, { force: true });
  }
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
