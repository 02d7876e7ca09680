import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { access, mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { toFerryError } from '../errors.js';

/** A unique temp name beside `finalPath` (same directory, so rename is atomic). */
export function tempPathFor(finalPath: string): string {
  return join(dirname(finalPath), `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/** fsync a directory so a rename inside it survives power loss (DESIGN.md section 8). */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } finally {
    await fh?.close();
  }
}

/** fsync a file's data by path (any descriptor of the file syncs its inode). */
export async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Options for atomic writes. */
export interface AtomicWriteOptions {
  /** fsync the parent directory after the rename (default true). */
  syncDir?: boolean;
  /** Create the parent directory first (default true; skip it when the caller knows it exists). */
  mkdir?: boolean;
  signal?: AbortSignal;
}

/**
 * Durable write (DESIGN.md section 8): temp file in the same directory, fsync, rename, fsync dir.
 * Either the old file or the whole new file is visible at `path`, never a part.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, options: AtomicWriteOptions = {}): Promise<void> {
  if (options.mkdir !== false) await mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    if (options.syncDir !== false) await fsyncDir(dirname(path));
  } catch (err) {
    await rm(tmp, { force: true });
    throw toFerryError(err, `writing ${path}`);
  }
}

/**
 * Streams `source` into `path` durably. `check` runs after the bytes are on disk and before the
 * rename: if it throws, the temp file is removed and nothing appears at `path`.
 */
export async function writeStreamAtomic(
  path: string,
  source: Readable | AsyncIterable<Uint8Array>,
  options: AtomicWriteOptions & { check?: () => void | Promise<void>; transforms?: NodeJS.ReadWriteStream[] } = {},
): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    const out = createWriteStream(tmp, { flags: 'wx' });
    await pipeline([source, ...(options.transforms ?? []), out] as unknown as [Readable, NodeJS.WritableStream], { signal: options.signal });
    await fsyncFile(tmp);
    await options.check?.();
    await rename(tmp, path);
    if (options.syncDir !== false) await fsyncDir(dirname(path));
  } catch (err) {
    await rm(tmp, { force: true });
    throw toFerryError(err, `writing ${path}`);
  }
}

/**
 * True when a path exists, false when it (or a directory above it) does not. Any other failure
 * (EACCES, EIO, ...) is FERRY_ERR_IO: a file that cannot be checked is not a missing one.
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT' || errno === 'ENOTDIR') return false;
    throw toFerryError(err, `checking ${path}`);
  }
}

let syncfsWorks: boolean | undefined;

/**
 * Flushes every file of the file system holding `dir` to disk with one syncfs(2), through
 * `sync -f` (coreutils 8.24+, busybox 1.30+; Node has no binding): after it, data written to any
 * file there before the call is durable, as if each had been fsynced. Thousands of small files
 * (an apply's new contents) cost one journal commit instead of one each. Returns false, and
 * remembers it, when the tool is missing or fails: the caller then fsyncs file by file.
 */
export function syncFileSystem(dir: string): boolean {
  if (syncfsWorks === false) return false;
  const r = spawnSync('sync', ['-f', dir], { stdio: 'ignore', timeout: 10 * 60_000 });
  syncfsWorks = r.status === 0;
  return syncfsWorks;
}

/** Bytes a {@link readPieces} read asks for at most. */
export const READ_PIECE = 64 * 1024;

/**
 * A file's bytes as pieces of at most READ_PIECE, all in one buffer that each read overwrites: a
 * piece is valid until the next is asked for. For a consumer that is done with a piece when it
 * asks for the next (a zstd decoder): a read stream's fresh buffer per read was garbage the
 * collector let pile up in the malloc heap (DESIGN.md section 6, bounded memory). Opening errors
 * are thrown as the system gives them (ENOENT for a missing file); the file is closed on every
 * path.
 */
export async function* readPieces(path: string): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(READ_PIECE);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}
