/**
 * The durable journal of partial-chunk bytes (tus: a resumable store's contract is its offset).
 * A chunk being fetched has `partial/<hex>` (its bytes so far, appended) and `partial/<hex>.journal`
 * (48 bytes: "FERRYPJ1", the durable length as u64 big-endian, and the sha256 of those first
 * bytes). A checkpoint fsyncs the bytes, then rewrites the journal; the journal's length is the
 * resume offset. On open nothing is trusted blindly: a missing, short or garbage journal, a partial
 * file shorter than its journal or whose prefix does not hash to the journal's digest restarts that
 * chunk from byte 0; bytes past the durable length are cut off.
 */
import { createHash, type Hash } from 'node:crypto';
import { lstat, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, fsyncDir, hashToDigest, toFerryError, type Digest } from '@ferry/core';
import { readBounded } from './files.js';

const MAGIC = Buffer.from('FERRYPJ1', 'latin1');
const RECORD = MAGIC.length + 8 + 32;
const HASH_STEP = 64 * 1024;

/** Why a partial chunk was restarted, and how many held bytes that threw away. */
export interface RestartNote {
  reason: string;
  bytes: number;
}

/** Parses a journal record; undefined when it is not one. */
function parseRecord(b: Buffer, size: number): { offset: number; prefix: Buffer } | undefined {
  if (b.length !== RECORD || !b.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const offset = Number(b.readBigUInt64BE(MAGIC.length));
  if (!Number.isSafeInteger(offset) || offset > size) return undefined;
  return { offset, prefix: b.subarray(MAGIC.length + 8) };
}

/** Hashes the first `n` bytes of an open file; undefined when it holds fewer. */
async function hashPrefix(fh: FileHandle, n: number): Promise<Hash | undefined> {
  const hash = createHash('sha256');
  const buf = Buffer.alloc(Math.min(HASH_STEP, Math.max(n, 1)));
  for (let at = 0; at < n; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, n - at), at);
    if (bytesRead === 0) return undefined;
    hash.update(buf.subarray(0, bytesRead));
    at += bytesRead;
  }
  return hash;
}

/** One chunk's resumable bytes. Only one holder at a time (the fetcher fetches a digest once). */
export class PartialChunk {
  private journal: FileHandle | undefined;
  private durable: number;
  private dirSynced = false;
  private released = false;

  private constructor(
    private readonly dir: string,
    private readonly digest: Digest,
    private fh: FileHandle,
    /** Bytes held (written), the offset the next byte goes to. */
    public offset: number,
    private hash: Hash,
  ) {
    this.durable = offset;
  }

  private static paths(dir: string, digest: Digest): { data: string; journal: string } {
    const hex = digestHex(digest);
    return { data: join(dir, hex), journal: join(dir, `${hex}.journal`) };
  }

  /**
   * Opens (creating, or repairing) the partial bytes of `digest` under `dir`. `onRestart` hears
   * of held bytes that could not be trusted and were dropped.
   */
  static async open(dir: string, digest: Digest, size: number, onRestart?: (note: RestartNote) => void): Promise<PartialChunk> {
    const p = PartialChunk.paths(dir, digest);
    try {
      const resumed = await PartialChunk.resume(dir, digest, size, p);
      if (resumed.chunk) return resumed.chunk;
      if (resumed.note) onRestart?.(resumed.note);
      await rm(p.journal, { force: true });
      const fh = await open(p.data, 'w+');
      return new PartialChunk(dir, digest, fh, 0, createHash('sha256'));
    } catch (err) {
      throw toFerryError(err, `opening the partial chunk ${digest}`);
    }
  }

  private static async resume(dir: string, digest: Digest, size: number, p: { data: string; journal: string }): Promise<{ chunk?: PartialChunk; note?: RestartNote }> {
    const read = await readBounded(p.journal, RECORD);
    const held = await lstat(p.data).then((st) => st.size, () => undefined);
    if (!read.ok) {
      if (read.missing && held === undefined) return {};
      return { note: { reason: read.missing ? 'partial bytes without a journal' : `journal ${read.reason}`, bytes: held ?? 0 } };
    }
    const record = parseRecord(read.bytes, size);
    if (!record) return { note: { reason: 'garbage journal', bytes: held ?? 0 } };
    let fh: FileHandle;
    try {
      fh = await open(p.data, 'r+');
    } catch {
      return { note: { reason: 'journal without partial bytes', bytes: 0 } };
    }
    const st = await fh.stat();
    const hash = st.isFile() && st.size >= record.offset ? await hashPrefix(fh, record.offset) : undefined;
    if (!hash || !hash.copy().digest().equals(record.prefix)) {
      await fh.close();
      return { note: { reason: hash ? 'partial bytes do not match their journal' : 'partial file shorter than its journal', bytes: record.offset } };
    }
    if (st.size > record.offset) await fh.truncate(record.offset);
    return { chunk: new PartialChunk(dir, digest, fh, record.offset, hash) };
  }

  /** Appends received bytes at the current offset (FERRY_ERR_IO when the disk fails: the offset stays). */
  async append(buf: Uint8Array): Promise<void> {
    let at = 0;
    try {
      while (at < buf.length) {
        const { bytesWritten } = await this.fh.write(buf, at, buf.length - at, this.offset + at);
        at += bytesWritten;
      }
    } catch (err) {
      throw toFerryError(err, `writing the partial chunk ${this.digest}`);
    }
    this.hash.update(buf);
    this.offset += buf.length;
  }

  /** Makes the bytes held durable and records their length (DESIGN.md section 8: data first, then the checkpoint). */
  async checkpoint(): Promise<void> {
    if (this.offset === this.durable) return;
    try {
      await this.fh.datasync();
      await this.writeJournal();
    } catch (err) {
      throw toFerryError(err, `checkpointing the partial chunk ${this.digest}`);
    }
  }

  /** Drops every byte held; the chunk starts again from byte 0. */
  async restart(): Promise<void> {
    await this.truncateTo(0);
  }

  /** Drops the bytes past `n` (bytes of an answer that was refused). */
  async truncateTo(n: number): Promise<void> {
    if (n >= this.offset) return;
    try {
      await this.fh.truncate(n);
      this.hash = (n > 0 ? await hashPrefix(this.fh, n) : undefined) ?? createHash('sha256');
      this.offset = n;
      if (this.durable > n) await this.writeJournal();
    } catch (err) {
      throw toFerryError(err, `truncating the partial chunk ${this.digest}`);
    }
  }

  private async writeJournal(): Promise<void> {
    const record = Buffer.alloc(RECORD);
    MAGIC.copy(record);
    record.writeBigUInt64BE(BigInt(this.offset), MAGIC.length);
    this.hash.copy().digest().copy(record, MAGIC.length + 8);
    this.journal ??= await open(PartialChunk.paths(this.dir, this.digest).journal, 'w');
    await this.journal.write(record, 0, RECORD, 0);
    await this.journal.datasync();
    if (!this.dirSynced) {
      await fsyncDir(this.dir);
      this.dirSynced = true;
    }
    this.durable = this.offset;
  }

  /** sha256 of the bytes held. */
  digestHeld(): Digest {
    return hashToDigest(this.hash.copy());
  }

  /**
   * Moves the verified bytes to `finalPath` (the cache's `chunks/<hex>`): fsync, rename, fsync the
   * directory, then forget the journal.
   */
  async commit(finalPath: string, finalDir: string): Promise<void> {
    const p = PartialChunk.paths(this.dir, this.digest);
    await this.fh.sync();
    await this.release();
    await rename(p.data, finalPath);
    await fsyncDir(finalDir);
    await rm(p.journal, { force: true });
  }

  /** Forgets the chunk's partial bytes and journal (its bytes came from elsewhere). */
  async discard(): Promise<void> {
    const p = PartialChunk.paths(this.dir, this.digest);
    await this.release();
    await rm(p.journal, { force: true });
    await rm(p.data, { force: true });
  }

  /** Checkpoints what is held and closes the files (a stopped transfer resumes from here). */
  async close(): Promise<void> {
    try {
      await this.checkpoint();
    } finally {
      await this.release();
    }
  }

  private async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const journal = this.journal;
    this.journal = undefined;
    try {
      await journal?.close();
    } finally {
      await this.fh.close();
    }
  }
}
