/**
 * The rebuilt layer's bytes, hashed in tar order as the rebuild produces them (DESIGN.md section
 * 6: "hashes the layer while writing it", no second pass). Bodies of stored contents are read
 * ahead (the file reads run on the thread pool while the payload decodes), within a count and a
 * byte cap, so memory stays bounded whatever the layer holds.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { FerryError } from '../errors.js';
import { hashToDigest, type Digest } from '../util/digest.js';
import { zstdDecompress } from '../util/zstd.js';
import type { ContentBatch } from '../store/contents.js';
import type { Store } from '../store/store.js';

/** Read-ahead limits. */
export interface OutputLimits {
  /** Bodies up to this size are read whole and ahead; larger ones stream in order. */
  preload: number;
  /** Queued items at most. */
  items: number;
  /** Queued bytes at most. */
  bytes: number;
}

const DEFAULT_LIMITS: OutputLimits = { preload: 1024 * 1024, items: 128, bytes: 8 * 1024 * 1024 };

type Item = { bytes: Uint8Array; size: number } | { pending: Promise<Uint8Array>; size: number };

/** Maps a stored content's read failure to what it means for an apply. */
export function contentError(err: unknown, digest: Digest): unknown {
  if (err instanceof FerryError && err.code === 'FERRY_ERR_OBJECT_MISSING') {
    return new FerryError('FERRY_ERR_BASELINE_MISSING', `content ${digest} that the payload uses is not in the store`, { cause: err, details: { digest } });
  }
  return err;
}

function wrongSize(digest: Digest, got: number, size: number): FerryError {
  return new FerryError('FERRY_ERR_OBJECT_CORRUPT', `content ${digest} is ${got} bytes, the layer needs ${size}`, { details: { digest } });
}

/** The ordered hash of one rebuilt layer. */
export class LayerOutput {
  private readonly hash = createHash('sha256');
  private readonly queue: Item[] = [];
  private queued = 0;
  /** Bytes hashed so far. */
  size = 0;

  constructor(
    private readonly store: Store,
    /** The batch this layer's new contents go to: a body it holds is read from its temp file. */
    private readonly batch?: ContentBatch,
    private readonly limits: OutputLimits = DEFAULT_LIMITS,
  ) {}

  private update(b: Uint8Array): void {
    this.hash.update(b);
    this.size += b.length;
  }

  /** Bytes already in memory (a header group, a new body); the caller must not change them after. */
  async bytes(b: Uint8Array): Promise<void> {
    if (this.queue.length === 0) {
      this.update(b);
      return;
    }
    this.push({ bytes: b, size: b.length });
    await this.bound();
  }

  /** The body of a stored content of `size` bytes: read ahead when small, else streamed in order. */
  async content(digest: Digest, size: number): Promise<void> {
    if (size <= this.limits.preload) {
      const pending = this.read(digest, size);
      pending.catch(() => {}); // surfaces when the item is hashed
      this.push({ pending, size });
      await this.bound();
      return;
    }
    await this.drain();
    if (await this.batch?.stagedPath(digest)) {
      // a body of this layer still in its temp file (held bodies are at most a few MiB)
      this.update(await this.read(digest, size));
      return;
    }
    let got = 0;
    try {
      for await (const c of this.store.openContent(digest, { verify: false, maxSize: size })) {
        got += c.length;
        this.update(c);
      }
    } catch (err) {
      throw contentError(err, digest);
    }
    if (got !== size) throw wrongSize(digest, got, size);
  }

  /** Passes `source` through, hashing it in order (for bodies too large to hold). */
  async *through(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    await this.drain();
    for await (const c of source) {
      this.update(c);
      yield c;
    }
  }

  private async read(digest: Digest, size: number): Promise<Uint8Array> {
    let body: Uint8Array;
    try {
      // a body an earlier entry of this layer produced may not be under its name yet
      const staged = await this.batch?.stagedPath(digest);
      body = staged ? zstdDecompress(await readFile(staged), size) : await this.store.readContent(digest, size);
    } catch (err) {
      throw contentError(err, digest);
    }
    if (body.length !== size) throw wrongSize(digest, body.length, size);
    return body;
  }

  private push(item: Item): void {
    this.queue.push(item);
    this.queued += item.size;
  }

  private async bound(): Promise<void> {
    while (this.queue.length > this.limits.items || this.queued > this.limits.bytes) await this.shift();
  }

  private async shift(): Promise<void> {
    const item = this.queue[0]!;
    const bytes = 'bytes' in item ? item.bytes : await item.pending;
    this.queue.shift();
    this.queued -= item.size;
    this.update(bytes);
  }

  /** Hashes everything queued. */
  async drain(): Promise<void> {
    while (this.queue.length > 0) await this.shift();
  }

  /** The layer's digest (after drain). */
  digest(): Digest {
    if (this.queue.length > 0) throw new FerryError('FERRY_ERR_INTERNAL', 'layer digest taken before the queue drained');
    return hashToDigest(this.hash);
  }
}
