/**
 * Step one of an apply (DESIGN.md section 6): every check that comes "before any chunk", and the
 * chunks each layer to rebuild needs. It only reads the store, so an agent can plan as soon as it
 * has a verified header and before it fetches a single chunk.
 */
import { statfs } from 'node:fs/promises';
import { FerryError, toFerryError } from '../errors.js';
import { sha256, type Digest } from '../util/digest.js';
import { configDiffIds, parseJsonObject, toDescriptor, toDescriptors } from '../image/json.js';
import { MT } from '../image/media.js';
import { parseRef } from '../store/refs.js';
import type { Store } from '../store/store.js';
import { checkChannel, checkExpiry, type BundleHeader, type VerifiedHeader } from './header.js';

/** One target layer of a plan. */
export interface PlannedLayer {
  /** Position in the image (0 is the bottom layer). */
  index: number;
  diffId: Digest;
  /** Uncompressed tar size. */
  size: number;
  mode: 'reuse' | 'rebuild';
  /** The layer's frame in the payload: bytes [start, end) (empty for reused layers). */
  start: number;
  end: number;
  /** Indexes of the chunks that hold the frame, ascending (empty for reused layers). */
  chunks: number[];
  /** The store held the layer when the plan was made (a rebuild then returns at once). */
  present: boolean;
}

/** What planApply decided; the input of rebuildLayer and commitApply. */
export interface ApplyPlan {
  /** sha256 of the header envelope: names the pending-apply record. */
  bundleId: Digest;
  header: VerifiedHeader;
  /** The ref the image is installed under. */
  ref: string;
  channel: string;
  release: number;
  /** Every target layer, in image order. */
  layers: PlannedLayer[];
  /** The layers still to rebuild (mode 'rebuild', not present), in image order. */
  rebuild: PlannedLayer[];
  /** The sorted union of the chunk indexes those layers need. */
  chunks: number[];
  /** Payload bytes those layers read. */
  payloadBytes: number;
  /** Bytes of store data the rebuilds may still write (the header's `need`, less what is rebuilt). */
  need: number;
}

/** Options of planApply. */
export interface PlanOptions {
  /** Install under this ref instead of the one the release statement names. */
  ref?: string | undefined;
  /** Refuse a header for another channel (FERRY_ERR_BUNDLE_CHANNEL). */
  channel?: string | undefined;
  /** Unix seconds (tests inject it); expiry is checked against it. */
  now?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** Checks that the header's layer plan is the target manifest's layer list. */
export function checkTarget(h: BundleHeader): void {
  const m = parseJsonObject(Buffer.from(h.manifest), 'bundle target manifest');
  if (m.mediaType !== MT.ociManifest) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', 'bundle target manifest is not an OCI manifest');
  const config = toDescriptor(m.config, 'bundle target manifest config');
  if (config.digest !== sha256(h.config)) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', 'bundle target manifest names another config');
  const layers = toDescriptors(m.layers, 'bundle target manifest layers');
  const diffIds = configDiffIds(parseJsonObject(Buffer.from(h.config), 'bundle target config'), 'bundle target config');
  const same = layers.length === h.layers.length && layers.every((l, i) => l.mediaType === MT.ociLayer && l.digest === h.layers[i]!.diffId && l.size === h.layers[i]!.size && diffIds[i] === l.digest);
  if (!same) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', 'bundle layer plan does not match its target manifest');
}

/** Refuses a release not higher than the one the channel has installed: FERRY_ERR_BUNDLE_ROLLBACK. */
export async function checkRollback(store: Store, h: BundleHeader): Promise<void> {
  const installed = await store.getChannel(h.release.channel);
  if (installed && h.release.release <= installed.release) {
    throw new FerryError('FERRY_ERR_BUNDLE_ROLLBACK', `channel ${h.release.channel} has release ${installed.release} installed; this bundle is release ${h.release.release}`, { details: { installed: installed.release, offered: h.release.release } });
  }
}

/** Indexes of the chunks holding payload bytes [start, end). */
export function chunksOf(chunkSize: number, start: number, end: number): number[] {
  const out: number[] = [];
  if (end <= start) return out;
  for (let i = Math.floor(start / chunkSize); i <= Math.floor((end - 1) / chunkSize); i++) out.push(i);
  return out;
}

/** Refuses to start when the store's file system has less room than `need` bytes (with a margin). */
async function checkRoom(store: Store, need: number): Promise<void> {
  if (need === 0) return;
  let free: number;
  try {
    const fs = await statfs(store.root);
    free = fs.bavail * fs.bsize;
  } catch (err) {
    throw toFerryError(err, 'checking free space');
  }
  const want = Math.ceil(need * 1.1) + 1024 * 1024;
  if (free < want) {
    throw new FerryError('FERRY_ERR_DISK_FULL', `the store's disk has ${free} bytes free; applying this bundle needs up to ${want}`, { details: { free, need: want } });
  }
}

async function planLayers(store: Store, h: BundleHeader): Promise<PlannedLayer[]> {
  const out: PlannedLayer[] = [];
  for (const [index, l] of h.layers.entries()) {
    const present = await store.hasSkeleton(l.diffId);
    const chunks = l.mode === 'rebuild' ? chunksOf(h.chunkSize, l.start, l.end) : [];
    out.push({ index, diffId: l.diffId, size: l.size, mode: l.mode, start: l.start, end: l.end, chunks, present });
  }
  return out;
}

/** The baseline layers and reused layers the store lacks: FERRY_ERR_BASELINE_MISSING naming them all. */
async function checkBaseline(store: Store, baseline: readonly Digest[], layers: PlannedLayer[]): Promise<void> {
  const missing = new Set<Digest>();
  for (const l of layers) if (l.mode === 'reuse' && !l.present) missing.add(l.diffId);
  for (const d of baseline) if (!missing.has(d) && !(await store.hasSkeleton(d))) missing.add(d);
  if (missing.size > 0) {
    const list = [...missing];
    throw new FerryError('FERRY_ERR_BASELINE_MISSING', `the store lacks ${list.length} layer(s) the bundle needs: ${list.join(', ')}`, { details: { missing: list } });
  }
}

/**
 * Plans an apply: refuses an expired header, a foreign channel, an invalid ref, a layer plan that
 * is not the target manifest's, a rollback, a missing baseline or too little disk room (each with
 * its one code), and returns the layers to rebuild with the chunks each needs. Reads the store,
 * never writes to it: a refused plan leaves every file as it was.
 */
export async function planApply(store: Store, header: VerifiedHeader, opts: PlanOptions = {}): Promise<ApplyPlan> {
  opts.signal?.throwIfAborted();
  checkExpiry(header, opts.now);
  checkChannel(header, opts.channel);
  const ref = opts.ref ?? header.release.ref;
  parseRef(ref);
  checkTarget(header);
  await checkRollback(store, header);
  const layers = await planLayers(store, header);
  const rebuild = layers.filter((l) => l.mode === 'rebuild' && !l.present);
  // the baseline is read only by rebuilds; reused layers must be present whatever is left to do
  await checkBaseline(store, rebuild.length > 0 ? header.baseline : [], layers);
  const all = layers.filter((l) => l.mode === 'rebuild').reduce((a, l) => a + l.size, 0);
  const left = rebuild.reduce((a, l) => a + l.size, 0);
  const need = all === 0 ? 0 : Math.ceil((header.need * left) / all);
  await checkRoom(store, need);
  const chunks = [...new Set(rebuild.flatMap((l) => l.chunks))].sort((a, b) => a - b);
  const payloadBytes = rebuild.reduce((a, l) => a + (l.end - l.start), 0);
  return { bundleId: header.id, header, ref, channel: header.release.channel, release: header.release.release, layers, rebuild, chunks, payloadBytes, need };
}
