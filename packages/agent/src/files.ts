/**
 * Bounded reads of chunk files that input names (a USB stick, a copied cache): regular files only
 * (a FIFO, a device or /dev/zero behind a symlink is refused after fstat, before any read; O_NONBLOCK
 * keeps the open of a FIFO from hanging), and never more than the expected size plus one byte
 * (DESIGN.md section 8).
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { FerryError, toFerryError } from '@ferry/core';

/** Result of {@link readBounded}: the bytes, or why they are refused. */
export type BoundedRead = { ok: true; bytes: Buffer } | { ok: false; missing: boolean; reason: string };

/**
 * Reads a regular file expected to be `size` bytes. A missing file, a special file, or a file of
 * another size is reported (not thrown); I/O failures throw FERRY_ERR_IO.
 */
export async function readBounded(path: string, size: number, signal?: AbortSignal): Promise<BoundedRead> {
  signal?.throwIfAborted();
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, missing: true, reason: 'no such file' };
    throw toFerryError(err, `opening ${path}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { ok: false, missing: false, reason: 'not a regular file' };
    const buf = Buffer.alloc(size + 1);
    let got = 0;
    while (got < buf.length) {
      signal?.throwIfAborted();
      const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got !== size) return { ok: false, missing: false, reason: got > size ? `longer than ${size} bytes` : `${got} bytes, not ${size}` };
    return { ok: true, bytes: buf.subarray(0, size) };
  } catch (err) {
    if (err instanceof FerryError || (err as Error).name === 'AbortError') throw err;
    throw toFerryError(err, `reading ${path}`);
  } finally {
    await fh.close();
  }
}
