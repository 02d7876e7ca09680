/**
 * Reading one stored content whole with plain system calls: its zstd frame into a buffer the
 * caller reuses from one content to the next, then one decode straight into the caller's buffer.
 * The applier's delta references (apply-delta.ts) and the differ's patch workers read contents
 * this way; no stream pieces are left for the collector.
 */
import { closeSync, readSync } from 'node:fs';
import { FerryError } from '../errors.js';
import { sha256, type Digest } from '../util/digest.js';
import { zstdDecompressInto } from '../util/zstd.js';
import { contentReadError } from './content-reader.js';
import type { Store } from './store.js';
import { openContentFile, type ContentFile } from './content-open.js';

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
