/**
 * Decoding patch-from and bsdiff bodies (docs/format.md section 5) with buffers a layer rebuild
 * reuses from one delta to the next: the stored reference (read, decoded and re-hashed), the patch
 * bytes and the output. Thousands of small deltas then cost no allocation each; a buffer that had
 * to grow past KEEP_MAX is dropped after its delta, so one large file does not pin its memory for
 * the rest of the layer.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { FerryError, toFerryError } from '../errors.js';
import { sha256, type Digest } from '../util/digest.js';
import { zstdDecompressInto, zstdPatchDecode } from '../util/zstd.js';
import { bspatch } from '../delta/bspatch.js';
import type { Store } from '../store/store.js';
import type { BaselineTable } from './baseline.js';

/** Buffers up to this size are kept between deltas. */
const KEEP_MAX = 64 * 1024 * 1024;

class Reusable {
  private buf = Buffer.alloc(0);

  /** A buffer of at least `n` bytes (its first `n` are the caller's until `done`). */
  take(n: number): Buffer {
    // small buffers grow in steps (fewer reallocations), large ones to the size asked: a 9 MB
    // reference must not cost 16
    if (this.buf.length < n) this.buf = Buffer.allocUnsafe(n < 1 << 20 ? Math.min(1 << 20, Math.max(n, 2 * this.buf.length)) : n);
    return this.buf.subarray(0, n);
  }

  /** Drops a buffer that grew past KEEP_MAX. */
  done(): void {
    if (this.buf.length > KEEP_MAX) this.buf = Buffer.alloc(0);
  }
}

function missing(digest: Digest, why: string, cause?: unknown): FerryError {
  return new FerryError('FERRY_ERR_BASELINE_MISSING', `baseline content ${digest} that a delta uses is ${why}`, { cause, details: { digest } });
}

/**
 * What a delta decodes against: the concatenation of `parts` (stored contents), `size` bytes in
 * all. A patch or bsdiff op names one baseline entry (one part); a GROUP's reference set names
 * several, baseline entries and bodies of the layer (group.ts).
 */
export interface PatchReference {
  parts: { digest: Digest; size: number }[];
  size: number;
}

/**
 * Resolves a patch or bsdiff op's reference (one baseline entry index) to the stored content that
 * is the reference, checked against the reference cap before a byte is read. A GROUP's reference
 * set is resolved by resolveReferenceSet (reference.ts, the same checks over several parts) into
 * the same PatchReference; DeltaDecoder reads the parts one after the other.
 */
export function resolveReference(table: BaselineTable, index: number, maxReference: number, path: string): PatchReference {
  const entry = table.entry(index);
  if (!entry.digest) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `payload is malformed: the reference of ${path}'s delta has no body`);
  if (entry.size > maxReference) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `the reference of ${path}'s delta is ${entry.size} bytes, over the ${maxReference}-byte cap`);
  return { parts: [{ digest: entry.digest, size: entry.size }], size: entry.size };
}

/** The reference, patch and output buffers of one layer's deltas. */
export class DeltaDecoder {
  private readonly packed = new Reusable();
  private readonly ref = new Reusable();
  private readonly patchBytes = new Reusable();
  private readonly out = new Reusable();

  constructor(private readonly store: Store) {}

  /**
   * A delta's reference bytes: its parts (stored contents) read, decoded and re-hashed one after
   * the other into one reused buffer. A missing or damaged part is FERRY_ERR_BASELINE_MISSING
   * naming it (never blamed on the payload). The parts come from `resolveReference`.
   */
  private reference(ref: PatchReference): Buffer {
    const out = this.ref.take(ref.size);
    let at = 0;
    for (const part of ref.parts) {
      this.readPart(part.digest, out.subarray(at, at + part.size));
      at += part.size;
    }
    return out;
  }

  /** Reads the stored content `digest` into `into` (exactly its size), checking its digest. */
  private readPart(digest: Digest, into: Buffer): void {
    const size = into.length;
    let fd: number;
    try {
      fd = openSync(this.store.contentPath(digest), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw missing(digest, 'missing', err);
      throw toFerryError(err, `reading content ${digest}`);
    }
    let packed: Buffer;
    try {
      const st = fstatSync(fd);
      // a stored frame is at most a little larger than its content
      if (!st.isFile() || st.size > size + (size >> 7) + 1024) throw missing(digest, 'corrupt (not a regular file of a plausible size)');
      packed = this.packed.take(st.size);
      for (let at = 0; at < packed.length; ) {
        const n = readSync(fd, packed, at, packed.length - at, at);
        if (n === 0) throw missing(digest, 'corrupt (shorter than its file size)');
        at += n;
      }
    } finally {
      closeSync(fd);
    }
    let n: number;
    try {
      n = zstdDecompressInto(packed, into);
    } catch (err) {
      throw missing(digest, `corrupt (${(err as Error).message})`, err);
    }
    if (n !== size || sha256(into) !== digest) throw missing(digest, 'corrupt (it does not match its digest)');
  }

  /** Collects a patch's bytes (their count was checked against its output size by the caller). */
  private async collect(source: AsyncIterable<Uint8Array>, size: number): Promise<Buffer> {
    const buf = this.patchBytes.take(size);
    let at = 0;
    for await (const c of source) {
      if (at + c.length > size) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', 'payload is malformed: a patch runs past its declared size');
      buf.set(c, at);
      at += c.length;
    }
    if (at !== size) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `payload is malformed: a patch is ${at} bytes, declared ${size}`);
    return buf;
  }

  /**
   * A zstd patch-from body: `use` gets the output (valid until it returns). The reference is
   * read after the patch bytes, which come first in the payload.
   */
  async patch<T>(ref: PatchReference, data: AsyncIterable<Uint8Array>, patchSize: number, size: number, use: (out: Uint8Array) => Promise<T>): Promise<T> {
    try {
      const patch = await this.collect(data, patchSize);
      const out = zstdPatchDecode(patch, this.reference(ref), size, this.out.take(size));
      return await use(out);
    } finally {
      this.release();
    }
  }

  /** A bsdiff body: `use` gets its output as a stream (the delta streams in as it is read). */
  async bsdiff<T>(ref: PatchReference, data: AsyncIterable<Uint8Array>, size: number, signal: AbortSignal | undefined, use: (out: AsyncIterable<Uint8Array>) => Promise<T>): Promise<T> {
    try {
      return await use(bspatch(this.reference(ref), data, size, signal));
    } finally {
      this.release();
    }
  }

  private release(): void {
    this.packed.done();
    this.ref.done();
    this.patchBytes.done();
    this.out.done();
  }
}
