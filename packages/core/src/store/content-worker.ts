/**
 * Worker thread that compresses and writes contents, so an import hashes and parses on the main
 * thread while other cores compress and write. Durability is batched (DESIGN.md section 8 still
 * holds per file: temp, fsync, rename, then the directory fsync by the caller):
 *   - `write` compresses a body into a temp file beside its final name, without fsync;
 *   - `commit` fsyncs a list of such temp files and renames each to its final name.
 * One journal commit then covers many files instead of one fsync-bound commit per file.
 */
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { tempPathFor } from '../util/fs.js';
import { zstdCompress } from '../util/zstd.js';

/** A job. */
export type ContentJob =
  | { id: number; op: 'write'; path: string; data: Uint8Array }
  | { id: number; op: 'commit'; files: { tmp: string; path: string }[] };

/** A job's outcome: for `write`, the temp file (absent when the content already existed). */
export interface ContentJobResult {
  id: number;
  tmp?: string | undefined;
  stored: number;
  error?: { message: string; code?: string | undefined; syscall?: string | undefined; path?: string | undefined };
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

function commit(files: { tmp: string; path: string }[]): void {
  for (const f of files) {
    const fd = openSync(f.tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(f.tmp, f.path);
  }
}

parentPort?.on('message', (job: ContentJob) => {
  let result: ContentJobResult;
  try {
    if (job.op === 'write') result = { id: job.id, ...write(job.path, job.data) };
    else {
      commit(job.files);
      result = { id: job.id, stored: 0 };
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    result = { id: job.id, stored: 0, error: { message: e.message, code: e.code, syscall: e.syscall, path: e.path } };
  }
  parentPort!.postMessage(result);
});
