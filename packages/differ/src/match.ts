/**
 * Matching target files to baseline sources (DESIGN.md section 5): exact content anywhere in the
 * baseline, else a similar file to patch from: same path, else the same path with version numbers
 * normalised, else the same basename with a similar size.
 */
import { normalizePath, type BaselineEntry, type Digest } from '@ferry/core';

/** Version numbers in paths (`foo-1.2.3`, `python3.11`, `libssl.so.3`) collapse to `#`. */
export function versionless(path: string): string {
  return path.replace(/\d+(?:[._~+-]\d+)*/g, '#');
}

function basename(path: string): string {
  const i = path.lastIndexOf('/');
  return i === -1 ? path : path.slice(i + 1);
}

/** Lookup tables over the baseline entry table. */
export class BaselineIndex {
  private readonly byDigest = new Map<Digest, number>();
  private readonly byPath = new Map<string, number>();
  private readonly byVersionless = new Map<string, number>();
  private readonly byBasename = new Map<string, number[]>();

  constructor(readonly entries: BaselineEntry[]) {
    entries.forEach((e, i) => {
      const p = normalizePath(e.path);
      // later layers win: a path's newest version is the one the device sees
      this.byPath.set(p, i);
      if (!e.digest) return;
      if (!this.byDigest.has(e.digest)) this.byDigest.set(e.digest, i);
      this.byVersionless.set(versionless(p), i);
      const b = basename(p);
      const list = this.byBasename.get(b);
      if (list) list.push(i);
      else this.byBasename.set(b, [i]);
    });
  }

  /** An entry holding this exact content. */
  content(d: Digest): number | undefined {
    return this.byDigest.get(d);
  }

  /** The newest baseline entry at this path. */
  path(p: string): number | undefined {
    return this.byPath.get(normalizePath(p));
  }

  /**
   * A baseline entry whose body is a good patch reference for a target body at `path` of `size`
   * bytes, or undefined. References over `maxRef` bytes are never chosen (agent memory bound).
   */
  similar(path: string, size: number, maxRef: number): number | undefined {
    const p = normalizePath(path);
    const ok = (i: number | undefined): i is number => {
      if (i === undefined) return false;
      const e = this.entries[i]!;
      return e.digest !== undefined && e.size > 0 && e.size <= maxRef;
    };
    const same = this.byPath.get(p);
    if (ok(same)) return same;
    const v = this.byVersionless.get(versionless(p));
    if (ok(v)) return v;
    let best: number | undefined;
    let bestRatio = 0;
    for (const i of this.byBasename.get(basename(p)) ?? []) {
      if (!ok(i)) continue;
      const s = this.entries[i]!.size;
      const ratio = Math.min(s, size) / Math.max(s, size);
      if (ratio >= 0.5 && ratio > bestRatio) {
        best = i;
        bestRatio = ratio;
      }
    }
    return best;
  }
}
