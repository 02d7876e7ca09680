/**
 * Planning one rebuilt layer: every target entry becomes a run of baseline entries, or an entry op
 * whose header and body are sourced as cheaply as the baseline allows (DESIGN.md section 5,
 * "Encoding cost"). Patch candidates are computed in the worker pool while planning goes on.
 */
import { diffBytes, splitRaw, type Digest, type HeaderSource, type SkeletonReader } from '@ferry/core';
import type { BaselineIndex } from './match.js';
import type { PatchPool } from './patch-pool.js';

/** A planned body. */
export type PlannedBody =
  | { kind: 'none' }
  | { kind: 'same' }
  | { kind: 'copy'; index: number }
  | { kind: 'back'; k: number }
  | { kind: 'digest'; digest: Digest }
  | { kind: 'literal'; digest: Digest; size: number; path: string }
  | { kind: 'patch'; index: number; digest: Digest; size: number; path: string; result: Promise<{ patch: Uint8Array | null; literalSize: number }> };

/** A planned op. */
export type PlannedOp =
  | { kind: 'run'; start: number; count: number }
  | { kind: 'entry'; header: HeaderSource; body: PlannedBody; pad?: Buffer | undefined; path: string }
  | { kind: 'tail'; bytes: Uint8Array };

/** Planning options. */
export interface PlanOptions {
  maxPatchReference: number;
  pool: PatchPool;
  /** Contents produced by earlier layers of this bundle (grows as layers are planned). */
  produced: Set<Digest>;
}

function allZero(b: Buffer): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

function headerSource(index: BaselineIndex, base: number | undefined, header: Buffer): HeaderSource {
  if (base === undefined) return { kind: 'literal', bytes: header };
  const b = index.entries[base]!;
  if (b.header.equals(header)) return { kind: 'base', index: base };
  const patch = diffBytes(b.header, header);
  // a patch pays off when it is much smaller than the header it replaces
  if (patch && patch.length * 2 < header.length) return { kind: 'patched', index: base, patch };
  return { kind: 'literal', bytes: header };
}

/** Plans a layer from its target skeleton. */
export async function planLayer(skeleton: SkeletonReader, index: BaselineIndex, opts: PlanOptions): Promise<PlannedOp[]> {
  const ops: PlannedOp[] = [];
  const seen = new Map<Digest, number>();
  const fresh: Digest[] = [];
  let pos = 0;
  let prevSize = 0;
  let nextBase = 0;
  for await (const e of skeleton.entries) {
    const { pad, header } = splitRaw(e.raw, prevSize);
    const pathBase = index.path(e.path);
    const exact = [nextBase, pathBase].find((i) => i !== undefined && i < index.entries.length && index.entries[i]!.header.equals(header) && index.entries[i]!.digest === e.digest);
    const last = ops[ops.length - 1];
    if (exact !== undefined && allZero(pad)) {
      if (last?.kind === 'run' && last.start + last.count === exact) last.count++;
      else ops.push({ kind: 'run', start: exact, count: 1 });
      nextBase = exact + 1;
    } else {
      const hs = headerSource(index, pathBase, header);
      ops.push({ kind: 'entry', header: hs, body: planBody(e.digest, e.size, e.path, hs, index, seen, pos, opts, fresh), pad: allZero(pad) ? undefined : Buffer.from(pad), path: e.path });
      if (hs.kind !== 'literal') nextBase = hs.index + 1;
    }
    if (e.digest) seen.set(e.digest, pos);
    pos++;
    prevSize = e.size;
  }
  ops.push({ kind: 'tail', bytes: skeleton.trailer().tail });
  for (const d of fresh) opts.produced.add(d);
  return ops;
}

function planBody(digest: Digest | undefined, size: number, path: string, hs: HeaderSource, index: BaselineIndex, seen: Map<Digest, number>, pos: number, opts: PlanOptions, fresh: Digest[]): PlannedBody {
  if (size === 0 || !digest) return { kind: 'none' };
  if (hs.kind !== 'literal' && index.entries[hs.index]!.digest === digest) return { kind: 'same' };
  const copy = index.content(digest);
  if (copy !== undefined) return { kind: 'copy', index: copy };
  const earlier = seen.get(digest);
  if (earlier !== undefined) return { kind: 'back', k: pos - earlier };
  if (opts.produced.has(digest)) return { kind: 'digest', digest };
  fresh.push(digest);
  const ref = index.similar(path, size, opts.maxPatchReference);
  if (ref === undefined) return { kind: 'literal', digest, size, path };
  const result = opts.pool.patch(index.entries[ref]!.digest!, digest);
  result.catch(() => {}); // awaited when emitted
  return { kind: 'patch', index: ref, digest, size, path, result };
}
