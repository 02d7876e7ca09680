/**
 * Reading files that input names (DESIGN.md section 8, STYLE.md "I/O"): headers, chunks, `.ferry`
 * files, keys and trust files must be regular files, and are read at most to their expected size
 * plus one byte, the bound checked inside the loop that reads. A chunk symlinked to /dev/zero, a
 * FIFO named as a header (opening it would wait for a writer forever) or a file far larger than
 * its cap is refused with the caller's code, in bounded time and memory.
 */
import { constants, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { FerryError, toFerryError, type ErrorCode } from '../errors.js';

/** How to report a file that is not what the caller reads. */
export interface RegularFileOptions {
  /** What the file is, for messages ("chunk 3", "trust file"). */
  what: string;
  /** Code for a path that is not a regular file (FIFO, device, directory, socket). */
  notRegular: ErrorCode;
  /** Code for a path that does not exist (default: FERRY_ERR_IO, as any other errno). */
  missing?: ErrorCode | undefined;
  /** Facts added to the errors raised here (a chunk's index and digest, ...). */
  details?: Record<string, unknown> | undefined;
}

/** Options for {@link readRegularFile}. */
export interface BoundedReadOptions extends RegularFileOptions {
  /** The most bytes the file may hold; reading stops at this plus one. */
  maxBytes: number;
  /** Code for a file over `maxBytes` (default FERRY_ERR_LIMIT_EXCEEDED). */
  tooBig?: ErrorCode | undefined;
  signal?: AbortSignal | undefined;
}

/** An opened regular file and its size when it was opened. */
export interface OpenedFile {
  fh: FileHandle;
  size: number;
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Opens `path` for reading and checks, on the opened descriptor, that it is a regular file
 * (a symlink to one is fine). O_NONBLOCK makes opening a FIFO return at once instead of waiting
 * for a writer; it has no effect on regular files. The caller closes `fh`.
 */
export async function openRegularFile(path: string, opts: RegularFileOptions): Promise<OpenedFile> {
  const details = { path, ...opts.details };
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT' && opts.missing) throw new FerryError(opts.missing, `${opts.what} ${path} does not exist`, { cause: err, details });
    // a UNIX socket cannot be opened at all (ENXIO): it is as much "not a file" as a FIFO
    if (errno === 'ENXIO') throw new FerryError(opts.notRegular, `${opts.what} ${path} is not a regular file`, { cause: err, details });
    throw toFerryError(err, `opening ${opts.what} ${path}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new FerryError(opts.notRegular, `${opts.what} ${path} is ${kindOf(st)}, not a regular file`, { details });
    return { fh, size: st.size };
  } catch (err) {
    await fh.close();
    throw toFerryError(err, `opening ${opts.what} ${path}`);
  }
}

/**
 * Reads an opened file from offset 0, at most `maxBytes + 1` bytes whatever its size claims (it
 * may grow while read): more than `maxBytes` is refused as soon as the extra byte arrives.
 */
async function readAtMost(file: OpenedFile, path: string, opts: BoundedReadOptions): Promise<Buffer> {
  const tooBig = (): FerryError => new FerryError(opts.tooBig ?? 'FERRY_ERR_LIMIT_EXCEEDED', `${opts.what} ${path} is over ${opts.maxBytes} bytes`, { details: { path, ...opts.details } });
  if (file.size > opts.maxBytes) throw tooBig();
  let buf = Buffer.allocUnsafe(file.size + 1);
  let n = 0;
  for (;;) {
    opts.signal?.throwIfAborted();
    if (n === buf.length) {
      if (n > opts.maxBytes) throw tooBig();
      const grown = Buffer.allocUnsafe(Math.min(buf.length * 2, opts.maxBytes + 1));
      buf.copy(grown, 0, 0, n);
      buf = grown;
    }
    const { bytesRead } = await file.fh.read(buf, n, buf.length - n, n);
    if (bytesRead === 0) break;
    n += bytesRead;
  }
  if (n > opts.maxBytes) throw tooBig();
  return buf.subarray(0, n);
}

/**
 * Reads a whole regular file of at most `maxBytes` (DESIGN.md section 8). Not a regular file:
 * `notRegular`; over the cap: `tooBig`; missing: `missing`; any other errno: FERRY_ERR_IO.
 */
export async function readRegularFile(path: string, opts: BoundedReadOptions): Promise<Buffer> {
  const file = await openRegularFile(path, opts);
  try {
    return await readAtMost(file, path, opts);
  } catch (err) {
    throw toFerryError(err, `reading ${opts.what} ${path}`);
  } finally {
    await file.fh.close();
  }
}
