/**
 * Two versions of an image for the store tests: v2 rebuilds v1's base layer (other paths and order,
 * one new file) and changes the app layer, so most bodies are shared across images and layers,
 * one is duplicated inside v1, and one is larger than the store's small-body limit.
 */
import { digestOf, seededBytes, seededText, type Digest, type FileSpec } from '@ferry/test-support';

/** Files of the two images: a shared base, app files that differ, a few bodies common to both. */
export const shared = Array.from({ length: 12 }, (_, i) => seededBytes(`shared-${i}`, 2000 + i * 3001));
export const big = seededBytes('big-shared', 1_500_000); // larger than the store's small-body limit
export const baseFiles: FileSpec[] = [
  { path: 'usr/', type: 'directory' },
  { path: 'usr/lib/', type: 'directory' },
  ...shared.map((body, i) => ({ path: `usr/lib/lib${i}.so`, body })),
  { path: 'usr/lib/big.so', body: big },
  { path: 'usr/lib/libc.so', type: 'symlink', linkname: 'lib0.so' },
  { path: 'etc/empty', body: '' },
];
export const appV1: FileSpec[] = [
  { path: 'app/main.js', body: seededText('main-v1', 40_000) },
  { path: 'app/data.bin', body: seededBytes('data-v1', 300_000) },
  { path: 'app/copy-of-lib3', body: shared[3] }, // duplicate body inside one image
];
/** v2 rebuilds the base (different tar: other order, a new file) but reuses most bodies. */
export const baseV2: FileSpec[] = [
  { path: 'usr/lib/big.so', body: big },
  ...shared.slice(0, 10).map((body, i) => ({ path: `usr/lib64/lib${i}.so`, body })),
  { path: 'usr/lib64/new.so', body: seededBytes('new-in-v2', 9000) },
];
export const appV2: FileSpec[] = [
  { path: 'app/main.js', body: seededText('main-v2', 41_000) },
  { path: 'app/data.bin', body: seededBytes('data-v1', 300_000) },
];

/** The distinct non-empty bodies of some layers' files: what the store keeps as contents. */
export function bodiesOf(...layers: FileSpec[][]): Set<Digest> {
  const out = new Set<Digest>();
  for (const l of layers) for (const f of l) if ((f.type ?? 'file') === 'file' && f.body !== undefined && f.body.length > 0) out.add(digestOf(f.body));
  return out;
}
