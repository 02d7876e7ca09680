/**
 * Writing contents into the store in batches. Small bodies are hashed at once and written in the
 * background, several at a time (each write is temp + fsync + rename); large bodies stream
 * through zstd to a temp file. `flush` waits for every write and fsyncs the directories touched,
 * so a caller can then durably write what points at the contents (DESIGN.md section 8).
 */
import { createHash } from 'node:crypto';
import { rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { hashToDigest, sha256, type Digest } from '../util/digest.js';
import { exists, fsyncDir, tempPathFor, writeStreamAtomic } from '../util/fs.js';
import { zstdCompressStream } from '../util/zstd.js';
import { contentPool } from './content-pool.js';
import type { Store } from './store.js';

/** Bodies up to this size are buffered and handed to a writer worker whole; larger ones stream. */
const SMALL_BODY = 4 * 1024 * 1024;
/** Bytes of buffered bodies in flight at most (bounds memory whatever the layer holds). */
const INFLIGHT_BYTES = 16 * 1024 * 1024;

/** Counters of a batch. */
export interface ContentStats {
  added: number;
  deduplicated: number;
  /** Compressed bytes written. */
  storedBytes: number;
}

/** Options of a ContentBatch. */
export interface ContentBatchOptions {
  /** Simultaneous small writes (default 16). */
  concurrency?: number;
  /**
   * Directory of the temp files of large (streamed) bodies, on the store's file system (default
   * the store's contents/). The applier puts them in its pending-apply directory, where gc leaves
   * the temp files of a live process alone while that process waits for the network.
   */
  tempDir?: string | undefined;
}

/** A batch of content writes into one store. */
export class ContentBatch {
  readonly stats: ContentStats = { added: 0, deduplicated: 0, storedBytes: 0 };
  /** Every digest put since the last takeWritten (new or already present). */
  private written: Digest[] = [];
  private readonly concurrency: number;
  private readonly tempDir: string | undefined;
  private readonly inflight = new Map<Digest, Promise<void>>();
  /** Written but not yet durable: temp files awaiting flush's fsync and rename. */
  private readonly staged = new Map<Digest, { tmp: string; path: string }>();
  private inflightBytes = 0;
  private readonly dirs = new Set<string>();
  private failure: unknown;

  constructor(
    private readonly store: Store,
    options: ContentBatchOptions | number = {},
  ) {
    const o = typeof options === 'number' ? { concurrency: options } : options;
    this.concurrency = o.concurrency ?? 16;
    this.tempDir = o.tempDir;
  }

  /**
   * The digests put since the last call (including bodies the store already held): what an apply
   * that is about to release the store lock records for gc to keep.
   */
  takeWritten(): Digest[] {
    const out = this.written;
    this.written = [];
    return out;
  }

  /**
   * The temp file holding a content this batch put and has not flushed yet (after its write
   * finished), or undefined when the content is under its name (or was never put here).
   */
  async stagedPath(digest: Digest): Promise<string | undefined> {
    const job = this.inflight.get(digest);
    if (job) await job;
    if (this.failure) throw this.failure;
    return this.staged.get(digest)?.tmp;
  }

  /** Stores one body; resolves with its digest once the bytes are hashed (small) or written (large). */
  async put(body: AsyncIterable<Uint8Array>, size: number): Promise<Digest> {
    if (this.failure) throw this.failure;
    if (size > SMALL_BODY) {
      const digest = await this.putLarge(body);
      this.written.push(digest);
      return digest;
    }
    const parts: Uint8Array[] = [];
    for await (const c of body) parts.push(c);
    return this.putBuffer(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  }

  /**
   * Stores one body held whole in memory: hashed here, compressed and written by a worker in the
   * background. Resolves with its digest once the write is queued.
   */
  async putBuffer(data: Uint8Array): Promise<Digest> {
    if (this.failure) throw this.failure;
    const digest = sha256(data);
    this.written.push(digest);
    if (this.inflight.has(digest) || this.staged.has(digest)) {
      this.stats.deduplicated++;
      return digest;
    }
    while (this.inflight.size >= this.concurrency || (this.inflight.size > 0 && this.inflightBytes + data.length > INFLIGHT_BYTES)) {
      await Promise.race(this.inflight.values());
    }
    if (this.failure) throw this.failure;
    const job = this.writeSmall(digest, data).catch((err) => {
      this.failure ??= err;
    });
    this.inflight.set(digest, job);
    this.inflightBytes += data.length;
    void job.finally(() => {
      this.inflight.delete(digest);
      this.inflightBytes -= data.length;
    });
    return digest;
  }

  private async writeSmall(digest: Digest, data: Uint8Array): Promise<void> {
    const path = this.store.contentPath(digest);
    const r = await contentPool().write(path, data);
    if (!r.tmp) {
      this.stats.deduplicated++;
      return;
    }
    this.staged.set(digest, { tmp: r.tmp, path });
    this.dirs.add(dirname(path));
    this.stats.added++;
    this.stats.storedBytes += r.stored;
  }

  private async putLarge(body: AsyncIterable<Uint8Array>): Promise<Digest> {
    const hash = createHash('sha256');
    async function* hashing(): AsyncGenerator<Uint8Array> {
      for await (const c of body) {
        hash.update(c);
        yield c;
      }
    }
    const tmp = tempPathFor(join(this.tempDir ?? join(this.store.root, 'contents'), 'x'));
    await writeStreamAtomic(tmp, hashing(), { syncDir: false, transforms: [zstdCompressStream()] });
    const digest = hashToDigest(hash);
    const final = this.store.contentPath(digest);
    try {
      if (this.inflight.has(digest) || this.staged.has(digest) || (await exists(final))) {
        this.stats.deduplicated++;
        await rm(tmp, { force: true });
        return digest;
      }
      const size = (await stat(tmp)).size;
      await rename(tmp, final);
      this.dirs.add(dirname(final));
      this.stats.added++;
      this.stats.storedBytes += size;
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return digest;
  }

  /**
   * Waits for every write, fsyncs the staged temp files and renames them to their names, then
   * fsyncs the directories: after it, every content put so far is durable under its name. Throws
   * the first write error (staged temps are then left for gc).
   */
  async flush(): Promise<void> {
    await Promise.all(this.inflight.values());
    if (this.failure) throw this.failure;
    if (this.staged.size > 0) {
      await contentPool().commit([...this.staged.values()]);
      this.staged.clear();
    }
    await Promise.all([...this.dirs].map((d) => fsyncDir(d)));
    this.dirs.clear();
  }
}
