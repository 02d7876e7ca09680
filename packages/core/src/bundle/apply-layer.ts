/**
 * Step two of an apply (DESIGN.md section 6): rebuild one layer from its payload frame as the
 * chunk source yields the chunks. Each chunk is checked against the header before any of its bytes
 * is used (payloadRange), read once, and decoded as it streams; the layer's bytes are hashed in
 * tar order while its skeleton and new contents are written (apply-build.ts, apply-output.ts);
 * the staged skeleton is renamed into place only when the layer's size and diff_id verify. The
 * store lock is held while writing and released while a chunk is awaited (apply-session.ts).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { FerryError, toFerryError } from '../errors.js';
import type { Digest } from '../util/digest.js';
import { join } from 'node:path';
import { fsyncFile, tempPathFor } from '../util/fs.js';
import { SkeletonWriter, readSkeletonFile } from '../tar/skeleton-file.js';
import type { Progress } from '../store/import.js';
import type { Store } from '../store/store.js';
import { BaselineTable } from './baseline.js';
import { payloadRange, type ChunkSource } from './container.js';
import { checkExpiry } from './header.js';
import { readOps } from './payload.js';
import { PATCH_REFERENCE_MAX } from './limits.js';
import { LayerBuild } from './apply-build.js';
import { openLayerSink } from './apply-sink.js';
import { RebuildSession, type LockTiming } from './apply-session.js';
import { pendingRoot } from './apply-pending.js';
import type { ApplyPlan, PlannedLayer } from './apply-plan.js';

/** Options of rebuildLayer. */
export interface RebuildOptions extends LockTiming {
  signal?: AbortSignal | undefined;
  /** Layer bytes rebuilt so far (about every MiB). */
  onProgress?: ((p: Progress) => void) | undefined;
  /** Unix seconds (tests inject it): an expired header is refused. */
  now?: number | undefined;
  /**
   * The baseline entry table, built once with {@link openBaselineTable} for several rebuilds of
   * one plan (the caller closes it). Default: built for this call and closed at its end.
   */
  baseline?: BaselineTable | undefined;
  /** Largest delta reference held in memory (default and most PATCH_REFERENCE_MAX): a lower cap for a smaller device. */
  maxPatchReference?: number | undefined;
  /**
   * Run the layer's writer (hashing, stored contents decoded, new bodies compressed) on a thread
   * of its own: faster where a second core is free, 13-20 MB more RSS (its V8 isolate). Default
   * false: on the calling thread.
   */
  writerThread?: boolean | undefined;
}

/** What a layer rebuild did. */
export interface RebuildResult {
  /** Entries (tar members) of the layer; 0 when it was already present. */
  files: number;
  /** Tar bytes rebuilt; 0 when it was already present. */
  bytes: number;
  /** The store already held the layer (nothing was read). */
  alreadyPresent: boolean;
  /** Times the store lock was released to wait for a chunk. */
  waits: number;
}

/**
 * Builds the baseline entry table of a plan, for rebuilds of several of its layers. Takes no lock
 * and writes nothing the store keeps (an unlinked spill file under pending/). Close it after.
 */
export async function openBaselineTable(store: Store, plan: ApplyPlan, opts: { signal?: AbortSignal | undefined } = {}): Promise<BaselineTable> {
  const dir = pendingRoot(store);
  await mkdir(dir, { recursive: true }).catch((err: unknown) => {
    throw toFerryError(err, 'creating pending/');
  });
  return BaselineTable.build(store, plan.header.baseline, { dir, signal: opts.signal });
}

/** Verifies a rebuilt layer's digest; on a mismatch, names a damaged content if there is one. */
async function checkDigest(store: Store, got: { digest: Digest; size: number }, layer: PlannedLayer, staged: string): Promise<void> {
  if (got.digest === layer.diffId && got.size === layer.size) return;
  // the stored contents were decoded without their own hash (zstd's checksum covers them): a
  // mismatch is the payload's or a damaged content's; re-hashing each content says which
  const r = readSkeletonFile(staged);
  for await (const e of r.entries) {
    if (!e.digest) continue;
    for await (const _ of store.openContent(e.digest, { maxSize: e.size, reuseOutput: true })) {
      // reading is the check (FERRY_ERR_OBJECT_CORRUPT names the content)
    }
  }
  throw new FerryError('FERRY_ERR_DIGEST_MISMATCH', `rebuilt layer hashes to ${got.digest} (${got.size} bytes), expected ${layer.diffId} (${layer.size} bytes)`, { details: { expected: layer.diffId, actual: got.digest } });
}

/** The frame's decoded bytes at most: header groups and records around bodies of a layer this size. */
function frameCap(layer: PlannedLayer): number {
  return 4 * layer.size + (1 << 20);
}

/** Reports the layer's bytes rebuilt so far, about every MiB. */
function reporter(plan: ApplyPlan, layer: PlannedLayer, lb: LayerBuild, onProgress: RebuildOptions['onProgress']): (() => void) | undefined {
  if (!onProgress) return undefined;
  let last = 0;
  return () => {
    if (lb.bytes - last < 1 << 20) return;
    last = lb.bytes;
    onProgress({ phase: `layer ${layer.index + 1}/${plan.layers.length}`, done: lb.bytes, total: layer.size });
  };
}

async function build(store: Store, plan: ApplyPlan, layer: PlannedLayer, chunks: ChunkSource, session: RebuildSession, table: BaselineTable, opts: RebuildOptions): Promise<{ files: number; bytes: number }> {
  const out = openLayerSink(store, session.dir, { thread: opts.writerThread });
  session.attach(out);
  const writer = new SkeletonWriter();
  const staged = tempPathFor(join(session.dir, 'x'));
  const written = pipeline(writer.output, createWriteStream(staged, { flags: 'wx' }));
  written.catch(() => {});
  const drained = (): Promise<void> => Promise.race([writer.drain(), written.then(() => {})]);
  const maxReference = Math.min(opts.maxPatchReference ?? PATCH_REFERENCE_MAX, PATCH_REFERENCE_MAX);
  const lb = new LayerBuild({ store, table, writer, out, layerSize: layer.size, maxReference, drained, signal: opts.signal });
  const progress = reporter(plan, layer, lb, opts.onProgress);
  try {
    const ops = readOps(payloadRange(plan.header, session.guard(chunks), layer.start, layer.end, opts.signal), frameCap(layer), { signal: opts.signal, version: plan.header.version });
    const tail = await lb.run(progress ? tap(ops, progress) : ops);
    const got = await out.finish();
    writer.finish({ tail, diffId: layer.diffId, size: layer.size, count: lb.count });
    await written;
    await fsyncFile(staged);
    await out.flush();
    await checkDigest(store, got, layer, staged);
    await session.commit(staged, store.skeletonPath(layer.diffId));
    return { files: lb.count, bytes: lb.bytes };
  } catch (err) {
    writer.destroy(err as Error);
    await written.catch(() => {});
    // new bodies written so far are kept for a rerun when the lock is still held (gc takes them
    // unless a progress list names them)
    if (session.holdsLock) await out.flush().catch(() => {});
    await rm(staged, { force: true });
    throw toFerryError(err, `rebuilding layer ${layer.diffId}`);
  } finally {
    lb.close();
    await out.close();
  }
}

async function* tap<T>(source: AsyncIterable<T>, each: () => void): AsyncGenerator<T> {
  for await (const v of source) {
    each();
    yield v;
  }
}

/**
 * Rebuilds one layer of a plan into the store. A layer the store already holds returns at once.
 * Takes the store lock (FERRY_ERR_STORE_LOCKED at once when another process holds it) and writes
 * the bundle's pending-apply record, so that gc keeps what this apply has done until commitApply
 * or abandonApply (docs/format.md section 1). Refuses an expired header (FERRY_ERR_BUNDLE_EXPIRED).
 * On failure nothing appears at the layer's skeleton path; contents written stay for a rerun.
 */
export async function rebuildLayer(store: Store, plan: ApplyPlan, layer: PlannedLayer, chunks: ChunkSource, opts: RebuildOptions = {}): Promise<RebuildResult> {
  if (layer.mode !== 'rebuild') throw new FerryError('FERRY_ERR_USAGE', `layer ${layer.diffId} is reused whole, not rebuilt`);
  opts.signal?.throwIfAborted();
  if (await store.hasSkeleton(layer.diffId)) return { files: 0, bytes: 0, alreadyPresent: true, waits: 0 };
  checkExpiry(plan.header, opts.now);
  const session = await RebuildSession.open(store, plan, layer, opts, opts.now);
  try {
    // another process may have finished it before we got the lock
    if (await store.hasSkeleton(layer.diffId)) return { files: 0, bytes: 0, alreadyPresent: true, waits: 0 };
    const table = opts.baseline ?? (await BaselineTable.build(store, plan.header.baseline, { dir: session.dir, signal: opts.signal }));
    try {
      const r = await build(store, plan, layer, chunks, session, table, opts);
      return { ...r, alreadyPresent: false, waits: session.waits };
    } finally {
      if (!opts.baseline) await table.close();
    }
  } finally {
    await session.end();
  }
}
