/** Chunk sources: repository base URLs (server, relay, CDN) and local directories (a USB stick). */
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FerryError, digestHex, sha256, type Digest } from '@ferry/core';
import { readBounded } from './files.js';

/** Where chunks can come from. */
export type Source =
  /** A repository over HTTP: `<base>chunks/<hex>` (docs/protocol.md section 2). */
  | { kind: 'http'; name: string; base: URL }
  /** A directory holding `chunks/<hex>` (the repository layout), e.g. a mounted USB stick. */
  | { kind: 'file'; name: string; dir: string };

/** Parses a source: an http(s) base URL, a `file:` URL or an absolute directory path. */
export function parseSource(spec: string): Source {
  if (/^https?:\/\//i.test(spec)) {
    let base: URL;
    try {
      base = new URL(spec);
    } catch {
      throw new FerryError('FERRY_ERR_USAGE', `source ${JSON.stringify(spec)} is not a valid URL`);
    }
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    return { kind: 'http', name: base.href, base };
  }
  const dir = spec.startsWith('file:') ? fileURLToPath(spec) : spec;
  if (!isAbsolute(dir)) throw new FerryError('FERRY_ERR_USAGE', `source ${JSON.stringify(spec)} is neither an http(s) URL nor an absolute directory`);
  return { kind: 'file', name: dir, dir };
}

/** URL of a chunk in an HTTP repository. */
export function chunkUrl(base: URL, digest: Digest): URL {
  return new URL(`chunks/${digestHex(digest)}`, base);
}

/**
 * Reads a chunk from a directory source: a regular file read at most to size + 1 bytes, checked
 * against its sha256. FERRY_ERR_CHUNK_MISSING when absent, FERRY_ERR_CHUNK_INVALID when wrong.
 */
export async function readDirChunk(dir: string, digest: Digest, size: number, signal?: AbortSignal): Promise<Buffer> {
  const path = join(dir, 'chunks', digestHex(digest));
  const r = await readBounded(path, size, signal);
  if (!r.ok) {
    const code = r.missing ? 'FERRY_ERR_CHUNK_MISSING' : 'FERRY_ERR_CHUNK_INVALID';
    throw new FerryError(code, `${path}: ${r.reason}`, { details: { digest, path } });
  }
  if (sha256(r.bytes) !== digest) throw new FerryError('FERRY_ERR_CHUNK_INVALID', `${path} does not match its digest`, { details: { digest, path, digestMismatch: true } });
  return r.bytes;
}
