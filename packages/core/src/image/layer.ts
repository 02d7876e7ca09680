/** Opening a layer blob as its uncompressed tar stream, verifying the blob while it flows. */
import { Readable, pipeline } from 'node:stream';
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

/**
 * The uncompressed stream of `blob` (already hash-checked as it flows). zstd decodes through an
 * async generator read by Readable.from, not a Duplex.from stage: inside a pipeline, a Duplex.from
 * generator waiting for input never learns that an earlier stage failed (a blob digest mismatch
 * found at the end of a file), and the read hung forever.
 */
function ignore(): void {}

function decompress(blob: Readable, c: Compression): Readable {
  if (c === 'gzip') return (pipeline as unknown as (...a: unknown[]) => Readable)(blob, createGunzip().on('error', ignore), () => {});
  if (c === 'zstd') return Readable.from(zstdDecode(blob));
  return blob;
}

/**
 * Streams the uncompressed layer. The blob digest and size (when declared) and, if
 * `verifyDiffId`, the diff_id are checked as the bytes flow; a mismatch fails the stream at its
 * end with FERRY_ERR_DIGEST_MISMATCH / FERRY_ERR_SIZE_MISMATCH, a damaged gzip or zstd stream with
 * FERRY_ERR_IMAGE_LAYER_CORRUPT. Callers must not commit anything before the stream ends cleanly.
 */
export async function* openLayerStream(raw: Readable, blob: LayerBlob, verifyDiffId = true, signal?: AbortSignal): AsyncGenerator<Buffer> {
  // each stage also keeps a no-op 'error' listener: a stage can still fail after its pipeline has
  // settled and removed its own listeners (seen once under load: a blob over its declared size
  // failed the hashing stage after the import had already rejected with that very error), and an
  // 'error' with no listener is an uncaught exception that kills the process. Failures still
  // reach the caller through the pipelines and the final stream.
  const chain = (from: Readable, stage: NodeJS.ReadWriteStream): Readable => (pipeline as unknown as (...a: unknown[]) => Readable)(from, stage.on('error', ignore), () => {});
  // an uncompressed blob whose digest is its diff_id is hashed once, by the caller's diff_id check;
  // its declared size is still checked here, as a compressed blob's is
  const blobIsDiffId = blob.compression === 'none' && blob.digest === blob.diffId && !verifyDiffId;
  // the source too: a pipeline that failed destroys every stream in it with the error, and when
  // the other pipeline over `raw` has already settled, nothing else listens on it (CI, store.test.ts:
  // a gzip blob over its declared size, uncaught once the previous listener covered only the stages)
  raw.on('error', ignore);
  const checked = blob.digest !== undefined || blob.size !== undefined ? chain(raw, new HashingStream({ digest: blobIsDiffId ? undefined : blob.digest, size: blob.size, what: `${blob.what} blob`, countOnly: blobIsDiffId })) : raw;
  const tar = decompress(checked, blob.compression);
  const out = verifyDiffId ? chain(tar, new HashingStream({ digest: blob.diffId, what: `${blob.what} (uncompressed)` })) : tar;
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
    // every stage, not only the last: a Readable.from stage does not pass destruction upstream
    for (const s of new Set([out, tar, checked, raw])) s.destroy();
  }
}
