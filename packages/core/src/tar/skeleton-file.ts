/**
 * The skeleton's on-disk form: a zstd frame holding a msgpack stream of records
 * (docs/format.md section 2): a head map, one array per entry, then a trailer map. Written and read
 * as streams so memory is bounded whatever the layer's file count.
 */
import { Encoder, decodeMultiStream } from '@msgpack/msgpack';
import { createReadStream } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { FerryError, toFerryError } from '../errors.js';
import { bytesToDigest, digestToBytes, isDigest, type Digest } from '../util/digest.js';
import { zstdCompressStreamReused, zstdDecode } from '../util/zstd.js';
import { msgpackDocuments } from '../bundle/msgpack-scan.js';
import type { SkeletonEntry, SkeletonTrailer } from './skeleton.js';

const MAGIC = 'ferry-skeleton';
const VERSION = 1;

/** Decoder limits for skeleton records (DESIGN.md section 8). */
export const SKELETON_LIMITS = {
  maxStrLength: 1024 * 1024,
  maxBinLength: 32 * 1024 * 1024,
  maxArrayLength: 16,
  maxMapLength: 16,
  maxExtLength: 0,
} as const;

/** Skeleton records are flat (an array of 6 fields, or a map of 4): 1 deep. */
const SKELETON_SCAN = { maxDepth: 1, maxElements: 64 };

/** Records are collected into pieces of this size before they enter the compressor. */
const PIECE = 64 * 1024;

/**
 * Streaming skeleton encoder: push entries, then finish with the trailer. Records are encoded
 * with one reused msgpack Encoder into a piece of PIECE bytes that enters the stream when full:
 * a stream write and a new encoder per record cost a layer rebuild about 0.3 s per 20,000 entries.
 */
export class SkeletonWriter {
  /** The compressed bytes, to be piped to a file. */
  readonly output: Readable;
  private readonly input = new PassThrough();
  private readonly encoder = new Encoder();
  private piece = Buffer.allocUnsafe(PIECE);
  private used = 0;

  constructor() {
    const z = zstdCompressStreamReused(6, true);
    this.output = this.input.pipe(z);
    this.input.on('error', (err) => z.destroy(err));
    this.write({ f: MAGIC, v: VERSION });
  }

  private write(value: unknown): void {
    const b = this.encoder.encodeSharedRef(value);
    if (this.used + b.length > PIECE) this.push();
    if (b.length > PIECE) {
      this.input.write(Buffer.from(b));
      return;
    }
    this.piece.set(b, this.used);
    this.used += b.length;
  }

  /** Hands the piece collected so far to the stream. */
  private push(): void {
    if (this.used === 0) return;
    this.input.write(this.piece.subarray(0, this.used));
    this.piece = Buffer.allocUnsafe(PIECE);
    this.used = 0;
  }

  /** Appends an entry. */
  add(e: SkeletonEntry): void {
    this.write([e.raw, e.path, e.type, e.size, e.digest ? digestToBytes(e.digest) : null, e.linkname ?? null]);
  }

  /** True when records are piling up (at most a piece beyond the stream's buffer): the caller should wait for {@link drain} before adding more. */
  get backedUp(): boolean {
    return this.input.writableNeedDrain;
  }

  /** Resolves when the buffered records have been taken by the compressor. */
  drain(): Promise<void> {
    return new Promise((resolve) => this.input.once('drain', resolve));
  }

  /** Appends the trailer and ends the stream. */
  finish(t: SkeletonTrailer): void {
    this.write({ tail: t.tail, diffId: t.diffId, size: t.size, count: t.count });
    this.push();
    this.input.end();
  }

  /** Aborts the stream. */
  destroy(err: Error): void {
    this.used = 0;
    this.input.destroy(err);
  }
}

function bad(msg: string): FerryError {
  return new FerryError('FERRY_ERR_SKELETON_INVALID', `skeleton is malformed: ${msg}`);
}

function toEntry(rec: unknown): SkeletonEntry {
  if (!Array.isArray(rec) || rec.length !== 6) throw bad('entry is not a 6-element array');
  const [raw, path, type, size, digest, linkname] = rec as unknown[];
  if (!(raw instanceof Uint8Array) || typeof path !== 'string' || typeof type !== 'string' || typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw bad('entry has fields of the wrong type');
  }
  if ((size > 0) !== (digest instanceof Uint8Array && digest.length === 32)) throw bad(`entry ${path} body and digest disagree`);
  if (linkname !== null && typeof linkname !== 'string') throw bad('linkname is not a string');
  return { raw, path, type, size, digest: size > 0 ? bytesToDigest(digest as Uint8Array) : undefined, linkname: linkname ?? undefined };
}

function toTrailer(rec: Record<string, unknown>): SkeletonTrailer {
  const { tail, diffId, size, count } = rec;
  if (!(tail instanceof Uint8Array) || !isDigest(diffId) || !Number.isSafeInteger(size) || !Number.isSafeInteger(count)) throw bad('trailer has fields of the wrong type');
  return { tail, diffId, size: size as number, count: count as number };
}

/** A skeleton being read: iterate `entries`, then `trailer()` is available. */
export interface SkeletonReader {
  entries: AsyncGenerator<SkeletonEntry>;
  trailer(): SkeletonTrailer;
}

/**
 * Reads a skeleton from compressed bytes (a file stream or any async source). Every record is
 * checked for shape; anything else is FERRY_ERR_SKELETON_INVALID.
 */
export function readSkeleton(source: AsyncIterable<Uint8Array>): SkeletonReader {
  let trailer: SkeletonTrailer | undefined;
  async function* entries(): AsyncGenerator<SkeletonEntry> {
    let first = true;
    let seen = 0;
    let bytes = 0;
    try {
      // pieces in one reused buffer; the splitter copies whole records out (no concatenation of a
      // record cut by a piece boundary with the whole next piece)
      const decoded = zstdDecode(source, 1 << 30, { reuseOutput: true });
      const scanned = msgpackDocuments(decoded, SKELETON_SCAN, 'skeleton', SKELETON_LIMITS.maxBinLength + 64 * 1024);
      for await (const rec of decodeMultiStream<undefined>(scanned, SKELETON_LIMITS)) {
        if (trailer) throw bad('records after the trailer');
        if (first) {
          const head = rec as Record<string, unknown>;
          if (!head || head.f !== MAGIC || head.v !== VERSION) throw bad('not a ferry skeleton (bad magic or version)');
          first = false;
        } else if (Array.isArray(rec)) {
          const entry = toEntry(rec);
          seen++;
          bytes += entry.raw.length + entry.size;
          yield entry;
        } else if (rec && typeof rec === 'object') {
          const t = toTrailer(rec as Record<string, unknown>);
          // the trailer restates what the entries add up to; a skeleton that disagrees is not the one written
          if (t.count !== seen || t.size !== bytes + t.tail.length) throw bad(`trailer says ${t.count} entries / ${t.size} bytes, the records hold ${seen} / ${bytes + t.tail.length}`);
          trailer = t;
        } else {
          throw bad('unexpected record');
        }
      }
    } catch (err) {
      if (err instanceof FerryError && err.code !== 'FERRY_ERR_MSGPACK_INVALID') throw err;
      // the file could not be read (EACCES, EIO): an I/O failure, not a malformed skeleton
      if (typeof (err as NodeJS.ErrnoException).syscall === 'string') throw toFerryError(err, 'reading a skeleton');
      throw new FerryError('FERRY_ERR_SKELETON_INVALID', `skeleton cannot be decoded: ${(err as Error).message}`, { cause: err });
    }
    if (!trailer) throw bad('no trailer (truncated)');
  }
  return {
    entries: entries(),
    trailer() {
      if (!trailer) throw bad('trailer read before the entries were consumed');
      return trailer;
    },
  };
}

/** Reads a skeleton file from disk. */
export function readSkeletonFile(path: string): SkeletonReader {
  return readSkeleton(createReadStream(path));
}

/** Collects a whole skeleton into memory (tests and small tools). */
export async function loadSkeleton(reader: SkeletonReader): Promise<{ entries: SkeletonEntry[]; trailer: SkeletonTrailer }> {
  const entries: SkeletonEntry[] = [];
  for await (const e of reader.entries) entries.push(e);
  return { entries, trailer: reader.trailer() };
}

export type { Digest };
