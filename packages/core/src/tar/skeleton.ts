/**
 * The skeleton codec (DESIGN.md section 2): split a layer tar into its skeleton (every byte that is
 * not a file body, kept verbatim) and its contents (file bodies, addressed by sha256), and
 * reassemble the exact original bytes from the two.
 */
import { createHash } from 'node:crypto';
import { FerryError } from '../errors.js';
import { ByteReader } from '../util/byte-reader.js';
import { hashToDigest, type Digest } from '../util/digest.js';
import { HeaderGroupParser, paddingAfter, type MemberInfo } from './group.js';
import { BLOCK, isZeroBlock } from './header.js';

/** One tar member in a skeleton. Metadata members (pax, GNU long names) fold into `raw`. */
export interface SkeletonEntry {
  /** Bytes between the previous body and this body: padding, pax/long-name blocks, the header. */
  raw: Uint8Array;
  /** The member's path as written in the tar (pax and GNU long names applied), see pathString. */
  path: string;
  /** Typeflag character ('0', '5', '2', '1', 'S', ...; '\0' for v7 regular files). */
  type: string;
  /** Link target for symlinks and hardlinks, else undefined. */
  linkname?: string | undefined;
  /** Body size in bytes (the bytes stored in the tar; for sparse files, the stored data). */
  size: number;
  /** sha256 of the body, present exactly when size > 0. */
  digest?: Digest | undefined;
}

/** What a split returns besides its entries. */
export interface SkeletonTrailer {
  /** Bytes after the last body: its padding, the end-of-archive blocks, anything after. */
  tail: Uint8Array;
  /** sha256 of the whole tar: the layer's diff_id. */
  diffId: Digest;
  /** Size of the whole tar in bytes. */
  size: number;
  /** Number of entries. */
  count: number;
}

/** Limits on a split; set before reading (DESIGN.md section 8). */
export interface SplitLimits {
  /** Largest pax or GNU long-name data block accepted (default 1 MiB). */
  maxMetaSize?: number;
  /** Largest run of bytes after the end-of-archive marker (default 16 MiB). */
  maxTailSize?: number;
}

/** Callbacks of a split. */
export interface SplitHandler {
  /**
   * Receives a body as it streams; must consume it fully. Returns once it is stored. When
   * `hashesBodies` is set the handler returns the body's sha256 and the splitter trusts it
   * instead of hashing every body a second time.
   */
  onBody(body: AsyncIterable<Buffer>, size: number, path: string): Promise<Digest | void>;
  /** The handler hashes bodies itself and returns their digests from onBody. */
  hashesBodies?: boolean;
  /** Receives each entry, in tar order, after its body was handed over. */
  onEntry(entry: SkeletonEntry): void | Promise<void>;
}

async function* hashed(source: AsyncIterable<Uint8Array>, state: { hash: ReturnType<typeof createHash>; size: number }): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    state.hash.update(chunk);
    state.size += chunk.byteLength;
    yield chunk;
  }
}

async function* hashBody(body: AsyncIterable<Buffer>, hash: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  for await (const chunk of body) {
    hash.update(chunk);
    yield chunk;
  }
}

/**
 * Reads the zero padding after a body. A tar that ends exactly at the end of a body is accepted
 * (the body is whole): a tar writer that is never closed leaves one, and the image's diff_id covers
 * exactly those bytes (umoci `insert` wrote layers so until opencontainers/umoci#534, see #436; Go
 * tools read them). A tar that ends inside the padding is FERRY_ERR_TAR_TRUNCATED.
 */
async function readPadding(reader: ByteReader, n: number): Promise<Buffer> {
  if (n === 0) return Buffer.alloc(0);
  const pad = await reader.readUpTo(n);
  if (pad.length !== 0 && pad.length < n) throw new FerryError('FERRY_ERR_TAR_TRUNCATED', `tar ended after ${reader.position} bytes, inside the padding of a body`);
  return Buffer.from(pad);
}

/**
 * Splits a layer tar. Entries and bodies are handed to `handler` in order; memory holds one
 * header group at a time. Throws FERRY_ERR_TAR_BAD_HEADER / FERRY_ERR_TAR_TRUNCATED /
 * FERRY_ERR_LIMIT_EXCEEDED on malformed input.
 */
export async function splitLayer(source: AsyncIterable<Uint8Array>, handler: SplitHandler, limits: SplitLimits = {}): Promise<SkeletonTrailer> {
  const whole = { hash: createHash('sha256'), size: 0 };
  const input = hashed(source, whole);
  try {
    return await splitFrom(new ByteReader(input), whole, handler, limits);
  } finally {
    // after an early error the source is still open (a file stream keeps its descriptor): close it
    await input.return(undefined);
  }
}

/** Header-group bytes the splitter holds, bounded (DESIGN.md section 8). */
class Pending {
  parts: Buffer[] = [];
  bytes = 0;

  constructor(private readonly max: number) {}

  keep(b: Buffer, position: number): void {
    this.parts.push(b);
    this.bytes += b.length;
    if (this.bytes > this.max) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `tar header group at byte ${position} exceeds ${this.max} bytes`);
  }

  take(): Buffer {
    const out = Buffer.concat(this.parts);
    this.parts = [];
    this.bytes = 0;
    return out;
  }
}

/**
 * Reads the next header group into `pending` (header-group.ts parses it). Returns the member, or
 * undefined at the end of the archive: a zero block, or no input, where a header block belongs.
 */
async function readGroup(reader: ByteReader, pending: Pending, maxMeta: number): Promise<MemberInfo | undefined> {
  const p = new HeaderGroupParser({ offset: reader.position, maxMetaSize: maxMeta });
  for (let need = p.next(); need; need = p.next()) {
    const offset = reader.position;
    let piece: Buffer;
    if (need.kind === 'header') {
      piece = await reader.readUpTo(BLOCK);
      if (piece.length === 0) return undefined; // no end-of-archive marker: accepted, the tail is what we have
      if (piece.length < BLOCK) throw new FerryError('FERRY_ERR_TAR_TRUNCATED', `tar ended inside a header block at byte ${offset}`);
      if (isZeroBlock(piece)) {
        pending.keep(Buffer.from(piece), offset);
        return undefined;
      }
      piece = Buffer.from(piece);
    } else {
      piece = await reader.readExactly(need.bytes, 'tar');
    }
    p.push(piece);
    pending.keep(piece, offset);
  }
  return p.result();
}

async function splitFrom(reader: ByteReader, whole: { hash: ReturnType<typeof createHash>; size: number }, handler: SplitHandler, limits: SplitLimits): Promise<SkeletonTrailer> {
  const maxMeta = limits.maxMetaSize ?? 1024 * 1024;
  const maxTail = limits.maxTailSize ?? 16 * 1024 * 1024;
  const pending = new Pending(maxMeta + 64 * BLOCK);
  let count = 0;
  for (;;) {
    const member = await readGroup(reader, pending, maxMeta);
    if (!member) break;
    const { path, size } = member;
    const entry: SkeletonEntry = { raw: pending.take(), ...member };
    if (size > 0) {
      const start = reader.position;
      const bodyHash = handler.hashesBodies ? undefined : createHash('sha256');
      const body = reader.stream(size, 'tar');
      const given = await handler.onBody(bodyHash ? hashBody(body, bodyHash) : body, size, path);
      if (reader.position !== start + size) throw new FerryError('FERRY_ERR_INTERNAL', `split handler left the body of ${path} unread`);
      if (bodyHash) entry.digest = hashToDigest(bodyHash);
      else if (given) entry.digest = given;
      else throw new FerryError('FERRY_ERR_INTERNAL', 'split handler promised body digests but returned none');
      const padding = await readPadding(reader, paddingAfter(size));
      if (padding.length > 0) pending.keep(padding, reader.position);
    }
    count++;
    await handler.onEntry(entry);
  }
  const tail = [pending.take()];
  let tailBytes = 0;
  for await (const rest of reader.rest()) {
    tailBytes += rest.length;
    if (tailBytes > maxTail) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `tar has more than ${maxTail} bytes after its end-of-archive block`);
    tail.push(Buffer.from(rest));
  }
  return { tail: Buffer.concat(tail), diffId: hashToDigest(whole.hash), size: whole.size, count };
}

/** Opens a content body by digest for reassembly. */
export type ContentOpener = (digest: Digest, size: number) => AsyncIterable<Uint8Array>;

/**
 * Reassembles the exact layer tar from skeleton entries and contents. The caller verifies the
 * result against the layer's diff_id (for example with HashingStream).
 */
export async function* reassembleLayer(entries: AsyncIterable<SkeletonEntry & { preloaded?: Promise<Uint8Array> | undefined }>, trailer: () => SkeletonTrailer, open: ContentOpener): AsyncGenerator<Uint8Array> {
  for await (const e of entries) {
    if (e.raw.length > 0) yield e.raw;
    if (e.size > 0) {
      if (e.digest === undefined) throw new FerryError('FERRY_ERR_SKELETON_INVALID', `skeleton entry ${e.path} has a body but no digest`);
      let got = 0;
      // a body read ahead (prefetchBodies) arrives whole; others stream
      const body = e.preloaded ? [await e.preloaded] : open(e.digest, e.size);
      for await (const chunk of body) {
        got += chunk.byteLength;
        yield chunk;
      }
      if (got !== e.size) throw new FerryError('FERRY_ERR_SIZE_MISMATCH', `content ${e.digest} is ${got} bytes, skeleton says ${e.size}`);
    }
  }
  const t = trailer();
  if (t.tail.length > 0) yield t.tail;
}
