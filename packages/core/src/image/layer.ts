/** Opening a layer blob as its uncompressed tar stream, verifying the blob while it flows. */
import { Duplex, pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { FerryError } from '../errors.js';
import { HashingStream, type Digest } from '../util/digest.js';
import { zstdDecode } from '../util/zstd.js';
import type { Compression } from './media.js';

/** What is known about a layer blob before reading it. */
export interface LayerBlob {
  /** Human name for messages. */
  what: string;
  compression: Compression;
  /** Digest and size of the blob as stored, when the source declares them. */
  digest?: Digest | undefined;
  size?: number | undefined;
  /** The layer's diff_id (sha256 of the uncompressed tar), verified when `verifyDiffId`. */
  diffId: Digest;
}

function decompressor(c: Compression): Duplex[] {
  if (c === 'gzip') return [createGunzip()];
  if (c === 'zstd') return [Duplex.from(async function* (src: AsyncIterable<Uint8Array>) { yield* zstdDecode(src); })];
  return [];
}

/**
 * Streams the uncompressed layer. The blob digest and size (when declared) and, if
 * `verifyDiffId`, the diff_id are checked as the bytes flow; a mismatch fails the stream at its
 * end with FERRY_ERR_DIGEST_MISMATCH / FERRY_ERR_SIZE_MISMATCH, a damaged gzip or zstd stream with
 * FERRY_ERR_IMAGE_LAYER_CORRUPT. Callers must not commit anything before the stream ends cleanly.
 */
export async function* openLayerStream(raw: Readable, blob: LayerBlob, verifyDiffId = true, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const stages: NodeJS.ReadWriteStream[] = [];
  // an uncompressed blob whose digest is its diff_id is hashed once, by the caller's diff_id check;
  // its declared size is still checked here, as a compressed blob's is
  const blobIsDiffId = blob.compression === 'none' && blob.digest === blob.diffId && !verifyDiffId;
  if (blob.digest !== undefined || blob.size !== undefined) stages.push(new HashingStream({ digest: blobIsDiffId ? undefined : blob.digest, size: blob.size, what: `${blob.what} blob`, countOnly: blobIsDiffId }));
  stages.push(...decompressor(blob.compression));
  if (verifyDiffId) stages.push(new HashingStream({ digest: blob.diffId, what: `${blob.what} (uncompressed)` }));
  const streams = [raw, ...stages] as unknown as [Readable, ...NodeJS.ReadWriteStream[]];
  const out: Readable = stages.length === 0 ? raw : (pipeline as unknown as (...a: unknown[]) => Readable)(...streams, () => {});
  const onAbort = (): void => void out.destroy(new FerryError('FERRY_ERR_ABORTED', 'aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of out) yield chunk as Buffer;
  } catch (err) {
    // a damaged zstd layer is a corrupt layer, as a damaged gzip one is (ERROR_CODES)
    if (err instanceof FerryError && err.code === 'FERRY_ERR_ZSTD_CORRUPT') {
      throw new FerryError('FERRY_ERR_IMAGE_LAYER_CORRUPT', `${blob.what}: zstd stream is damaged or truncated (${err.message})`, { cause: err });
    }
    if (err instanceof FerryError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code?.startsWith('Z_') || e.code === 'ERR_STREAM_PREMATURE_CLOSE' || /unexpected end|incorrect header|invalid/.test(e.message)) {
      throw new FerryError('FERRY_ERR_IMAGE_LAYER_CORRUPT', `${blob.what}: ${blob.compression} stream is damaged or truncated (${e.message})`, { cause: err });
    }
    throw new FerryError('FERRY_ERR_IO', `${blob.what}: ${e.message}`, { cause: err });
  } finally {
    signal?.removeEventListener('abort', onAbort);
    out.destroy();
  }
}
