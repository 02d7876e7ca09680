/**
 * The waste report behind `ferry inspect`: where an image's bytes go and how much of them a
 * content-addressed store (DESIGN.md section 4) or a bundle (section 5) does not need to carry
 * again. Everything is computed from the stored skeletons; no content is read.
 */
import type { Digest } from '../util/digest.js';
import type { Store, StoredImage } from '../store/store.js';
import { hiddenEntries, type HiddenReason } from './hidden.js';
import { LayerCache, type LayerScan } from './scan.js';
import { storeSavings, sharedContents, type SharedReport, type StoreSavings } from './sharing.js';

export type { SharedReport, StoreSavings } from './sharing.js';
export type { HiddenReason } from './hidden.js';

/** Options for wasteReport. */
export interface WasteOptions {
  /** How many of the largest files and duplicate groups to list (default 10). */
  top?: number;
  signal?: AbortSignal;
}

/** Bytes and files a layer loses to later layers. */
export interface HiddenTotals {
  /** Non-directory entries hidden in the final filesystem, and their body bytes. */
  files: number;
  bytes: number;
  /** Of those: replaced by a later entry at the same path. */
  overwritten: { files: number; bytes: number };
  /** Of those: deleted by a whiteout, an opaque directory, or a parent replaced by a non-directory. */
  deleted: { files: number; bytes: number };
}

/** One layer of the image. */
export interface LayerWaste {
  /** Position in the image, 0 = bottom. */
  index: number;
  diffId: Digest;
  /** Size of the layer tar. */
  tarBytes: number;
  /** Tar members, regular files among them, and the sum of file bodies. */
  entries: number;
  files: number;
  bodyBytes: number;
  /** Whiteout and opaque-directory markers the layer carries. */
  whiteouts: number;
  opaqueDirs: number;
  /** What later layers (or later members of this layer) hide of this layer. */
  hidden: HiddenTotals;
}

/** Copies of one content at several paths or layers. */
export interface DuplicateGroup {
  digest: Digest;
  size: number;
  copies: { path: string; layer: number }[];
  /** size * (copies - 1). */
  wastedBytes: number;
}

/** One of the largest files. */
export interface LargeFile {
  path: string;
  size: number;
  layer: number;
  digest: Digest;
  /** Hidden in the final filesystem (its bytes are carried for nothing). */
  hidden: boolean;
}

/** The waste report of one image. */
export interface ImageWaste {
  ref: string;
  manifestDigest: Digest;
  configDigest: Digest;
  layers: LayerWaste[];
  totals: {
    tarBytes: number;
    entries: number;
    files: number;
    bodyBytes: number;
    hidden: HiddenTotals;
    /** Files and body bytes of the final filesystem. */
    visibleFiles: number;
    visibleBytes: number;
  };
  /**
   * Contents carried more than once by the image's layers (hidden copies included: they are in
   * the tars all the same). `files` counts the extra copies.
   */
  duplicates: { groups: number; files: number; wastedBytes: number; top: DuplicateGroup[] };
  /** Contents this image has in common with the store's other images. */
  shared: SharedReport;
  /** What content deduplication saves within this image: body bytes vs distinct content bytes. */
  dedup: { bodyBytes: number; uniqueContents: number; uniqueBytes: number; savedBytes: number };
  largest: LargeFile[];
}

/** The report: one entry per image asked for, and the whole store's savings. */
export interface WasteReport {
  images: ImageWaste[];
  store: StoreSavings;
}

function emptyHidden(): HiddenTotals {
  return { files: 0, bytes: 0, overwritten: { files: 0, bytes: 0 }, deleted: { files: 0, bytes: 0 } };
}

function addHidden(to: HiddenTotals, from: HiddenTotals): void {
  to.files += from.files;
  to.bytes += from.bytes;
  for (const k of ['overwritten', 'deleted'] as const) {
    to[k].files += from[k].files;
    to[k].bytes += from[k].bytes;
  }
}

function layerWaste(scan: LayerScan, index: number, reasons: (HiddenReason | undefined)[]): LayerWaste {
  const l: LayerWaste = { index, diffId: scan.diffId, tarBytes: scan.tarBytes, entries: scan.entries.length, files: 0, bodyBytes: 0, whiteouts: 0, opaqueDirs: 0, hidden: emptyHidden() };
  scan.entries.forEach((e, j) => {
    if (e.kind === 'file') l.files++;
    else if (e.kind === 'whiteout') l.whiteouts++;
    else if (e.kind === 'opaque') l.opaqueDirs++;
    l.bodyBytes += e.size;
    const why = reasons[j];
    if (why && e.kind !== 'dir') {
      l.hidden.files++;
      l.hidden.bytes += e.size;
      l.hidden[why].files++;
      l.hidden[why].bytes += e.size;
    }
  });
  return l;
}

function duplicates(scans: LayerScan[], top: number): ImageWaste['duplicates'] {
  const byDigest = new Map<Digest, DuplicateGroup>();
  scans.forEach((s, layer) => {
    for (const e of s.entries) {
      if (!e.digest) continue;
      const g = byDigest.get(e.digest) ?? { digest: e.digest, size: e.size, copies: [], wastedBytes: 0 };
      g.copies.push({ path: e.path, layer });
      byDigest.set(e.digest, g);
    }
  });
  const groups = [...byDigest.values()].filter((g) => g.copies.length > 1);
  for (const g of groups) g.wastedBytes = g.size * (g.copies.length - 1);
  groups.sort((a, b) => b.wastedBytes - a.wastedBytes || a.digest.localeCompare(b.digest));
  return {
    groups: groups.length,
    files: groups.reduce((a, g) => a + g.copies.length - 1, 0),
    wastedBytes: groups.reduce((a, g) => a + g.wastedBytes, 0),
    top: groups.slice(0, top),
  };
}

function largest(scans: LayerScan[], reasons: (HiddenReason | undefined)[][], top: number): LargeFile[] {
  const all: LargeFile[] = [];
  scans.forEach((s, layer) => {
    s.entries.forEach((e, j) => {
      if (e.digest) all.push({ path: e.path, size: e.size, layer, digest: e.digest, hidden: reasons[layer]![j] !== undefined });
    });
  });
  all.sort((a, b) => b.size - a.size || a.path.localeCompare(b.path) || a.layer - b.layer);
  return all.slice(0, top);
}

function dedup(scans: LayerScan[]): ImageWaste['dedup'] {
  const unique = new Map<Digest, number>();
  let bodyBytes = 0;
  for (const s of scans) {
    for (const e of s.entries) {
      if (!e.digest) continue;
      bodyBytes += e.size;
      unique.set(e.digest, e.size);
    }
  }
  const uniqueBytes = [...unique.values()].reduce((a, n) => a + n, 0);
  return { bodyBytes, uniqueContents: unique.size, uniqueBytes, savedBytes: bodyBytes - uniqueBytes };
}

async function imageWaste(image: StoredImage, cache: LayerCache, others: StoredImage[], top: number): Promise<ImageWaste> {
  const scans = await Promise.all(image.layers.map((l) => cache.get(l.diffId)));
  const reasons = hiddenEntries(scans);
  const layers = scans.map((s, i) => layerWaste(s, i, reasons[i]!));
  const hidden = emptyHidden();
  for (const l of layers) addHidden(hidden, l.hidden);
  let visibleFiles = 0;
  let visibleBytes = 0;
  scans.forEach((s, i) => {
    s.entries.forEach((e, j) => {
      if (e.kind === 'file' && reasons[i]![j] === undefined) {
        visibleFiles++;
        visibleBytes += e.size;
      }
    });
  });
  const sum = (k: 'tarBytes' | 'entries' | 'files' | 'bodyBytes'): number => layers.reduce((a, l) => a + l[k], 0);
  return {
    ref: image.ref,
    manifestDigest: image.manifestDigest,
    configDigest: image.configDigest,
    layers,
    totals: { tarBytes: sum('tarBytes'), entries: sum('entries'), files: sum('files'), bodyBytes: sum('bodyBytes'), hidden, visibleFiles, visibleBytes },
    duplicates: duplicates(scans, top),
    shared: await sharedContents(image, scans, others, cache),
    dedup: dedup(scans),
    largest: largest(scans, reasons, top),
  };
}

/**
 * Computes the waste report of `refs` (each must be in the store; unknown: FERRY_ERR_REF_NOT_FOUND).
 * Reads every stored image's skeletons once, to compare the images with each other.
 */
export async function wasteReport(store: Store, refs: string[], opts: WasteOptions = {}): Promise<WasteReport> {
  const top = opts.top ?? 10;
  const cache = new LayerCache(store, opts.signal);
  const targets = await Promise.all(refs.map((r) => store.resolve(r)));
  const all = await Promise.all((await store.listRefs()).map((r) => store.imageByManifest(r.ref, r.manifest)));
  const images: ImageWaste[] = [];
  for (const image of targets) {
    opts.signal?.throwIfAborted();
    const others = all.filter((o) => o.manifestDigest !== image.manifestDigest);
    images.push(await imageWaste(image, cache, others, top));
  }
  return { images, store: await storeSavings(store, all, cache) };
}
