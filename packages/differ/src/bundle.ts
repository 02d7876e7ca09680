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
import { FerryError, PATCH_REFERENCE_MAX, PAYLOAD_WINDOW_LOG_DEFAULT, PAYLOAD_WINDOW_LOG_MAX, SEGMENTED_FORMAT_VERSION, payloadWindowLog, isChannelName, layerStream, toFerryError, loadBaseline, parseRef, type Digest, type LayerPlan, type PrivateKey, type Progress, type StoredImage, type Store } from '@ferry/core';
import { assignLayer } from './assign.js';
import { emitLayer, newStats, type EmitContext, type EmitStats } from './emit.js';
import { BaselineIndex, readDpkgLists } from './match.js';
import { PatchPool } from './patch-pool.js';
import { planLayer } from './plan.js';
import { SketchCache } from './sketches.js';
import { DpkgOwners } from './units.js';
import { signBundle, type SignedBundle } from './writer.js';

/** Options for createBundle. */
export interface BundleOptions {
  /** Images the device holds (refs in the store). May be empty: then every layer is literal. */
  from: string[];
  /** Layers the device holds (diff_ids whose skeletons the store has), added to those of `from`. */
  baselineLayers?: Digest[] | undefined;
  /** The target image (ref in the store). */
  to: string;
  /** The target by manifest digest instead (`to` is then only the name it installs as). */
  toManifest?: Digest | undefined;
  /**
   * A release envelope signed elsewhere (the server embeds the release engineer's statement: the
   * release key never reaches it); `releaseKeys` are then not used. It must name the target.
   */
  releaseEnvelope?: Uint8Array | undefined;
  channel: string;
  release: number;
  /** Unix seconds. */
  expires: number;
  /** Name the device installs the image under (default `to`). */
  installAs?: string | undefined;
  releaseKeys: PrivateKey[];
  headerKeys: PrivateKey[];
  chunkSize?: number | undefined;
  /** Cap on patch references and reference sets (default and most core's PATCH_REFERENCE_MAX, which every applier accepts). */
  maxPatchReference?: number | undefined;
  /** zstd level for payload frames and patches (default 19). */
  level?: number | undefined;
  /**
   * Largest window of a payload frame, as a power of two (default core's PAYLOAD_WINDOW_LOG_DEFAULT,
   * 10 to PAYLOAD_WINDOW_LOG_MAX): the window buffer the applier holds while it decodes the frame.
   */
  payloadWindowLog?: number | undefined;
  /** Worker threads for patches (default: every core). */
  workers?: number | undefined;
  /** Bytes the patch jobs running at once may need (default PATCH_POOL_BUDGET, 128 MB; see PatchPool). */
  memoryBudget?: number | undefined;
  /**
   * Measure each target layer's gzip size (what docker pull would send) for the header's reports:
   * a full extra read and gzip of every layer, so off by default (the sizes are then 0).
   */
  pullSizes?: boolean | undefined;
  /** false: patch each body against one similar file at most, as format version 1 did (for comparisons; default true). */
  referenceSets?: boolean | undefined;
  /** Sign the header document uncompressed (format 1-3) instead of in a version 4 wrapper (docs/format.md section 4.1; default false). */
  plainHeader?: boolean | undefined;
  /** Unix seconds stamped as creation time (default now; fix it for reproducible bytes). */
  created?: number | undefined;
  /** Directory for the temporary payload file (default the system temp directory). */
  workDir?: string | undefined;
  onProgress?: (p: Progress) => void;
  /** Stops the computation (FERRY_ERR_ABORTED): patch workers end, the temporary payload goes. */
  signal?: AbortSignal | undefined;
}

/** A computed bundle; `dispose` removes its temp payload. */
export interface ComputedBundle {
  signed: SignedBundle;
  layers: LayerPlan[];
  stats: EmitStats;
  dispose(): Promise<void>;
}

async function gzipSize(store: Store, diffId: Digest, size: number, signal?: AbortSignal): Promise<number> {
  // only with BundleOptions.pullSizes: costs a full read and gzip of the layer
  const gz = createGzip({ level: 6 });
  let n = 0;
  const counting = (async () => {
    for await (const c of gz as AsyncIterable<Buffer>) n += c.length;
  })();
  try {
    for await (const c of layerStream(store, diffId, size)) {
      signal?.throwIfAborted();
      if (!gz.write(c)) await new Promise((r) => gz.once('drain', r));
    }
  } catch (err) {
    gz.destroy();
    await counting.catch(() => {});
    throw err;
  }
  gz.end();
  await counting;
  return n;
}

function baselineLayers(images: StoredImage[]): Digest[] {
  const seen = new Set<Digest>();
  for (const img of images) for (const l of img.layers) seen.add(l.diffId);
  return [...seen];
}

/** Peak memory of compressing a raw frame of `size` bytes with a 2^`windowLog` window at level 19 (window, tables, long-distance matcher). */
function frameMemory(size: number, windowLog: number): number {
  return Math.min(size, 2 ** windowLog) + Math.min(90e6, 12 * size + 4e6);
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
async function rebuildLayer(ctx: EmitContext & { sketches: SketchCache; owners: DpkgOwners; produced: Set<Digest>; dir: string; referenceSets: boolean; windowLog: number }, diffId: Digest, out: FileHandle, offset: number): Promise<{ start: number; end: number }> {
  const layer = await planLayer(await ctx.store.openSkeleton(diffId), ctx.index, { produced: ctx.produced, signal: ctx.signal });
  const owners = new DpkgOwners(ctx.owners);
  await readDpkgLists(ctx.store, layer.lists, owners);
  const decisions = await assignLayer(layer.fresh, ctx.index, { maxPatchReference: ctx.maxRef, owners, sketches: ctx.sketches, referenceSets: ctx.referenceSets, signal: ctx.signal });
  const raw = join(ctx.dir, 'raw');
  const frame = join(ctx.dir, 'frame');
  try {
    const size = await emitLayer(ctx, layer, decisions, raw);
    // fitted to the bytes the frame decodes to, at most the bundle's cap (the applier's window buffer)
    const windowLog = payloadWindowLog(size, ctx.windowLog);
    await ctx.pool.run({ kind: 'frame', raw, size, windowLog, out: frame }, frameMemory(size, windowLog));
    return { start: offset, end: await append(out, offset, frame) };
  } finally {
    await rm(raw, { force: true });
    await rm(frame, { force: true });
  }
}

/** The caps a bundle is made with, which bound the applier's memory (see bundleLimits). */
export interface BundleLimits {
  maxPatchReference: number;
  payloadWindowLog: number;
}

/**
 * BundleOptions' reference cap and payload window cap, or core's defaults (PATCH_REFERENCE_MAX,
 * PAYLOAD_WINDOW_LOG_DEFAULT), checked against what every applier accepts: a reference cap that is
 * not a whole number from 1 to PATCH_REFERENCE_MAX, or a window log that is not one from 10 to
 * PAYLOAD_WINDOW_LOG_MAX, is FERRY_ERR_USAGE.
 */
export function bundleLimits(opts: Pick<BundleOptions, 'maxPatchReference' | 'payloadWindowLog'>): BundleLimits {
  const { maxPatchReference = PATCH_REFERENCE_MAX, payloadWindowLog = PAYLOAD_WINDOW_LOG_DEFAULT } = opts;
  if (!Number.isInteger(maxPatchReference) || maxPatchReference < 1 || maxPatchReference > PATCH_REFERENCE_MAX) throw new FerryError('FERRY_ERR_USAGE', `maxPatchReference ${maxPatchReference} is not a whole number of bytes from 1 to ${PATCH_REFERENCE_MAX}`);
  if (!Number.isInteger(payloadWindowLog) || payloadWindowLog < 10 || payloadWindowLog > PAYLOAD_WINDOW_LOG_MAX) throw new FerryError('FERRY_ERR_USAGE', `payloadWindowLog ${payloadWindowLog} is not a whole number from 10 to ${PAYLOAD_WINDOW_LOG_MAX}`);
  return { maxPatchReference, payloadWindowLog };
}

/** Computes and signs a bundle from `from` to `to`. */
export async function createBundle(store: Store, opts: BundleOptions): Promise<ComputedBundle> {
  const limits = bundleLimits(opts);
  const target = opts.toManifest ? await store.imageByManifest(opts.to, opts.toManifest) : await store.resolve(opts.to);
  const installAs = opts.installAs ?? opts.to;
  parseRef(installAs);
  // devices refuse a header whose channel is not a valid name (docs/format.md section 4)
  if (!isChannelName(opts.channel)) throw new FerryError('FERRY_ERR_USAGE', `${JSON.stringify(opts.channel)} is not a valid channel name`);
  const bases = await Promise.all(opts.from.map((r) => store.resolve(r)));
  const baseline = [...new Set([...baselineLayers(bases), ...(opts.baselineLayers ?? [])])];
  const have = new Set(baseline);
  const entries = await loadBaseline(store, baseline);
  const baseOwners = new DpkgOwners();
  await readDpkgLists(store, entries, baseOwners);
  const index = new BaselineIndex(entries, baseOwners);
  const level = opts.level ?? 19;
  const signal = opts.signal;
  const stats = newStats();
  const layers: LayerPlan[] = [];
  let pool: PatchPool | undefined;
  let dir: string | undefined;
  try {
    // workers and the temp directory start inside the try that ends them
    pool = new PatchPool(store.root, level, { size: opts.workers, memoryBudget: opts.memoryBudget, signal });
    dir = await mkdtemp(join(opts.workDir ?? tmpdir(), 'ferry-bundle-'));
    const payloadFile = join(dir, 'payload');
    const ctx = { store, pool, index, stats, signal, sketches: new SketchCache(pool), maxRef: limits.maxPatchReference, owners: baseOwners, produced: new Set<Digest>(), dir, referenceSets: opts.referenceSets ?? true, windowLog: limits.payloadWindowLog };
    const fh = await open(payloadFile, 'w');
    let offset = 0;
    try {
      for (const [i, l] of target.layers.entries()) {
        signal?.throwIfAborted();
        opts.onProgress?.({ phase: `layer ${i + 1}/${target.layers.length}`, done: i, total: target.layers.length });
        const gz = opts.pullSizes ? await gzipSize(store, l.diffId, l.size, signal) : 0;
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
      releaseEnvelope: opts.releaseEnvelope,
      headerKeys: opts.headerKeys,
      manifest: target.manifest,
      config: target.config,
      baseline,
      layers,
      payloadFile,
      need: b.literal.bytes + b.patch.bytes + b.bsdiff.bytes + b.group.bytes + b.member.bytes + b.segmented.bytes + stats.entries * 256,
      version: b.segmented.files > 0 ? SEGMENTED_FORMAT_VERSION : undefined,
      chunkSize: opts.chunkSize,
      created: now,
      plainHeader: opts.plainHeader,
    });
    stats.top.sort((a, b) => b.carried - a.carried || a.path.localeCompare(b.path)).splice(20);
    const made = dir;
    return { signed, layers, stats, dispose: () => rm(made, { recursive: true, force: true }) };
  } catch (err) {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    // raw fs errors (ENOSPC writing the payload, EACCES) leave this module with a code
    throw toFerryError(err, 'computing the bundle');
  } finally {
    await pool?.close();
  }
}
