/**
 * Worker thread computing one patch: zstd patch-from of a target content against a reference
 * content, and the literal's compressed size to beat (DESIGN.md section 5: a patch is kept only
 * when smaller than the literal).
 */
import { parentPort } from 'node:worker_threads';
import { Store, canPatchFrom, zstdCompress, zstdPatchEncode, type Digest } from '@ferry/core';

/** A patch job. */
export interface PatchJob {
  id: number;
  root: string;
  ref: Digest;
  target: Digest;
  level: number;
}

/** A patch result: the patch when it beats the literal, else null. */
export interface PatchResult {
  id: number;
  patch: Uint8Array | null;
  literalSize: number;
  error?: string;
}

const stores = new Map<string, Promise<Store>>();

async function load(store: Store, d: Digest): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of store.openContent(d)) parts.push(c);
  return Buffer.concat(parts);
}

async function run(job: PatchJob): Promise<PatchResult> {
  let s = stores.get(job.root);
  if (!s) stores.set(job.root, (s = Store.open(job.root)));
  const store = await s;
  const [ref, target] = await Promise.all([load(store, job.ref), load(store, job.target)]);
  const literalSize = zstdCompress(target, { compressionLevel: job.level }).length;
  if (!canPatchFrom(ref, target.length)) return { id: job.id, patch: null, literalSize };
  const patch = zstdPatchEncode(ref, target, job.level);
  return { id: job.id, patch: patch.length < literalSize ? patch : null, literalSize };
}

parentPort?.on('message', (job: PatchJob) => {
  run(job).then(
    (r) => parentPort!.postMessage(r),
    (err: unknown) => parentPort!.postMessage({ id: job.id, patch: null, literalSize: 0, error: String((err as Error).message ?? err) }),
  );
});
