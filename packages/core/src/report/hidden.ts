/**
 * Which layer entries a later layer hides (OCI image-spec layer.md, "Whiteouts" and "Changesets"):
 * a later entry at the same path replaces the file (two directories merge instead); a later
 * non-directory replaces a directory with everything under it; `.wh.NAME` deletes NAME and
 * everything under it; `.wh..wh..opq` hides everything a lower layer put under its directory.
 * Whiteouts only act on lower layers; within one layer, a later member at the same path wins, as
 * when the tar is extracted.
 */
import type { LayerScan, ScanEntry } from './scan.js';

/** Why an entry is not in the final filesystem. */
export type HiddenReason = 'overwritten' | 'deleted';

/** What upper layers (or later members of the same layer) put over the paths below them. */
class Mask {
  /** Paths present above: true when the upper entry is a directory. */
  private readonly present = new Map<string, boolean>();
  /** Paths deleted above, with everything under them (whiteouts, replaced directories). */
  private readonly gone = new Set<string>();
  /** Directories whose lower contents are hidden (opaque markers). */
  private readonly opaque = new Set<string>();

  /** Why `e` is hidden by what the mask holds, or undefined when it stays visible. */
  hides(e: ScanEntry): HiddenReason | undefined {
    const above = this.present.get(e.path);
    if (above !== undefined && !(above && e.kind === 'dir')) return 'overwritten';
    if (this.gone.has(e.path)) return 'deleted';
    for (let dir = parentOf(e.path); dir !== undefined; dir = parentOf(dir)) {
      if (this.opaque.has(dir) || this.gone.has(dir)) return 'deleted';
    }
    return undefined;
  }

  /** Adds a layer's entries, so that they act on the layers below it. */
  addLayer(entries: ScanEntry[]): void {
    for (const e of entries) {
      if (e.kind === 'whiteout') this.gone.add(e.target!);
      else if (e.kind === 'opaque') this.opaque.add(e.target!);
      else if (e.path !== '') {
        this.present.set(e.path, (this.present.get(e.path) ?? true) && e.kind === 'dir');
        if (e.kind !== 'dir') this.gone.add(e.path);
      }
    }
  }
}

/** The parent directory of a normalised path ('' is the root), undefined for the root itself. */
function parentOf(p: string): string | undefined {
  if (p === '') return undefined;
  const slash = p.lastIndexOf('/');
  return slash === -1 ? '' : p.slice(0, slash);
}

/** True for entries that are markers, not part of the filesystem. */
export function isMarker(e: ScanEntry): boolean {
  return e.kind === 'whiteout' || e.kind === 'opaque';
}

/**
 * For every layer (bottom first), the reason each entry is hidden in the final filesystem, or
 * undefined where it is visible; markers are always undefined.
 */
export function hiddenEntries(layers: LayerScan[]): (HiddenReason | undefined)[][] {
  const mask = new Mask();
  const out: (HiddenReason | undefined)[][] = new Array(layers.length);
  for (let i = layers.length - 1; i >= 0; i--) {
    const entries = layers[i]!.entries;
    const lastAt = new Map<string, number>();
    entries.forEach((e, j) => {
      if (!isMarker(e)) lastAt.set(e.path, j);
    });
    out[i] = entries.map((e, j) => {
      if (isMarker(e)) return undefined;
      const upper = mask.hides(e);
      if (upper) return upper;
      const last = lastAt.get(e.path)!;
      // a later member of the same tar at the same path replaces this one (directories merge)
      return last !== j && !(e.kind === 'dir' && entries[last]!.kind === 'dir') ? 'overwritten' : undefined;
    });
    mask.addLayer(entries);
  }
  return out;
}
