/**
 * Cross-image parts of the waste report: contents an image has in common with the store's other
 * images, and what the store's content-level deduplication saves over keeping whole layers
 * (DESIGN.md section 4: "contents are stored once per store, whatever image or layer they came from").
 */
import { stat } from 'node:fs/promises';
import type { Digest } from '../util/digest.js';
import type { Store, StoredImage } from '../store/store.js';
import type { LayerCache, LayerScan } from './scan.js';

/** Contents an image shares with the store's other images. */
export interface SharedReport {
  /** Layers of this image that another image also has (whole-layer sharing). */
  layers: number;
  /** Distinct contents of this image found in at least one other image, and their bytes. */
  contents: number;
  bytes: number;
  /** Per other image (by ref; aliases of this very image are left out), sorted by bytes. */
  images: { ref: string; contents: number; bytes: number }[];
}

/** What the whole store holds and saves. */
export interface StoreSavings {
  /** Refs, and distinct layers they use. */
  images: number;
  layers: number;
  /** Sum of file bodies over the distinct layers: what a layer-level store keeps. */
  layerBodyBytes: number;
  /** Distinct contents and their bytes: what ferry keeps (before compression). */
  uniqueContents: number;
  uniqueBytes: number;
  /** layerBodyBytes - uniqueBytes. */
  savedBytes: number;
  /** Bytes the contents take on disk (zstd-compressed); missing contents count 0. */
  storedBytes: number;
}

function contentsOf(scans: LayerScan[]): Map<Digest, number> {
  const out = new Map<Digest, number>();
  for (const s of scans) for (const e of s.entries) if (e.digest) out.set(e.digest, e.size);
  return out;
}

/** What `image` (whose layers are `scans`) shares with `others`. */
export async function sharedContents(image: StoredImage, scans: LayerScan[], others: StoredImage[], cache: LayerCache): Promise<SharedReport> {
  const mine = contentsOf(scans);
  const myLayers = new Set(image.layers.map((l) => l.diffId));
  const sharedLayers = new Set<Digest>();
  const shared = new Set<Digest>();
  const images: SharedReport['images'] = [];
  for (const other of others) {
    for (const l of other.layers) if (myLayers.has(l.diffId)) sharedLayers.add(l.diffId);
    const theirs = contentsOf(await Promise.all(other.layers.map((l) => cache.get(l.diffId))));
    let contents = 0;
    let bytes = 0;
    for (const [d, size] of mine) {
      if (!theirs.has(d)) continue;
      contents++;
      bytes += size;
      shared.add(d);
    }
    images.push({ ref: other.ref, contents, bytes });
  }
  images.sort((a, b) => b.bytes - a.bytes || a.ref.localeCompare(b.ref));
  const bytes = [...shared].reduce((a, d) => a + mine.get(d)!, 0);
  return { layers: sharedLayers.size, contents: shared.size, bytes, images };
}

async function storedSize(store: Store, digests: Digest[]): Promise<number> {
  let total = 0;
  for (let i = 0; i < digests.length; i += 64) {
    const sizes = await Promise.all(digests.slice(i, i + 64).map((d) => stat(store.contentPath(d)).then((s) => s.size, () => 0)));
    total += sizes.reduce((a, n) => a + n, 0);
  }
  return total;
}

/** The store-wide savings over every image in `all`. */
export async function storeSavings(store: Store, all: StoredImage[], cache: LayerCache): Promise<StoreSavings> {
  const layerIds = [...new Set(all.flatMap((i) => i.layers.map((l) => l.diffId)))];
  const scans: LayerScan[] = [];
  for (const d of layerIds) scans.push(await cache.get(d)); // one skeleton open at a time
  let layerBodyBytes = 0;
  for (const s of scans) for (const e of s.entries) layerBodyBytes += e.size;
  const unique = contentsOf(scans);
  const uniqueBytes = [...unique.values()].reduce((a, n) => a + n, 0);
  return {
    images: all.length,
    layers: layerIds.length,
    layerBodyBytes,
    uniqueContents: unique.size,
    uniqueBytes,
    savedBytes: layerBodyBytes - uniqueBytes,
    storedBytes: await storedSize(store, [...unique.keys()]),
  };
}
