/**
 * Worker thread that compresses and durably writes small contents (temp, fsync, rename), so an
 * import hashes and parses on the main thread while another core compresses and writes.
 */
import { parentPort } from 'node:worker_threads';
import { exists, writeFileAtomic } from '../util/fs.js';
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
 * Compresses (on this thread) and writes (through the thread pool, so several fsyncs overlap).
 * Jobs are not serialised: the next message is taken while earlier writes are in flight.
 */
async function write(job: ContentJob): Promise<ContentJobResult> {
  if (await exists(job.path)) return { id: job.id, added: false, stored: 0 };
  const z = zstdCompress(job.data);
  await writeFileAtomic(job.path, z, { syncDir: false, mkdir: false });
  return { id: job.id, added: true, stored: z.length };
}

parentPort?.on('message', (job: ContentJob) => {
  write(job).then(
    (result) => parentPort!.postMessage(result),
    (err: unknown) => {
      const e = (err as { cause?: NodeJS.ErrnoException }).cause ?? (err as NodeJS.ErrnoException);
      parentPort!.postMessage({ id: job.id, added: false, stored: 0, error: { message: e.message, code: e.code, syscall: e.syscall, path: e.path } } satisfies ContentJobResult);
    },
  );
});
