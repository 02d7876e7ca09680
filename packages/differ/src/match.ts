/**
 * Lookup tables over the baseline (DESIGN.md section 5, "Matching"): exact content anywhere in the
 * baseline; a single similar file (same path, same path with version numbers normalised, same
 * basename with a similar size); and every body of a unit (package or directory, units.ts), from
 * which reference sets are drawn.
 */
import { normalizePath, type BaselineEntry, type Digest, type Store } from '@ferry/core';
import { DpkgOwners, basename, dpkgListPackage, dpkgListPaths, unitOf, versionless } from './units.js';


/** Reads the dpkg file lists among `entries` (bodies from the store) into `owners`. */
export async function readDpkgLists(store: Store, entries: Iterable<{ path: string; digest?: Digest | undefined; size: number }>, owners: DpkgOwners): Promise<void> {
  for (const e of entries) {
    const pkg = dpkgListPackage(e.path);
    // a list is text of a few KB to a few MB; larger ones are not lists
    if (pkg === undefined || !e.digest || e.size > 64 * 1024 * 1024) continue;
    owners.add(pkg, dpkgListPaths(await store.readContent(e.digest, e.size)));
  }
}

/** Lookup tables over the baseline entry table. */
export class BaselineIndex {
  private readonly byDigest = new Map<Digest, number>();
  private readonly byPath = new Map<string, number>();
  private readonly byVersionless = new Map<string, number>();
  private readonly byBasename = new Map<string, number[]>();
  private readonly byUnit = new Map<string, number[]>();

  /** `owners`: the baseline's dpkg file lists (readDpkgLists), for Debian package units. */
  constructor(
    readonly entries: BaselineEntry[],
    readonly owners = new DpkgOwners(),
  ) {
    entries.forEach((e, i) => {
      const p = normalizePath(e.path);
      // later layers win: a path's newest version is the one the device sees
      this.byPath.set(p, i);
      if (!e.digest) return;
      const first = !this.byDigest.has(e.digest);
      if (first) this.byDigest.set(e.digest, i);
      this.byVersionless.set(versionless(p), i);
      push(this.byBasename, basename(p), i);
      // one entry per distinct body: a reference set never needs the same bytes twice
      if (first && e.size > 0) push(this.byUnit, unitOf(p, owners), i);
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

  /** Entries with distinct bodies in a unit (units.ts), in baseline order. */
  unit(key: string): readonly number[] {
    return this.byUnit.get(key) ?? [];
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

function push<K>(m: Map<K, number[]>, k: K, v: number): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}
