/**
 * Worker thread that compresses and writes contents, so an import hashes and parses on the main
 * thread while other cores compress and write. Durability is batched (DESIGN.md section 8 still
 * holds per file: temp, fsync, rename, then the directory fsync by the caller):
 *   - `write` compresses a body into a temp file beside its final name, without fsync;
 *   - `commit` fsyncs a list of such temp files, many at once, then renames each to its final name;
 *   - `read` reads and decodes a list of contents into one buffer (an export's read-ahead), so the
 *     main thread hashes and writes while this one does the per-file system calls and zstd.
 * An fsync costs a journal commit (about 5 ms here, whatever the file's size); fsyncs issued
 * together share commits, so they run concurrently on the thread pool instead of one by one. They
 * are not started while the batch is still being written: fsyncs running beside the writes made
 * the writers' file creations wait on the journal, and the import slower (50 s -> 59-72 s).
 */
import { createHash } from 'node:crypto';
import { close, closeSync, existsSync, fsync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { tempPathFor } from '../util/fs.js';
import { openContentFile } from './content-open.js';
import { zstdCompress, zstdDecompressInto } from '../util/zstd.js';

/** A job. */
export type ContentJob =
  | { id: number; op: 'write'; path: string; data: Uint8Array }
  | { id: number; op: 'commit'; files: { tmp: string; path: string }[] }
  | { id: number; op: 'read'; items: ReadItem[]; verify: boolean };

/** One content to read: its file, its size as the skeleton says, and (to verify) its sha256 hex. */
export interface ReadItem {
  path: string;
  size: number;
  hex: string;
}

/** A job's outcome: for `write`, the temp file (absent when the content already existed). */
export interface ContentJobResult {
  id: number;
  tmp?: string | undefined;
  stored: number;
  error?: { message: string; code?: string | undefined; syscall?: string | undefined; path?: string | undefined };
  /** `read`: the bodies one after another, and each one's length (a damaged content may differ from its size). */
  data?: Uint8Array;
  lengths?: number[];
  /** `read`: the item that failed, and how: 'io' (the error is the system error), 'corrupt' (zstd), 'digest'. */
  failed?: { index: number; kind: 'io' | 'corrupt' | 'digest' };
}

class ReadFailure extends Error {
  constructor(
    readonly index: number,
    readonly kind: 'io' | 'corrupt' | 'digest',
    readonly cause: unknown,
  ) {
    super((cause as Error).message ?? String(cause));
  }
}

/** Compressed bytes of the content being read, reused from file to file (grown as needed). */
let scratch = Buffer.allocUnsafe(256 * 1024);

/**
 * Reads the whole frame of a content of `size` bytes into `scratch`; returns the filled part, or
 * the reason the file cannot hold one (openContentFile: a FIFO, a directory, a file too large).
 */
function readWhole(path: string, size: number): Buffer | { fault: string } {
  const file = openContentFile(path, size);
  if ('fault' in file) return file;
  try {
    if (file.fileSize > scratch.length) scratch = Buffer.allocUnsafe(file.fileSize);
    let got = 0;
    while (got < file.fileSize) {
      const n = readSync(file.fd, scratch, got, file.fileSize - got, got);
      if (n === 0) break;
      got += n;
    }
    return scratch.subarray(0, got);
  } finally {
    closeSync(file.fd);
  }
}

/** Decodes one content into `out` (its size as the skeleton says); returns the bytes it holds. */
function readOne(item: ReadItem, index: number, verify: boolean, out: Uint8Array): number {
  let z: Buffer | { fault: string };
  try {
    z = readWhole(item.path, item.size);
  } catch (err) {
    throw new ReadFailure(index, 'io', err);
  }
  if (!Buffer.isBuffer(z)) throw new ReadFailure(index, 'corrupt', new Error(z.fault));
  let n: number;
  try {
    n = zstdDecompressInto(z, out);
  } catch (err) {
    throw new ReadFailure(index, 'corrupt', err);
  }
  if (verify && createHash('sha256').update(out.subarray(0, n)).digest('hex') !== item.hex) throw new ReadFailure(index, 'digest', new Error('digest mismatch'));
  return n;
}

/** Reads and decodes every item, one after another, into one transferable buffer. */
function read(items: ReadItem[], verify: boolean): { data: Uint8Array; lengths: number[] } {
  const data = new Uint8Array(items.reduce((a, it) => a + it.size, 0));
  let at = 0;
  const lengths = items.map((it, i) => {
    const n = readOne(it, i, verify, data.subarray(at, at + it.size));
    at += n;
    return n;
  });
  return { data, lengths };
}

function write(path: string, data: Uint8Array): { tmp?: string; stored: number } {
  if (existsSync(path)) return { stored: 0 };
  const z = zstdCompress(data);
  const tmp = tempPathFor(path);
  try {
    const fd = openSync(tmp, 'wx');
    try {
      writeSync(fd, z);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return { tmp, stored: z.length };
}

/** fsyncs in flight at once per job: enough to keep the thread pool's fsyncs sharing commits. */
const SYNC_CONCURRENCY = 16;

function syncOne(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      reject(err);
      return;
    }
    fsync(fd, (err) => close(fd, (closeErr) => (err ?? closeErr ? reject(err ?? closeErr) : resolve())));
  });
}

/** fsyncs every file, SYNC_CONCURRENCY at a time; rejects with the first failure after all settled. */
async function syncAll(paths: string[]): Promise<void> {
  let next = 0;
  let failure: unknown;
  const runner = async (): Promise<void> => {
    while (next < paths.length) {
      const p = paths[next++]!;
      await syncOne(p).catch((err: unknown) => {
        failure ??= err;
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(SYNC_CONCURRENCY, paths.length) }, runner));
  if (failure) throw failure;
}

async function commit(files: { tmp: string; path: string }[]): Promise<void> {
  await syncAll(files.map((f) => f.tmp));
  for (const f of files) renameSync(f.tmp, f.path);
}

async function run(job: ContentJob): Promise<ContentJobResult> {
  if (job.op === 'write') return { id: job.id, ...write(job.path, job.data) };
  if (job.op === 'read') return { id: job.id, stored: 0, ...read(job.items, job.verify) };
  await commit(job.files);
  return { id: job.id, stored: 0 };
}

parentPort?.on('message', (job: ContentJob) => {
  run(job).then(
    (result) => parentPort!.postMessage(result, result.data ? [result.data.buffer as ArrayBuffer] : []),
    (err: unknown) => {
      const failed = err instanceof ReadFailure ? { index: err.index, kind: err.kind } : undefined;
      const e = (err instanceof ReadFailure ? err.cause : err) as NodeJS.ErrnoException;
      parentPort!.postMessage({ id: job.id, stored: 0, failed, error: { message: e.message, code: e.code, syscall: e.syscall, path: e.path } } satisfies ContentJobResult);
    },
  );
});
