/**
 * Making a layer hit its byte budget: the "structure" (packages, modules, docs) is generated with
 * natural sizes, shrunk if it alone would overflow, and the rest of the budget is filled with a
 * few large files (libraries, data, assets), the way real images get most of their bytes.
 */
import { bodySize } from './body.js';
import type { Rng } from './rng.js';
import { tarEntrySize, tarSize, type FileEntry, type TreeBuilder } from './tree.js';

const KIB = 1024;
const MIB = 1024 * 1024;

/** Scales generated (non-literal, non-empty) bodies down so the layer tar is at most `maxBytes`. */
export function shrinkBodies(b: TreeBuilder, maxBytes: number): void {
  const entries = b.finish();
  const total = tarSize(entries);
  if (total <= maxBytes) return;
  let scalable = 0;
  for (const e of entries) if (e.type === 'file' && e.body.kind !== 'literal') scalable += bodySize(e.body);
  if (scalable === 0) return;
  // Quantised so that platforms, whose trees differ by a few path bytes, almost always get the
  // same factor and hence identical text bodies.
  const factor = Math.max(1 / 64, Math.floor(((maxBytes - (total - scalable)) / scalable) * 64) / 64);
  for (const e of b.list()) {
    if (e.type !== 'file' || e.body.kind === 'literal' || e.body.size === 0) continue;
    b.add({ ...e, body: { ...e.body, size: Math.max(e.body.kind === 'elf' ? 512 : 16, Math.floor(e.body.size * factor)) } });
  }
}

/** Creates explicit directory entries for every missing ancestor of `path`; returns how many. */
export function ensureParents(b: TreeBuilder, path: string): number {
  let added = 0;
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
    const dir = path.slice(0, i);
    if (!b.has(dir)) {
      b.dir(dir);
      added++;
    }
  }
  return added;
}

/**
 * Adds large files through `add(size, index)` until the layer tar is `budget` bytes (to within a
 * block), then trims the last one. `add` must create a file entry of exactly `size` body bytes.
 */
export function fillToBudget(b: TreeBuilder, budget: number, rng: Rng, add: (size: number, index: number) => FileEntry): void {
  let current = tarSize(b.finish());
  // "Large" is relative for tiny images: at least 100 KiB normally, a twentieth of a small budget.
  const min = Math.min(100 * KIB, Math.floor(budget / 20));
  const median = Math.min(32 * MIB, Math.max(2 * min, budget / 40));
  const max = Math.max(2 * min, Math.floor(budget / 6));
  let last: FileEntry | undefined;
  for (let i = 0; budget - current > min + 4 * KIB; i++) {
    const room = budget - current - 4 * KIB;
    let size = Math.min(room, rng.size(median, min, max, 0.8));
    if (room - size < min) size = room;
    last = add(size, i);
    current += ensureParents(b, last.path) * 512 + tarEntrySize(last);
  }
  current = tarSize(b.finish());
  if (last && last.body.kind !== 'literal' && current !== budget) {
    const size = Math.max(1, last.body.size + budget - current);
    b.add({ ...last, body: { ...last.body, size } });
  }
}
