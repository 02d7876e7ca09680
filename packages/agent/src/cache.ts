/**
 * The agent's chunk cache, in the repository's own layout (DESIGN.md section 6): `chunks/<hex>`
 * holds verified chunks only, so the directory can be served by a relay or copied to a USB stick;
 * `partial/` holds resumable bytes and their journal (partial.ts). A chunk reaches its final name
 * only after its sha256 verified: temp file (or partial file), fsync, rename, fsync dir.
 */
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, digestHex, sha256, toFerryError, writeFileAtomic, type Digest } from '@ferry/core';
import { readBounded } from './files.js';
import { PartialChunk, type RestartNote } from './partial.js';

/** A chunk cache directory. */
export class ChunkCache {
  /** `chunks/`: verified chunks. */
  readonly chunksDir: string;
  /** `partial/`: resumable bytes and journals. */
  readonly partialDir: string;

  private constructor(readonly root: string) {
    this.chunksDir = join(root, 'chunks');
    this.partialDir = join(root, 'partial');
  }

  /** Opens (creating) a cache; removes temp files a crash left in `chunks/`. */
  static async open(root: string): Promise<ChunkCache> {
    const cache = new ChunkCache(root);
    try {
      await mkdir(cache.chunksDir, { recursive: true });
      await mkdir(cache.partialDir, { recursive: true });
      for (const name of await readdir(cache.chunksDir)) {
        if (name.startsWith('.tmp-')) await rm(join(cache.chunksDir, name), { force: true });
      }
    } catch (err) {
      throw toFerryError(err, `opening the chunk cache ${root}`);
    }
    return cache;
  }

  /** Final path of a chunk. */
  chunkPath(digest: Digest): string {
    return join(this.chunksDir, digestHex(digest));
  }

  /** True when a verified chunk is in the cache (its partial bytes, if a crash left them, are removed). */
  async has(digest: Digest): Promise<boolean> {
    const st = await lstat(this.chunkPath(digest)).catch(() => undefined);
    if (!st?.isFile()) return false;
    await this.forgetPartial(digest);
    return true;
  }

  /**
   * Reads a cached chunk and checks it again (size and sha256). A damaged one is removed and
   * FERRY_ERR_CHUNK_INVALID thrown, so it is fetched again; a missing one is FERRY_ERR_CHUNK_MISSING.
   */
  async read(digest: Digest, size: number, signal?: AbortSignal): Promise<Buffer> {
    const path = this.chunkPath(digest);
    const r = await readBounded(path, size, signal);
    if (r.ok && sha256(r.bytes) === digest) return r.bytes;
    if (!r.ok && r.missing) throw new FerryError('FERRY_ERR_CHUNK_MISSING', `chunk ${digest} is not in the cache`, { details: { digest } });
    await rm(path, { force: true });
    throw new FerryError('FERRY_ERR_CHUNK_INVALID', `cached chunk ${digest} was damaged (${r.ok ? 'digest mismatch' : r.reason}); removed`, { details: { digest } });
  }

  /** Stores verified bytes (from a local source) durably under their final name. */
  async put(digest: Digest, bytes: Uint8Array): Promise<void> {
    await writeFileAtomic(this.chunkPath(digest), bytes, { mkdir: false });
    await this.forgetPartial(digest);
  }

  /** Opens the resumable bytes of a chunk (repairing a damaged journal: see partial.ts). */
  openPartial(digest: Digest, size: number, onRestart?: (note: RestartNote) => void): Promise<PartialChunk> {
    return PartialChunk.open(this.partialDir, digest, size, onRestart);
  }

  /** Moves a partial chunk whose bytes verified into `chunks/`. */
  async commitPartial(partial: PartialChunk, digest: Digest): Promise<void> {
    try {
      await partial.commit(this.chunkPath(digest), this.chunksDir);
    } catch (err) {
      throw toFerryError(err, `committing chunk ${digest}`);
    }
  }

  private async forgetPartial(digest: Digest): Promise<void> {
    const hex = digestHex(digest);
    await rm(join(this.partialDir, hex), { force: true });
    await rm(join(this.partialDir, `${hex}.journal`), { force: true });
  }
}
