/**
 * Whole-body reads of stored contents for the patch workers, without per-piece garbage.
 *
 * `Store.openContent` streams a body in fresh 128 KiB pieces read through a fresh read-stream
 * chunk each; in a worker that sketches thousands of bodies, that garbage waited for the collector
 * in the thread's malloc arena, and glibc kept the arena's high-water mark resident for the rest of
 * the bundle (~35-55 MB per worker in `/proc/PID/smaps`). Here the compressed file is read into a
 * buffer reused per slot and decoded in one call straight into the caller's buffer.
 */
import { open } from 'node:fs/promises';
import { FerryError, sha256, zstdCompressBound, zstdDecompressInto, type Digest, type Store } from '@ferry/core';

/** A body named by digest, with its size. */
export interface BodyRef {
  digest: Digest;
  size: number;
}

/** Largest compressed buffer a slot keeps between reads (larger ones are dropped with the read). */
const PACKED_KEEP = 1024 * 1024;
/** Compressed bytes, one reused buffer per slot (reads in one slot never overlap). */
const packed: Buffer[] = [Buffer.alloc(0), Buffer.alloc(0)];

/** Reads the content file of `body` whole, bounded by the largest frame its size allows. */
async function readPacked(store: Store, body: BodyRef, slot: 0 | 1): Promise<Buffer> {
  const path = store.contentPath(body.digest);
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FerryError('FERRY_ERR_OBJECT_MISSING', `content ${body.digest} is missing from the store`, { details: { digest: body.digest } });
    throw err;
  }
  try {
    const st = await fh.stat();
    // a frame of `size` bytes takes at most compressBound plus its header and checksum
    const max = zstdCompressBound(body.size) + 64;
    if (!st.isFile() || st.size > max) throw new FerryError('FERRY_ERR_OBJECT_CORRUPT', `content ${body.digest} is not a regular file of at most ${max} bytes`, { details: { digest: body.digest, path } });
    let buf = packed[slot]!;
    if (buf.length < st.size) {
      buf = Buffer.allocUnsafeSlow(st.size);
      if (st.size <= PACKED_KEEP) packed[slot] = buf;
    }
    let got = 0;
    while (got < st.size) {
      const { bytesRead } = await fh.read(buf, got, st.size - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}

/**
 * Decodes the stored body into `out` (exactly `body.size` bytes). With `verify` the body is
 * re-hashed. Missing: FERRY_ERR_OBJECT_MISSING; corrupt, another size or another digest:
 * FERRY_ERR_OBJECT_CORRUPT.
 */
export async function readBodyInto(store: Store, body: BodyRef, out: Uint8Array, slot: 0 | 1, verify = true): Promise<void> {
  const z = await readPacked(store, body, slot);
  let n: number;
  try {
    n = zstdDecompressInto(z, out);
  } catch (err) {
    throw new FerryError('FERRY_ERR_OBJECT_CORRUPT', `content ${body.digest} is corrupt (${(err as Error).message})`, { cause: err, details: { digest: body.digest } });
  }
  if (n !== body.size) throw new FerryError('FERRY_ERR_OBJECT_CORRUPT', `content ${body.digest} decodes to ${n} bytes, not ${body.size}`, { details: { digest: body.digest } });
  if (verify && sha256(out) !== body.digest) {
    throw new FerryError('FERRY_ERR_OBJECT_CORRUPT', `content ${body.digest} does not match its digest`, { details: { digest: body.digest } });
  }
}
