/**
 * Planning one rebuilt layer: every target entry becomes a run of baseline entries, or an entry op
 * whose header and body are sourced as cheaply as the baseline allows (DESIGN.md section 5,
 * "Encoding cost"). Bodies the baseline does not hold are left `fresh`: assign.ts decides how each
 * travels once the whole layer is known.
 */
import { diffBytes, diffRanges, encodePatch, headerBlockOffsets, patchBytes, recomputeChecksums, splitRaw, type Digest, type HeaderSource, type SkeletonReader } from '@ferry/core';
import type { BaselineIndex } from './match.js';
import { dpkgListPackage } from './units.js';

/** A body the baseline does not hold, in tar order within its layer. */
export interface FreshBody {
  digest: Digest;
  size: number;
  path: string;
  /** The entry's position in its layer (reference sets name earlier entries by distance). */
  pos: number;
}

/** A planned body. */
export type PlannedBody =
  | { kind: 'none' }
  | { kind: 'same' }
  | { kind: 'copy'; index: number }
  | { kind: 'back'; k: number }
  | { kind: 'digest'; digest: Digest }
  | { kind: 'fresh'; fresh: FreshBody };

/** A planned op. */
export type PlannedOp =
  | { kind: 'run'; start: number; count: number }
  | { kind: 'patchrun'; start: number; count: number; patch: Uint8Array }
  | { kind: 'entry'; header: HeaderSource; body: PlannedBody; pad?: Buffer | undefined; path: string }
  | { kind: 'tail'; bytes: Uint8Array };

/** Planning options. */
export interface PlanOptions {
  /** Contents produced by earlier layers of this bundle (grows as layers are planned). */
  produced: Set<Digest>;
  /** Checked before every entry. */
  signal?: AbortSignal | undefined;
}

/** A planned layer: its ops, its fresh bodies in tar order, and its dpkg file lists (units.ts). */
export interface LayerOps {
  ops: PlannedOp[];
  fresh: FreshBody[];
  lists: { path: string; digest?: Digest | undefined; size: number }[];
}

function allZero(b: Buffer): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

/**
 * A patch from `base` to `header` that leaves checksum fields out (the applier recomputes them),
 * when that reproduces `header` exactly.
 */
function checksumFreePatch(base: Buffer, header: Buffer): Uint8Array | undefined {
  if (base.length !== header.length) return undefined;
  const target = Buffer.from(header);
  const blocks = headerBlockOffsets(target);
  for (const off of blocks) base.copy(target, off + 148, off + 148, off + 156);
  const patch = encodePatch(target, alignToFields(diffRanges(base, target), blocks));
  const check = patchBytes(base, patch);
  return recomputeChecksums(check, base) && check.equals(header) ? patch : undefined;
}

/** ustar header field boundaries (POSIX.1-2017 pax, ustar Interchange Format). */
const FIELD_EDGES = [0, 100, 108, 116, 124, 136, 148, 156, 157, 257, 263, 265, 297, 329, 337, 345, 500, 512];

/**
 * Widens ranges inside header blocks to whole fields, so entries whose headers changed the same
 * way (a rebuild stamping one new mtime) get byte-identical patches, which then form patch runs.
 */
function alignToFields(ranges: [number, number][], blocks: number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const [s0, e0] of ranges) {
    let s = s0;
    let e = e0;
    const block = blocks.find((b) => s >= b && s < b + 512);
    if (block !== undefined) {
      s = block + FIELD_EDGES.filter((f) => f <= s - block).at(-1)!;
      const endBlock = blocks.find((b) => e - 1 >= b && e - 1 < b + 512) ?? block;
      e = Math.min(endBlock + FIELD_EDGES.find((f) => f >= e - endBlock)!, endBlock + 512);
    }
    const prev = out.at(-1);
    if (prev && s <= prev[1]) prev[1] = Math.max(prev[1], e);
    else out.push([s, e]);
  }
  return out;
}

function headerSource(index: BaselineIndex, base: number | undefined, header: Buffer): HeaderSource {
  if (base === undefined) return { kind: 'literal', bytes: header };
  const b = index.entries[base]!;
  if (b.header.equals(header)) return { kind: 'base', index: base };
  const free = checksumFreePatch(b.header, header);
  if (free && free.length * 2 < header.length) return { kind: 'patched', index: base, patch: free, fixChecksum: true };
  const patch = diffBytes(b.header, header);
  // a patch pays off when it is much smaller than the header it replaces
  if (patch && patch.length * 2 < header.length) return { kind: 'patched', index: base, patch };
  return { kind: 'literal', bytes: header };
}

/** Plans a layer from its target skeleton. */
export async function planLayer(skeleton: SkeletonReader, index: BaselineIndex, opts: PlanOptions): Promise<LayerOps> {
  const ops: PlannedOp[] = [];
  const seen = new Map<Digest, number>();
  const fresh: FreshBody[] = [];
  const lists: LayerOps['lists'] = [];
  let pos = 0;
  let prevSize = 0;
  let nextBase = 0;
  for await (const e of skeleton.entries) {
    opts.signal?.throwIfAborted();
    if (dpkgListPackage(e.path) !== undefined) lists.push({ path: e.path, digest: e.digest, size: e.size });
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
      const body = planBody(e.digest, e.size, e.path, hs, index, seen, pos, opts, fresh);
      if (hs.kind === 'patched' && hs.fixChecksum && index.entries[hs.index]!.digest === e.digest && allZero(pad)) {
        // same body, header differing only in a shared patch: extend or start a patch run
        if (last?.kind === 'patchrun' && last.start + last.count === hs.index && Buffer.compare(last.patch, hs.patch) === 0) last.count++;
        else ops.push({ kind: 'patchrun', start: hs.index, count: 1, patch: hs.patch });
        nextBase = hs.index + 1;
        if (e.digest) seen.set(e.digest, pos);
        pos++;
        prevSize = e.size;
        continue;
      }
      ops.push({ kind: 'entry', header: hs, body, pad: allZero(pad) ? undefined : Buffer.from(pad), path: e.path });
      if (hs.kind !== 'literal') nextBase = hs.index + 1;
    }
    if (e.digest) seen.set(e.digest, pos);
    pos++;
    prevSize = e.size;
  }
  ops.push({ kind: 'tail', bytes: skeleton.trailer().tail });
  for (const f of fresh) opts.produced.add(f.digest);
  return { ops, fresh, lists };
}

function planBody(digest: Digest | undefined, size: number, path: string, hs: HeaderSource, index: BaselineIndex, seen: Map<Digest, number>, pos: number, opts: PlanOptions, fresh: FreshBody[]): PlannedBody {
  if (size === 0 || !digest) return { kind: 'none' };
  if (hs.kind !== 'literal' && index.entries[hs.index]!.digest === digest) return { kind: 'same' };
  const copy = index.content(digest);
  if (copy !== undefined) return { kind: 'copy', index: copy };
  const earlier = seen.get(digest);
  if (earlier !== undefined) return { kind: 'back', k: pos - earlier };
  if (opts.produced.has(digest)) return { kind: 'digest', digest };
  const f: FreshBody = { digest, size, path, pos };
  fresh.push(f);
  return { kind: 'fresh', fresh: f };
}
