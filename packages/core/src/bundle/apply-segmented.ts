/**
 * Decoding a segmented patch body (docs/format.md section 5.4) in a layer rebuild, called from
 * the one point where a delta's reference is resolved (apply-build.ts). The segment table is
 * checked against the named baseline body and the caps before a byte is read; then one pass over
 * the stored reference (streamed from the store, decoded and hashed as it goes) fills one window
 * buffer per segment, keeping only the window's bytes; each segment's frame decodes against it
 * into one output buffer. The three lie side by side in the layer's DeltaArena (apply-delta.ts),
 * the buffer its other deltas reuse: a segmented body adds no allocation, and what it needs (the
 * largest window, frame and output of its table) is checked against the arena's size before a
 * byte is read. Memory is the bounds of a single patch, whatever the body's size.
 */
import { FerryError } from '../errors.js';
import type { Digest } from '../util/digest.js';
import { zstdPatchDecode } from '../util/zstd.js';
import type { Store } from '../store/store.js';
import type { BaselineTable } from './baseline.js';
import type { DeltaArena } from './apply-delta.js';
import type { DecodedBody } from './payload.js';
import { checkSegments, type Segment } from './segments.js';

/** A SEGMENTED body as the op reader decodes it. */
export type SegmentedBody = Extract<DecodedBody, { kind: 'segmented' }>;

function missing(digest: Digest, why: string, cause?: unknown): FerryError {
  return new FerryError('FERRY_ERR_BASELINE_MISSING', `baseline content ${digest} that a segmented patch uses is ${why}`, { cause, details: { digest } });
}

/**
 * Windows of one stored content in non-decreasing offset order, from one streamed pass: bytes
 * before a window are skipped, bytes a window shares with the previous one are kept.
 */
class WindowReader {
  private readonly source: AsyncGenerator<Buffer>;
  /** The content position of buf[0], and how many bytes buf holds. */
  private start = 0;
  private held = 0;
  /** Bytes of the stream read so far, the unconsumed rest of the last chunk and its position. */
  private pos = 0;
  private rest: Buffer = Buffer.alloc(0);
  private restAt = 0;

  constructor(
    store: Store,
    private readonly digest: Digest,
    private readonly size: number,
    private readonly buf: Buffer,
  ) {
    // each piece is copied into the window before the next is asked for
    this.source = store.openContent(digest, { maxSize: size, reuseOutput: true });
  }

  private async next(): Promise<Buffer | undefined> {
    let r: IteratorResult<Buffer>;
    try {
      r = await this.source.next();
    } catch (err) {
      throw missing(this.digest, `unreadable or corrupt (${(err as Error).message})`, err);
    }
    if (r.done) return undefined;
    this.pos += r.value.length;
    return r.value;
  }

  /** The bytes [offset, offset+length) (offset at least the previous call's), valid until the next call. */
  async window(offset: number, length: number): Promise<Buffer> {
    const keep = Math.max(0, Math.min(this.start + this.held, offset + length) - offset);
    if (keep > 0) this.buf.copyWithin(0, offset - this.start, offset - this.start + keep);
    this.start = offset;
    this.held = keep;
    while (this.held < length) {
      if (this.rest.length === 0) {
        const c = await this.next();
        if (!c) throw missing(this.digest, 'shorter than its size');
        this.restAt = this.pos - c.length;
        this.rest = c;
      }
      const skip = offset + this.held - this.restAt;
      if (skip >= this.rest.length) {
        this.rest = Buffer.alloc(0);
        continue;
      }
      const take = Math.min(this.rest.length - skip, length - this.held);
      this.rest.copy(this.buf, this.held, skip, skip + take);
      this.held += take;
      this.rest = this.rest.subarray(skip + take);
      this.restAt += skip + take;
    }
    return this.buf.subarray(0, length);
  }

  /** Reads the rest of the content, so its size and digest are checked. */
  async finish(): Promise<void> {
    this.rest = Buffer.alloc(0);
    while (await this.next());
    if (this.pos !== this.size) throw missing(this.digest, `${this.pos} bytes, not ${this.size}`);
  }

  async close(): Promise<void> {
    await this.source.return(undefined);
  }
}

/** Collects exactly `size` bytes of the op's data records into `into`. */
async function collect(it: AsyncIterator<Uint8Array>, pending: { rest: Uint8Array }, into: Buffer): Promise<Buffer> {
  let at = 0;
  while (at < into.length) {
    if (pending.rest.length === 0) {
      const r = await it.next();
      if (r.done) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', 'payload is malformed: a segmented patch ends before its frames');
      pending.rest = r.value;
    }
    const take = Math.min(pending.rest.length, into.length - at);
    into.set(pending.rest.subarray(0, take), at);
    pending.rest = pending.rest.subarray(take);
    at += take;
  }
  return into;
}

/** What decodeSegmented needs from the layer build. */
export interface SegmentedContext {
  store: Store;
  table: BaselineTable;
  /** The reference cap in force: the largest window. */
  maxReference: number;
  /** The layer's delta buffer: window, frame and output are slices of it. */
  arena: DeltaArena;
  signal?: AbortSignal | undefined;
}

/**
 * Checks a SEGMENTED body against the baseline table and caps (nothing read yet), then hands
 * `use` its output as a stream, one segment at a time (each chunk valid until the next is asked
 * for). The reference is read once; its digest is checked before the stream ends.
 */
export async function decodeSegmented<T>(c: SegmentedContext, b: SegmentedBody, use: (out: AsyncIterable<Uint8Array>) => Promise<T>): Promise<T> {
  if (b.index >= c.table.length) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `payload is malformed: a segmented patch names baseline entry ${b.index}, which does not exist`);
  const ref = c.table.entry(b.index);
  if (!ref.digest) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `payload is malformed: a segmented patch names baseline entry ${b.index}, which has no body`);
  checkSegments(b.segments, { referenceSize: ref.size, bodySize: b.size, frameBytes: b.frameSize, maxReference: c.maxReference });
  return use(segmentsOut(c, ref.digest, ref.size, b));
}

async function* segmentsOut(c: SegmentedContext, digest: Digest, refSize: number, b: SegmentedBody): AsyncGenerator<Uint8Array> {
  const max = (f: (s: Segment) => number): number => b.segments.reduce((a, s) => Math.max(a, f(s)), 0);
  const [window, frameMax, size] = [max((s) => s.length), max((s) => s.frame), max((s) => s.size)];
  // the furthest slice first: a table needing more than the arena is refused before it is allocated
  const out = c.arena.slice(window + frameMax, size);
  const frame = c.arena.slice(window, frameMax);
  const reader = new WindowReader(c.store, digest, refSize, c.arena.slice(0, window));
  const data = b.data[Symbol.asyncIterator]();
  const pending = { rest: new Uint8Array(0) };
  try {
    for (const s of b.segments) {
      c.signal?.throwIfAborted();
      const f = await collect(data, pending, frame.subarray(0, s.frame));
      const window = await reader.window(s.offset, s.length);
      yield zstdPatchDecode(f, window, s.size, out);
    }
    await reader.finish();
  } finally {
    await reader.close();
  }
}
