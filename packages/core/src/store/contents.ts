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

/** A batch of content writes into one store. */
export class ContentBatch {
  readonly stats: ContentStats = { added: 0, deduplicated: 0, storedBytes: 0 };
  private readonly inflight = new Map<Digest, Promise<void>>();
  /** Written but not yet durable: temp files awaiting flush's fsync and rename. */
  private readonly staged = new Map<Digest, { tmp: string; path: string }>();
  private inflightBytes = 0;
  private readonly dirs = new Set<string>();
  private failure: unknown;

  constructor(
    private readonly store: Store,
    private readonly concurrency = 16,
  ) {}

  /** Stores one body; resolves with its digest once the bytes are hashed (small) or written (large). */
  async put(body: AsyncIterable<Uint8Array>, size: number): Promise<Digest> {
    if (this.failure) throw this.failure;
    if (size > SMALL_BODY) return this.putLarge(body);
    const parts: Uint8Array[] = [];
    for await (const c of body) parts.push(c);
    const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    const digest = sha256(data);
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
    const tmp = tempPathFor(join(this.store.root, 'contents', 'x'));
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
      // fsynced many at once by the workers (concurrent fsyncs share journal commits), then renamed
      await contentPool().commit([...this.staged.values()]);
      this.staged.clear();
    }
    await Promise.all([...this.dirs].map((d) => fsyncDir(d)));
    this.dirs.clear();
  }
}
