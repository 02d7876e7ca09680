/**
 * Bundle containers (docs/format.md section 6): the same header and chunks either as a repository
 * directory (`headers/<id>`, `chunks/<sha256>`, shared by every bundle, servable by any static
 * HTTP server) or as one `.ferry` file for removable media:
 *
 *   "FERRY\0B1" (8 bytes) | header length (u32 BE) | header envelope | payload (header.payloadSize)
 */

import { readdir, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, toFerryError } from '../errors.js';
import { openRegularFile, readRegularFile, type RegularFileOptions } from '../util/bounded-read.js';
import { digestHex, sha256, type Digest } from '../util/digest.js';
import { HEADER_MAX_BYTES, type BundleHeader } from './header.js';

export const FERRY_FILE_MAGIC = Buffer.from('FERRY\0B1', 'latin1');
const PREFIX = FERRY_FILE_MAGIC.length + 4;

/** Reads chunk bytes by index; the applier verifies every chunk against the header. */
export interface ChunkSource {
  readChunk(index: number, digest: Digest, size: number, signal?: AbortSignal): Promise<Uint8Array>;
}

/** A bundle ready to apply: header envelope bytes and where its chunks are. */
export interface BundleSource {
  where: string;
  headerBytes: Uint8Array;
  /** Needs the decoded header to know chunk layout. */
  chunks(header: BundleHeader): ChunkSource;
}

/** Size of chunk `i` of a payload. */
export function chunkLength(h: Pick<BundleHeader, 'payloadSize' | 'chunkSize'>, i: number): number {
  return Math.min(h.chunkSize, h.payloadSize - i * h.chunkSize);
}

/** Verifies chunk bytes: FERRY_ERR_CHUNK_INVALID naming the chunk. */
export function verifyChunk(bytes: Uint8Array, index: number, digest: Digest, size: number): void {
  if (bytes.length !== size) throw new FerryError('FERRY_ERR_CHUNK_INVALID', `chunk ${index} (${digest}) is ${bytes.length} bytes, the header says ${size}`, { details: { index, digest } });
  if (sha256(bytes) !== digest) throw new FerryError('FERRY_ERR_CHUNK_INVALID', `chunk ${index} does not match its digest ${digest}`, { details: { index, digest } });
}

/** Reads `n` bytes at `pos` of an opened bundle file (fewer at its end: the caller checks). */
async function readAt(fh: FileHandle, pos: number, n: number): Promise<Buffer> {
  const buf = Buffer.alloc(n);
  const { bytesRead } = await fh.read(buf, 0, n, pos);
  return buf.subarray(0, bytesRead);
}

/** A `.ferry` file or a chunk must be a regular file (DESIGN.md section 8). */
function ferryFileOptions(path: string): RegularFileOptions {
  return { what: 'bundle file', notRegular: 'FERRY_ERR_BUNDLE_INVALID', missing: 'FERRY_ERR_BUNDLE_INVALID', details: { path } };
}

/** Checks the magic and the header length of a `.ferry` file's prefix; returns the header length. */
function parsePrefix(path: string, head: Buffer, fileSize: number): number {
  if (head.length < PREFIX || !head.subarray(0, 8).equals(FERRY_FILE_MAGIC)) {
    // a file cut inside the magic or inside the length field after it is a truncated bundle
    const seen = Math.min(head.length, FERRY_FILE_MAGIC.length);
    if (head.length > 0 && head.length < PREFIX && FERRY_FILE_MAGIC.subarray(0, seen).equals(head.subarray(0, seen))) {
      throw new FerryError('FERRY_ERR_BUNDLE_TRUNCATED', `${path} ends inside its ${PREFIX}-byte prefix (${head.length} bytes)`);
    }
    throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `${path} is not a .ferry bundle file`);
  }
  const hlen = head.readUInt32BE(8);
  if (hlen > HEADER_MAX_BYTES) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `${path}: header is ${hlen} bytes, over the ${HEADER_MAX_BYTES} cap`);
  if (PREFIX + hlen > fileSize) throw new FerryError('FERRY_ERR_BUNDLE_TRUNCATED', `${path} ends inside its header`);
  return hlen;
}

/**
 * Opens a `.ferry` file: a regular file (checked on the opened descriptor), magic, header length
 * cap and total size are checked before more is read; every read is bounded by what the prefix
 * and header declare.
 */
export async function openFerryFile(path: string): Promise<BundleSource> {
  const { fh, size: fileSize } = await openRegularFile(path, ferryFileOptions(path));
  try {
    const hlen = parsePrefix(path, await readAt(fh, 0, PREFIX), fileSize);
    const headerBytes = await readAt(fh, PREFIX, hlen);
    if (headerBytes.length < hlen) throw new FerryError('FERRY_ERR_BUNDLE_TRUNCATED', `${path} ends inside its header`);
    const payloadStart = PREFIX + hlen;
    return {
      where: path,
      headerBytes,
      chunks(h) {
        if (payloadStart + h.payloadSize > fileSize) throw new FerryError('FERRY_ERR_BUNDLE_TRUNCATED', `${path} is ${fileSize} bytes; its header declares ${payloadStart + h.payloadSize}`);
        if (payloadStart + h.payloadSize < fileSize) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `${path} has ${fileSize - payloadStart - h.payloadSize} bytes after its payload`);
        return {
          async readChunk(i, _digest, size) {
            // opened again per chunk (the source has no close): the path is checked each time
            const f = await openRegularFile(path, ferryFileOptions(path));
            try {
              return await readAt(f.fh, payloadStart + i * h.chunkSize, size);
            } finally {
              await f.fh.close();
            }
          },
        };
      },
    };
  } finally {
    await fh.close();
  }
}

/**
 * A chunk source over a repository directory's `chunks/`. Missing: FERRY_ERR_CHUNK_MISSING; not
 * a regular file, or larger than the header says: FERRY_ERR_CHUNK_INVALID, read no further than
 * one byte past the chunk's size.
 */
export function dirChunkSource(dir: string): ChunkSource {
  return {
    async readChunk(i, digest, size, signal) {
      return readRegularFile(join(dir, 'chunks', digestHex(digest)), {
        what: `chunk ${i} (${digest}) in ${dir}:`,
        notRegular: 'FERRY_ERR_CHUNK_INVALID',
        missing: 'FERRY_ERR_CHUNK_MISSING',
        tooBig: 'FERRY_ERR_CHUNK_INVALID',
        maxBytes: size,
        details: { index: i, digest },
        signal,
      });
    },
  };
}

async function headerNames(dir: string): Promise<string[]> {
  try {
    return (await readdir(join(dir, 'headers'))).filter((n) => /^[0-9a-f]{64}$/.test(n));
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT' || errno === 'ENOTDIR') throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `${dir} is not a bundle repository (no headers/ directory)`, { cause: err });
    throw toFerryError(err, `listing ${dir}/headers`);
  }
}

/**
 * Opens a bundle in a repository directory. `id` picks a header (a bundle id or its hex prefix);
 * without it the directory must hold exactly one header.
 */
export async function openBundleDir(dir: string, id?: string): Promise<BundleSource> {
  const names = await headerNames(dir);
  const pick = id === undefined ? names : names.filter((n) => n.startsWith(id.replace(/^sha256:/, '')));
  if (pick.length !== 1) {
    throw new FerryError(pick.length === 0 ? 'FERRY_ERR_BUNDLE_INVALID' : 'FERRY_ERR_USAGE', pick.length === 0 ? `${dir} has no bundle header${id ? ` ${id}` : ''}` : `${dir} holds ${pick.length} bundles; name one with --bundle ID (${pick.map((n) => n.slice(0, 12)).join(', ')})`);
  }
  const file = join(dir, 'headers', pick[0]!);
  const headerBytes = await readRegularFile(file, { what: 'bundle header', notRegular: 'FERRY_ERR_BUNDLE_INVALID', maxBytes: HEADER_MAX_BYTES });
  if (sha256(headerBytes) !== `sha256:${pick[0]}`) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `${file} does not match its name (tampered header)`);
  return { where: dir, headerBytes, chunks: () => dirChunkSource(dir) };
}

/** Opens a `.ferry` file or a repository directory. */
export async function openBundle(path: string, id?: string): Promise<BundleSource> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `${path} does not exist`, { cause: err });
    throw toFerryError(err, `opening bundle ${path}`);
  }
  return st.isDirectory() ? openBundleDir(path, id) : openFerryFile(path);
}

/**
 * Streams the verified payload bytes [start, end): each chunk is read, checked against the header
 * (size and sha256) before any of its bytes are yielded, and only the needed slice is passed on.
 */
export async function* payloadRange(h: BundleHeader, source: ChunkSource, start: number, end: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  if (start >= end) return;
  const first = Math.floor(start / h.chunkSize);
  const last = Math.floor((end - 1) / h.chunkSize);
  for (let i = first; i <= last; i++) {
    signal?.throwIfAborted();
    const digest = h.chunks[i]!;
    const size = chunkLength(h, i);
    const bytes = await source.readChunk(i, digest, size, signal);
    verifyChunk(bytes, i, digest, size);
    const from = Math.max(start - i * h.chunkSize, 0);
    const to = Math.min(end - i * h.chunkSize, size);
    yield bytes.subarray(from, to);
  }
}

