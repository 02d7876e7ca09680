/**
 * Batched reads of small contents for an export's read-ahead (tar/prefetch.ts). Reading a
 * content on the main thread costs an open, fstat, read and close round trip on the thread pool
 * plus the zstd decode; for layers of many small files those, not the bytes, bounded exports.
 * Here the requests made in one turn of the event loop go to a content worker as one job, which
 * reads and decodes them with plain system calls and returns the bodies in one buffer.
 */
import { FerryError, toFerryError } from '../errors.js';
import { digestHex, type Digest } from '../util/digest.js';
import { contentPool } from './content-pool.js';
import type { Store } from './store.js';

/** How reading a content failed: the file could not be read, it did not decode, or its hash is not its name. */
export type ContentReadFailure = 'io' | 'corrupt' | 'digest';

/**
 * The error for a content that could not be read (one mapping for every reader): missing is
 * FERRY_ERR_OBJECT_MISSING, damaged FERRY_ERR_OBJECT_CORRUPT, other system errors FERRY_ERR_IO.
 */
export function contentReadError(d: Digest, path: string, kind: ContentReadFailure, err: unknown): FerryError {
  if (kind === 'digest') return new FerryError('FERRY_ERR_OBJECT_CORRUPT', `content ${d} does not match its digest`, { details: { digest: d, path } });
  if (kind === 'corrupt') return new FerryError('FERRY_ERR_OBJECT_CORRUPT', `content ${d} is corrupt (${(err as Error).message})`, { cause: err, details: { digest: d, path } });
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new FerryError('FERRY_ERR_OBJECT_MISSING', `content ${d} is missing from the store`, { details: { digest: d } });
  return toFerryError(err, `reading content ${d}`);
}

/** Options of a ContentReader. */
export interface ContentReaderOptions {
  /** Re-hash every body (FERRY_ERR_OBJECT_CORRUPT on a mismatch); default false. */
  verify?: boolean;
  /** A job is sent once this many contents are waiting (default 256). */
  maxItems?: number;
  /** ...or this many body bytes (default 2 MiB). */
  maxBytes?: number;
}

interface Request {
  digest: Digest;
  size: number;
  resolve: (b: Uint8Array) => void;
  reject: (e: unknown) => void;
}

/** Loads whole small contents, batching the requests of one event-loop turn into one worker job. */
export class ContentReader {
  private queue: Request[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  private readonly verify: boolean;
  private readonly maxItems: number;
  private readonly maxBytes: number;

  constructor(
    private readonly store: Store,
    options: ContentReaderOptions = {},
  ) {
    this.verify = options.verify ?? false;
    this.maxItems = options.maxItems ?? 256;
    this.maxBytes = options.maxBytes ?? 2 * 1024 * 1024;
  }

  /** A content's whole body (at most `size` bytes are decoded; a shorter one is returned as is). */
  load(digest: Digest, size: number): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      this.queue.push({ digest, size, resolve, reject });
      this.queuedBytes += size;
      if (this.queue.length >= this.maxItems || this.queuedBytes >= this.maxBytes) this.send();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.send();
        });
      }
    });
  }

  private send(): void {
    const batch = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    if (batch.length === 0) return;
    const items = batch.map((r) => ({ path: this.store.contentPath(r.digest), size: r.size, hex: digestHex(r.digest) }));
    contentPool()
      .read(items, this.verify)
      .then(
        (res) => {
          if (res.failed) return this.fail(batch, res.failed.index, res.failed.kind, Object.assign(new Error(res.error?.message), res.error));
          let at = 0;
          for (const [i, r] of batch.entries()) {
            const n = res.lengths![i]!;
            r.resolve(res.data!.subarray(at, at + n));
            at += n;
          }
        },
        (err: unknown) => {
          for (const r of batch) r.reject(err);
        },
      );
  }

  /** One item failed: it gets its error; the others of the batch are read one by one. */
  private fail(batch: Request[], index: number, kind: ContentReadFailure, err: unknown): void {
    for (const [i, r] of batch.entries()) {
      if (i === index) r.reject(contentReadError(r.digest, this.store.contentPath(r.digest), kind, err));
      else this.store.readContent(r.digest, r.size, this.verify).then(r.resolve, r.reject);
    }
  }
}
