/**
 * Computing a bundle (DESIGN.md section 5): the target's layers that the baseline holds are reused
 * whole; every other layer is planned against the baseline entry table and emitted as a payload
 * frame; the payload is chunked and the header signed. Deterministic: the same store contents and
 * options give the same bytes.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { DEFAULT_MAX_PATCH_REFERENCE, FerryError, layerStream, loadBaseline, parseRef, signBundle, type Digest, type LayerPlan, type PrivateKey, type Progress, type SignedBundle, type StoredImage, type Store } from '@ferry/core';
import { assignLayer } from './assign.js';
import { emitLayer, newStats, type EmitContext, type EmitStats } from './emit.js';
import { BaselineIndex, readDpkgLists } from './match.js';
import { PatchPool } from './patch-pool.js';
import { planLayer } from './plan.js';
import { SketchCache } from './sketches.js';
import { DpkgOwners } from './units.js';

/** Options for createBundle. */
export interface BundleOptions {
  /** Images the device holds (refs in the store). May be empty: then every layer is literal. */
  from: string[];
  /** The target image (ref in the store). */
  to: string;
  channel: string;
  release: number;
  /** Unix seconds. */
  expires: number;
  /** Name the device installs the image under (default `to`). */
  installAs?: string | undefined;
  releaseKeys: PrivateKey[];
  headerKeys: PrivateKey[];
  chunkSize?: number | undefined;
  /** Cap on patch reference sets (default DEFAULT_MAX_PATCH_REFERENCE) so the device's memory stays bounded. */
  maxPatchReference?: number | undefined;
  /** zstd level for payload frames and patches (default 19). */
  level?: number | undefined;
  /** Worker threads for patches (default: every core). */
  workers?: number | undefined;
  /** Bytes the patch jobs running at once may need (default 256 MB; see PatchPool). */
  memoryBudget?: number | undefined;
  /**
   * Measure each target layer's gzip size (what docker pull would send) for the header's reports:
   * a full extra read and gzip of every layer, so off by default (the sizes are then 0).
   */
  pullSizes?: boolean | undefined;
  /** false: patch each body against one similar file at most, as format version 1 did (for comparisons; default true). */
  referenceSets?: boolean | undefined;
  signal?: AbortSignal | undefined;
  /** Unix seconds stamped as creation time (default now; fix it for reproducible bytes). */
  created?: number | undefined;
  onProgress?: (p: Progress) => void;
}

/** A computed bundle; `dispose` removes its temp payload. */
export interface ComputedBundle {
  signed: SignedBundle;
  layers: LayerPlan[];
  stats: EmitStats;
  dispose(): Promise<void>;
}

async function gzipSize(store: Store, diffId: Digest, size: number): Promise<number> {
  // only with BundleOptions.pullSizes: costs a full read and gzip of the layer
  const gz = createGzip({ level: 6 });
  let n = 0;
  const counting = (async () => {
    for await (const c of gz as AsyncIterable<Buffer>) n += c.length;
  })();
  for await (const c of layerStream(store, diffId, size)) if (!gz.write(c)) await new Promise((r) => gz.once('drain', r));
  gz.end();
  await counting;
  return n;
}

function baselineLayers(images: StoredImage[]): Digest[] {
  const seen = new Set<Digest>();
  for (const img of images) for (const l of img.layers) seen.add(l.diffId);
  return [...seen];
}

/** Peak memory of compressing a raw frame of `size` bytes at level 19 (window, tables, long-distance matcher). */
function frameMemory(size: number): number {
  return Math.min(size, 2 ** 27) + Math.min(90e6, 12 * size + 4e6);
}

/** Appends a file to the payload at `offset`; returns the new end. */
async function append(out: FileHandle, offset: number, path: string): Promise<number> {
  let pos = offset;
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    await out.write(c, 0, c.length, pos);
    pos += c.length;
  }
  return pos;
}

/** Plans, emits and compresses one rebuilt layer into the payload; returns its frame's range. */
async function rebuildLayer(ctx: EmitContext & { sketches: SketchCache; maxRef: number; owners: DpkgOwners; produced: Set<Digest>; dir: string; referenceSets: boolean }, diffId: Digest, out: FileHandle, offset: number): Promise<{ start: number; end: number }> {
  const layer = await planLayer(await ctx.store.openSkeleton(diffId), ctx.index, { produced: ctx.produced });
  const owners = new DpkgOwners(ctx.owners);
  await readDpkgLists(ctx.store, layer.lists, owners);
  const decisions = await assignLayer(layer.fresh, ctx.index, { maxPatchReference: ctx.maxRef, owners, sketches: ctx.sketches, referenceSets: ctx.referenceSets, signal: ctx.signal });
  const raw = join(ctx.dir, 'raw');
  const frame = join(ctx.dir, 'frame');
  try {
    const size = await emitLayer(ctx, layer, decisions, raw);
    await ctx.pool.run({ kind: 'frame', raw, size, out: frame }, frameMemory(size));
    return { start: offset, end: await append(out, offset, frame) };
  } finally {
    await rm(raw, { force: true });
    await rm(frame, { force: true });
  }
}

/** Computes and signs a bundle from `from` to `to`. */
export async function createBundle(store: Store, opts: BundleOptions): Promise<ComputedBundle> {
  const target = await store.resolve(opts.to);
  const installAs = opts.installAs ?? opts.to;
  parseRef(installAs);
  const bases = await Promise.all(opts.from.map((r) => store.resolve(r)));
  const baseline = baselineLayers(bases);
  const have = new Set(baseline);
  const entries = await loadBaseline(store, baseline);
  const baseOwners = new DpkgOwners();
  await readDpkgLists(store, entries, baseOwners);
  const index = new BaselineIndex(entries, baseOwners);
  const level = opts.level ?? 19;
  const pool = new PatchPool(store.root, level, { size: opts.workers, memoryBudget: opts.memoryBudget });
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bundle-'));
  const payloadFile = join(dir, 'payload');
  const stats = newStats();
  const ctx = { store, pool, index, stats, signal: opts.signal, sketches: new SketchCache(pool), maxRef: opts.maxPatchReference ?? DEFAULT_MAX_PATCH_REFERENCE, owners: baseOwners, produced: new Set<Digest>(), dir, referenceSets: opts.referenceSets ?? true };
  const layers: LayerPlan[] = [];
  try {
    const fh = await open(payloadFile, 'w');
    let offset = 0;
    try {
      for (const [i, l] of target.layers.entries()) {
        opts.signal?.throwIfAborted();
        opts.onProgress?.({ phase: `layer ${i + 1}/${target.layers.length}`, done: i, total: target.layers.length });
        const gz = opts.pullSizes ? await gzipSize(store, l.diffId, l.size) : 0;
        if (have.has(l.diffId)) {
          layers.push({ diffId: l.diffId, size: l.size, mode: 'reuse', start: offset, end: offset, gzipSize: gz });
          continue;
        }
        const range = await rebuildLayer(ctx, l.diffId, fh, offset);
        offset = range.end;
        layers.push({ diffId: l.diffId, size: l.size, mode: 'rebuild', ...range, gzipSize: gz });
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    const now = opts.created ?? Math.floor(Date.now() / 1000);
    if (opts.expires <= now) throw new FerryError('FERRY_ERR_USAGE', 'the bundle would already be expired');
    const b = stats.bodies;
    const signed = await signBundle({
      release: { channel: opts.channel, release: opts.release, ref: installAs, manifest: target.manifestDigest, config: target.configDigest, expires: opts.expires, created: now },
      releaseKeys: opts.releaseKeys,
      headerKeys: opts.headerKeys,
      manifest: target.manifest,
      config: target.config,
      baseline,
      layers,
      payloadFile,
      need: b.literal.bytes + b.patch.bytes + b.bsdiff.bytes + b.group.bytes + b.member.bytes + stats.entries * 256,
      chunkSize: opts.chunkSize,
      created: now,
    });
    stats.top.sort((a, b) => b.carried - a.carried || a.path.localeCompare(b.path)).splice(20);
    return { signed, layers, stats, dispose: () => rm(dir, { recursive: true, force: true }) };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  } finally {
    await pool.close();
  }
}
