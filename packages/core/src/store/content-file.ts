/**
 * Reading one stored content whole with plain system calls: its zstd frame into a buffer the
 * caller reuses from one content to the next, then one decode straight into the caller's buffer.
 * The applier's delta references (apply-delta.ts) and the differ's patch workers read contents
 * this way; no stream pieces are left for the collector.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { FerryError } from '../errors.js';
import { sha256, type Digest } from '../util/digest.js';
import { zstdDecompressInto } from '../util/zstd.js';
import { contentReadError } from './content-reader.js';
import type { Store } from './store.js';

/** The largest file a stored frame of `size` content bytes can be: anything larger is not one. */
export function contentFrameMax(size: number): number {
  return size + (size >> 7) + 1024;
}

/** An opened content file (see openContentFile), or why the file at its path cannot be one. */
export type ContentFile = { fd: number; fileSize: number } | { fault: string };

/**
 * Opens the file holding a stored frame of `size` content bytes, bounded before anything is read:
 * O_NONBLOCK, so a FIFO in its place opens at once instead of waiting for a writer; then it must
 * be a regular file no larger than contentFrameMax(size). A file that is not one is closed again
 * and returned as a `fault` for the caller's own error; system errors of the open are thrown.
 * The caller closes `fd`.
 */
export function openContentFile(path: string, size: number): ContentFile {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return closed(fd, 'not a regular file');
    if (st.size > contentFrameMax(size)) return closed(fd, `${st.size} bytes, more than a frame of ${size} bytes can be`);
    return { fd, fileSize: st.size };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

function closed(fd: number, fault: string): { fault: string } {
  closeSync(fd);
  return { fault };
}

/**
 * Reads stored content `digest` into `into` (exactly its size): its frame goes to `frame(n)`, a
 * buffer of `n` bytes the caller provides, asked for only once the file is known to be a regular
 * file no larger than a frame of that size can be. Missing: FERRY_ERR_OBJECT_MISSING; not a
 * regular file, too large, damaged, another size or (with `verify`) another digest:
 * FERRY_ERR_OBJECT_CORRUPT; other system errors FERRY_ERR_IO. `path` reads the frame from another
 * file than the content's own (a new body the applier has not named yet, still in its temp file).
 */
export function readContentInto(store: Store, digest: Digest, into: Uint8Array, frame: (n: number) => Buffer, verify = true, path = store.contentPath(digest)): void {
  const corrupt = (why: string): FerryError => contentReadError(digest, path, 'corrupt', new Error(why));
  let file: ContentFile;
  try {
    file = openContentFile(path, into.length);
  } catch (err) {
    throw contentReadError(digest, path, 'io', err);
  }
  if ('fault' in file) throw corrupt(file.fault);
  const { fd } = file;
  let packed: Buffer;
  try {
    packed = frame(file.fileSize);
    for (let at = 0; at < packed.length; ) {
      const n = readSync(fd, packed, at, packed.length - at, at);
      if (n === 0) throw corrupt('shorter than its file size');
      at += n;
    }
  } catch (err) {
    throw err instanceof FerryError ? err : contentReadError(digest, path, 'io', err);
  } finally {
    closeSync(fd);
  }
  let n: number;
  try {
    n = zstdDecompressInto(packed, into);
  } catch (err) {
    throw contentReadError(digest, path, 'corrupt', err);
  }
  if (n !== into.length) throw corrupt(`it decodes to ${n} bytes, not ${into.length}`);
  if (verify && sha256(into) !== digest) throw contentReadError(digest, path, 'digest', undefined);
}
