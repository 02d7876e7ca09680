/**
 * Worker thread computing one patch: zstd patch-from and bsdiff of a target content against a
 * reference content, and the literal, each costed as the bytes it would take on the link at the
 * job's zstd level (DESIGN.md section 5, "Encoding cost": chosen per file by size; a patch is kept
 * only when smaller than the literal). bsdiff is tried for references up to BSDIFF_MAX_REFERENCE.
 */
import { parentPort } from 'node:worker_threads';
import { Store, canPatchFrom, zstdCompress, zstdPatchEncode, type Digest } from '@ferry/core';
import { BSDIFF_MAX_REFERENCE, bsdiff } from './delta/bsdiff.js';

/** A patch job. */
export interface PatchJob {
  id: number;
  root: string;
  ref: Digest;
  target: Digest;
  level: number;
}

/**
 * The cheapest encoding of a target: a zstd patch-from frame, a raw bsdiff delta (compressed later
 * by the payload frame), or the literal (read from the store when emitted, so no bytes here).
 */
export type PatchChoice = { kind: 'literal'; bytes: null } | { kind: 'patch' | 'bsdiff'; bytes: Uint8Array };

/** A patch result: the winner, and the compressed literal size it was measured against. */
export type PatchResult = PatchChoice & {
  id: number;
  literalSize: number;
  error?: string;
};

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
  let best: PatchChoice = { kind: 'literal', bytes: null };
  let cost = literalSize;
  if (canPatchFrom(ref, target.length)) {
    const patch = zstdPatchEncode(ref, target, job.level);
    if (patch.length < cost) [best, cost] = [{ kind: 'patch', bytes: patch }, patch.length];
  }
  if (ref.length > 0 && ref.length <= BSDIFF_MAX_REFERENCE) {
    const delta = bsdiff(ref, target);
    const size = zstdCompress(delta, { compressionLevel: job.level }).length;
    if (size < cost) [best, cost] = [{ kind: 'bsdiff', bytes: delta }, size];
  }
  return { id: job.id, ...best, literalSize };
}

parentPort?.on('message', (job: PatchJob) => {
  run(job).then(
    (r) => parentPort!.postMessage(r),
    (err: unknown) => parentPort!.postMessage({ id: job.id, kind: 'literal', bytes: null, literalSize: 0, error: String((err as Error).message ?? err) }),
  );
});
