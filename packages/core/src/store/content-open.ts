/**
 * Opening a stored content's file with its size bounded before anything is read. Its own module,
 * with nothing but node:fs, so the content worker thread (content-worker.ts) loads it alone.
 */
import { closeSync, constants, fstatSync, openSync } from 'node:fs';

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
