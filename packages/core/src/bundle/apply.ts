/**
 * The applier (DESIGN.md section 6): verify the header before anything else, refuse rollback,
 * expiry and foreign channels, check the baseline, rebuild each layer (verified against its
 * diff_id), then move the ref atomically. A rerun after a crash skips layers already rebuilt.
 */
import { statfs } from 'node:fs/promises';
import { FerryError } from '../errors.js';
import { sha256, type Digest } from '../util/digest.js';
import { configDiffIds, parseJsonObject, toDescriptor, toDescriptors } from '../image/json.js';
import { MT } from '../image/media.js';
import type { Progress } from '../store/import.js';
import { parseRef } from '../store/refs.js';
import type { Store } from '../store/store.js';
import { loadBaseline } from './baseline.js';
import { chunkLength, payloadRange, verifyChunk, type BundleSource, type ChunkSource } from './container.js';
import { verifyHeader, type BundleHeader } from './header.js';
import type { TrustPolicy } from './keys.js';
import { applyLayer } from './apply-layer.js';
import { DEFAULT_MAX_PATCH_REFERENCE } from './reference.js';

/** Options for applyBundle. */
export interface ApplyOptions {
  trust: TrustPolicy;
  /** Refuse headers for other channels. */
  channel?: string | undefined;
  /** Install under this ref instead of the one the release statement names. */
  ref?: string | undefined;
  /** Unix seconds (tests inject it). */
  now?: number;
  /** Largest patch reference (set) held in memory (default DEFAULT_MAX_PATCH_REFERENCE, the differ's). */
  maxPatchReference?: number;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

/** What an apply did. */
export interface ApplyResult {
  ref: string;
  channel: string;
  release: number;
  manifestDigest: Digest;
  configDigest: Digest;
  layers: { diffId: Digest; mode: 'reuse' | 'rebuild'; alreadyPresent: boolean; files?: number }[];
  payloadBytes: number;
}

/** Checks that the header's layer plan is the target manifest's layer list. */
function checkTarget(h: BundleHeader): void {
  const m = parseJsonObject(Buffer.from(h.manifest), 'bundle target manifest');
  if (m.mediaType !== MT.ociManifest) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', 'bundle target manifest is not an OCI manifest');
  const config = toDescriptor(m.config, 'bundle target manifest config');
  if (config.digest !== sha256(h.config)) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', 'bundle target manifest names another config');
  const layers = toDescriptors(m.layers, 'bundle target manifest layers');
  const diffIds = configDiffIds(parseJsonObject(Buffer.from(h.config), 'bundle target config'), 'bundle target config');
  const same = layers.length === h.layers.length && layers.every((l, i) => l.mediaType === MT.ociLayer && l.digest === h.layers[i]!.diffId && l.size === h.layers[i]!.size && diffIds[i] === l.digest);
  if (!same) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', 'bundle layer plan does not match its target manifest');
}

/** Refuses to start when the store's file system has less room than the header says it needs. */
async function checkRoom(store: Store, need: number): Promise<void> {
  if (need === 0) return;
  const fs = await statfs(store.root);
  const free = fs.bavail * fs.bsize;
  const want = Math.ceil(need * 1.1) + 1024 * 1024;
  if (free < want) {
    throw new FerryError('FERRY_ERR_DISK_FULL', `the store's disk has ${free} bytes free; applying this bundle needs up to ${want}`, { details: { free, need: want } });
  }
}

/**
 * Reads and checks every chunk the layers to rebuild need, before any layer is rebuilt (DESIGN.md
 * section 8): a bad or missing chunk in the last layer must not leave the first layers committed.
 * The rebuild reads (and checks) the chunks again; the payload is small next to what it rebuilds.
 */
async function verifyChunks(h: BundleHeader, chunks: ChunkSource, layers: BundleHeader['layers'], signal?: AbortSignal): Promise<void> {
  const needed = new Set<number>();
  for (const l of layers) {
    if (l.end <= l.start) continue;
    for (let i = Math.floor(l.start / h.chunkSize); i <= Math.floor((l.end - 1) / h.chunkSize); i++) needed.add(i);
  }
  for (const i of [...needed].sort((a, b) => a - b)) {
    signal?.throwIfAborted();
    const size = chunkLength(h, i);
    verifyChunk(await chunks.readChunk(i, h.chunks[i]!, size, signal), i, h.chunks[i]!, size);
  }
}

/** Applies a bundle to a store. */
export async function applyBundle(store: Store, source: BundleSource, opts: ApplyOptions): Promise<ApplyResult> {
  const h = verifyHeader(source.headerBytes, { trust: opts.trust, now: opts.now, channel: opts.channel });
  const ref = opts.ref ?? h.release.ref;
  parseRef(ref);
  checkTarget(h);
  return store.withLock(async () => {
    const installed = await store.getChannel(h.release.channel);
    if (installed && h.release.release <= installed.release) {
      throw new FerryError('FERRY_ERR_BUNDLE_ROLLBACK', `channel ${h.release.channel} has release ${installed.release} installed; this bundle is release ${h.release.release}`, { details: { installed: installed.release, offered: h.release.release } });
    }
    const chunks = source.chunks(h);
    const todo: typeof h.layers = [];
    const result: ApplyResult['layers'] = [];
    const missing: Digest[] = [];
    for (const l of h.layers) {
      const present = await store.hasSkeleton(l.diffId);
      if (l.mode === 'reuse' && !present) missing.push(l.diffId);
      if (l.mode === 'rebuild' && !present) todo.push(l);
      result.push({ diffId: l.diffId, mode: l.mode, alreadyPresent: present });
    }
    if (missing.length > 0) throw new FerryError('FERRY_ERR_BASELINE_MISSING', `the store lacks layer(s) the bundle reuses: ${missing.join(', ')}`, { details: { missing } });
    await checkRoom(store, todo.length > 0 ? h.need : 0);
    const baseline = todo.length > 0 ? await loadBaseline(store, h.baseline) : [];
    await verifyChunks(h, chunks, todo, opts.signal);
    const total = todo.reduce((a, l) => a + (l.end - l.start), 0);
    let done = 0;
    for (const [i, l] of todo.entries()) {
      opts.signal?.throwIfAborted();
      opts.onProgress?.({ phase: `layer ${i + 1}/${todo.length}`, done, total });
      const { files } = await applyLayer(store, l, payloadRange(h, chunks, l.start, l.end, opts.signal), baseline, { maxPatchReference: opts.maxPatchReference ?? DEFAULT_MAX_PATCH_REFERENCE });
      done += l.end - l.start;
      result.find((r) => r.diffId === l.diffId)!.files = files;
    }
    opts.onProgress?.({ phase: 'commit', done: total, total });
    const configDigest = await store.putBlob(h.config);
    const manifestDigest = await store.putBlob(h.manifest);
    await store.setRef(ref, manifestDigest);
    await store.setChannel(h.release.channel, { release: h.release.release, ref, manifest: manifestDigest, installed: new Date().toISOString() });
    return { ref, channel: h.release.channel, release: h.release.release, manifestDigest, configDigest, layers: result, payloadBytes: total };
  });
}
