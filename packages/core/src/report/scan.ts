/**
 * Reading a stored layer's skeleton into the compact entry list the waste report works on: no
 * header bytes, paths normalised (tars write "./a", "/a" and "a" for the same file), OCI
 * whiteouts recognised (image-spec layer.md, "Whiteouts").
 */
import type { Digest } from '../util/digest.js';
import { normalizePath } from '../tar/header.js';
import type { Store } from '../store/store.js';

/** What a tar member is, for the report. */
export type ScanKind = 'file' | 'dir' | 'link' | 'whiteout' | 'opaque' | 'other';

/** One tar member of a layer, as the waste report needs it. */
export interface ScanEntry {
  /** Normalised path (no leading "./" or "/", no trailing "/"). */
  path: string;
  kind: ScanKind;
  /** Body bytes (0 for anything without a body). */
  size: number;
  /** Body digest, present exactly when size > 0. */
  digest?: Digest | undefined;
  /**
   * For a whiteout, the path it deletes (with everything under it); for an opaque marker, the
   * directory whose lower-layer contents it hides.
   */
  target?: string | undefined;
}

/** A layer read for the report. */
export interface LayerScan {
  diffId: Digest;
  /** Size of the layer tar in bytes. */
  tarBytes: number;
  entries: ScanEntry[];
}

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';
/** Regular file typeflags ('\0' is the v7 form, '7' contiguous, 'S' GNU sparse). */
const FILE_TYPES = new Set(['0', '\0', '7', 'S']);
const LINK_TYPES = new Set(['1', '2']);

function splitPath(p: string): { dir: string; base: string } {
  const slash = p.lastIndexOf('/');
  return slash === -1 ? { dir: '', base: p } : { dir: p.slice(0, slash), base: p.slice(slash + 1) };
}

/** Classifies a tar member; `rawPath` is the path as written in the tar. */
export function classifyEntry(rawPath: string, type: string): { path: string; kind: ScanKind; target?: string } {
  const path = normalizePath(rawPath);
  const { dir, base } = splitPath(path);
  if (base === OPAQUE) return { path, kind: 'opaque', target: dir };
  // other ".wh..wh." names are aufs metadata (hardlink farms), not deletions
  if (base.startsWith(`${WH}${WH}`)) return { path, kind: 'other' };
  if (base.startsWith(WH)) {
    const name = base.slice(WH.length);
    return { path, kind: 'whiteout', target: dir === '' ? name : `${dir}/${name}` };
  }
  // a v7 header marks a directory by a trailing slash only
  if (type === '5' || type === 'D' || (FILE_TYPES.has(type) && rawPath.endsWith('/'))) return { path, kind: 'dir' };
  if (FILE_TYPES.has(type)) return { path, kind: 'file' };
  if (LINK_TYPES.has(type)) return { path, kind: 'link' };
  return { path, kind: 'other' };
}

/** Reads one stored layer's skeleton into a LayerScan. */
export async function scanLayer(store: Store, diffId: Digest, signal?: AbortSignal): Promise<LayerScan> {
  const reader = await store.openSkeleton(diffId);
  const entries: ScanEntry[] = [];
  for await (const e of reader.entries) {
    signal?.throwIfAborted();
    const c = classifyEntry(e.path, e.type);
    entries.push({ ...c, size: e.digest ? e.size : 0, digest: e.digest });
  }
  return { diffId, tarBytes: reader.trailer().size, entries };
}

/** Reads layers once per report, however many images share them. */
export class LayerCache {
  private readonly layers = new Map<Digest, Promise<LayerScan>>();

  constructor(private readonly store: Store, private readonly signal?: AbortSignal) {}

  /** The scan of a layer (read on first use). */
  get(diffId: Digest): Promise<LayerScan> {
    let p = this.layers.get(diffId);
    if (!p) {
      p = scanLayer(this.store, diffId, this.signal);
      this.layers.set(diffId, p);
    }
    return p;
  }
}
