/**
 * Decoding patch-from and bsdiff bodies (docs/format.md section 5) in one buffer a layer rebuild
 * reuses from one delta to the next: the patch bytes, the stored reference (read, decoded and
 * re-hashed; each part's compressed frame passes through the space the output takes next) and the
 * output lie side by side in a {@link DeltaArena}. Thousands of small deltas then cost no
 * allocation each, and a reference or output that grows from one delta to the next leaves no
 * garbage behind: buffers regrown per delta used to hold twice the largest span until the
 * collector ran (measured on dep-bump: 88 MB of ArrayBuffers allocated for a 24 MB span).
 */
import { FerryError, isFerryError } from '../errors.js';
import type { Digest } from '../util/digest.js';
import { PATCH_SPAN_MAX, zstdPatchDecode } from '../util/zstd.js';
import { BspatchScratch, bspatch } from '../delta/bspatch.js';
import { readContentInto } from '../store/content-file.js';
import type { Store } from '../store/store.js';
import type { BaselineTable } from './baseline.js';

/**
 * Address space of a layer's delta buffer: a patch (at most its output size plus a little), the
 * reference and the output (together at most PATCH_SPAN_MAX), and a stored frame's slack.
 */
export const ARENA_BYTES = 2 * PATCH_SPAN_MAX + (4 << 20);

/**
 * One buffer of ARENA_BYTES, reserved once per layer and never regrown. A buffer this large is
 * mapped by the allocator on its own (glibc mmaps anything over 32 MiB), so its pages become
 * resident only when a delta first writes them: the rebuild's RSS grows to its largest delta's
 * span and no further, whatever the sequence of sizes.
 */
export class DeltaArena {
  private buf: Buffer | undefined;

  /** Bytes [at, at + n) of the arena (allocated on first use; over its size, FERRY_ERR_LIMIT_EXCEEDED before anything is allocated). */
  slice(at: number, n: number): Buffer {
    if (at + n > ARENA_BYTES) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `a delta needs ${at + n} bytes of buffer, over the ${ARENA_BYTES}-byte cap`);
    this.buf ??= spare.take() ?? Buffer.allocUnsafeSlow(ARENA_BYTES);
    return this.buf.subarray(at, at + n);
  }

  /** Drops the buffer: the next layer's arena reuses it if it starts soon; otherwise its pages go back when it is collected. */
  drop(): void {
    if (this.buf) spare.keep(this.buf);
    this.buf = undefined;
  }
}

/**
 * The arena a finished layer dropped, kept for SPARE_MS for the next layer of the same apply:
 * a fresh arena per layer left the previous one's resident pages (up to its largest span) in place
 * until the collector ran, so RSS could hold both (measured on the link bench's imagegen bundle:
 * `ferry apply` 114 -> 110 MiB, one 68 MiB reservation instead of four). After SPARE_MS it is let
 * go, so an idle agent does not keep it.
 */
const SPARE_MS = 2000;
const spare = {
  buf: undefined as Buffer | undefined,
  timer: undefined as NodeJS.Timeout | undefined,
  take(): Buffer | undefined {
    const b = this.buf;
    this.buf = undefined;
    return b;
  },
  keep(b: Buffer): void {
    this.buf = b;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => (this.buf = undefined), SPARE_MS).unref();
  },
};

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

/** The patch, reference and output buffers of one layer's deltas, in one arena. */
export class DeltaDecoder {
  /** The layer's one delta buffer (segmented patches decode in it too, apply-segmented.ts). */
  readonly arena = new DeltaArena();
  /** bspatch's output piece and diff buffer, for all of the layer's bsdiff bodies. */
  private bspatchScratch: BspatchScratch | undefined;

  /**
   * `staged` names the temp file of a body this layer wrote and has not named yet (the layer
   * writer's, LayerSink.stagedPath): a group that references it reads it there, with no flush.
   */
  constructor(
    private readonly store: Store,
    private readonly staged: (digest: Digest) => string | undefined = () => undefined,
  ) {}

  /**
   * A delta's reference bytes at [at, at + ref.size) of the arena: its parts (stored contents)
   * read, decoded and re-hashed one after the other; each part's frame is read into the arena
   * just past the reference. A missing or damaged part is FERRY_ERR_BASELINE_MISSING naming it
   * (never blamed on the payload). The parts come from `resolveReference`.
   */
  private reference(ref: PatchReference, at: number): Buffer {
    const out = this.arena.slice(at, ref.size);
    let pos = 0;
    for (const part of ref.parts) {
      this.readPart(part.digest, out.subarray(pos, pos + part.size), at + ref.size);
      pos += part.size;
    }
    return out;
  }

  /** Reads the stored content `digest` into `into` (exactly its size), checking its digest; its frame goes to the arena at `scratch`. */
  private readPart(digest: Digest, into: Buffer, scratch: number): void {
    try {
      readContentInto(this.store, digest, into, (n) => this.arena.slice(scratch, n), true, this.staged(digest));
    } catch (err) {
      if (isFerryError(err, 'FERRY_ERR_OBJECT_MISSING')) throw missing(digest, 'missing', err);
      if (isFerryError(err, 'FERRY_ERR_OBJECT_CORRUPT')) throw missing(digest, `corrupt (${err.message})`, err);
      throw err;
    }
  }

  /** Collects a patch's bytes into the arena's start (their count was checked against its output size by the caller). */
  private async collect(source: AsyncIterable<Uint8Array>, size: number): Promise<Buffer> {
    const buf = this.arena.slice(0, size);
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
   * read after the patch bytes, which come first in the payload. A span (reference plus output)
   * over PATCH_SPAN_MAX is FERRY_ERR_LIMIT_EXCEEDED before a byte is read.
   */
  async patch<T>(ref: PatchReference, data: AsyncIterable<Uint8Array>, patchSize: number, size: number, use: (out: Uint8Array) => Promise<T>): Promise<T> {
    if (ref.size + size > PATCH_SPAN_MAX) {
      throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `a patch of ${size} bytes against a ${ref.size}-byte reference spans over the ${PATCH_SPAN_MAX}-byte cap`);
    }
    const patch = await this.collect(data, patchSize);
    // the output's space also held the reference parts' frames while they were read
    const reference = this.reference(ref, patchSize);
    const out = zstdPatchDecode(patch, reference, size, this.arena.slice(patchSize + ref.size, size));
    return use(out);
  }

  /** A bsdiff body: `use` gets its output as a stream (the delta streams in as it is read), each piece valid until it asks for the next. */
  async bsdiff<T>(ref: PatchReference, data: AsyncIterable<Uint8Array>, size: number, signal: AbortSignal | undefined, use: (out: AsyncIterable<Uint8Array>) => Promise<T>): Promise<T> {
    // the layer's sink hashes and writes each piece before it asks for the next
    return use(bspatch(this.reference(ref, 0), data, size, signal, (this.bspatchScratch ??= new BspatchScratch())));
  }

  /** Frees the arena (the layer is done). */
  close(): void {
    this.arena.drop();
  }
}
