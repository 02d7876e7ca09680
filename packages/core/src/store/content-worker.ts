/**
 * Worker thread that compresses and durably writes contents (temp, fsync, rename), so an import
 * hashes and parses on the main thread while other cores compress and write.
 */
import { parentPort } from 'node:worker_threads';
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { tempPathFor } from '../util/fs.js';
import { zstdCompress } from '../util/zstd.js';

/** A write job. */
export interface ContentJob {
  id: number;
  path: string;
  data: Uint8Array;
}

/** A job's outcome. */
export interface ContentJobResult {
  id: number;
  added: boolean;
  stored: number;
  error?: { message: string; code?: string | undefined; syscall?: string | undefined; path?: string | undefined };
}

/**
 * Compresses and writes with synchronous calls: on this dedicated thread they cost less than the
 * promise API's per-call overhead, and several workers overlap their fsyncs.
 */
function write(job: ContentJob): ContentJobResult {
  if (existsSync(job.path)) return { id: job.id, added: false, stored: 0 };
  const z = zstdCompress(job.data);
  const tmp = tempPathFor(job.path);
  try {
    const fd = openSync(tmp, 'wx');
    try {
      writeSync(fd, z);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, job.path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return { id: job.id, added: true, stored: z.length };
}

parentPort?.on('message', (job: ContentJob) => {
  let result: ContentJobResult;
  try {
    result = write(job);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    result = { id: job.id, added: false, stored: 0, error: { message: e.message, code: e.code, syscall: e.syscall, path: e.path } };
  }
  parentPort!.postMessage(result);
});
