/**
 * Stores and keys for the bundle tests: a small imagegen layout (v1, v2 with a rebuilt base layer,
 * and `other`, which shares v1's base layer), a publisher store holding all three, and key pairs
 * made by `ferry keygen`.
 */
import { join } from 'node:path';
import { writeImagePair } from '@ferry/imagegen';
import { expect } from 'vitest';
import { ferryJson } from '@ferry/test-support';

/** What makeBundleFixture made. */
export interface BundleFixture {
  layout: string;
  publisher: string;
  /** NAME.key / NAME.pub paths of the `release` and `bundle` key pairs. */
  keys: Record<'release' | 'bundle', { key: string; pub: string; id: string }>;
  /** Config digests (image IDs) in the publisher store. */
  config: Record<'v1' | 'v2' | 'other', string>;
}

/** Size of the generated v1 image: small, so every test file stays quick. */
export const FIXTURE_BYTES = 3 * 1024 * 1024;

/** Imports tag `tag` of the layout into `store` as app:TAG. */
export async function importTag(layout: string, tag: string, store: string): Promise<string> {
  const { run, json } = await ferryJson<{ configDigest: string }>(['import', `${layout}:${tag}`, '--ref', `app:${tag}`, '--platform', 'linux/amd64'], { store });
  expect(run.code, run.stderr).toBe(0);
  return json.configDigest;
}

async function keygen(base: string): Promise<{ key: string; pub: string; id: string }> {
  const { run, json } = await ferryJson<{ id: string }>(['keygen', '--out', base]);
  expect(run.code, run.stderr).toBe(0);
  return { key: `${base}.key`, pub: `${base}.pub`, id: json.id };
}

/** Writes the layout, fills the publisher store and makes the keys under `work`. */
export async function makeBundleFixture(work: string): Promise<BundleFixture> {
  const layout = join(work, 'oci');
  await writeImagePair(layout, { targetBytes: FIXTURE_BYTES, tags: ['v1', 'v2', 'other'], platform: 'linux/amd64' });
  const publisher = join(work, 'publisher');
  const config = { v1: await importTag(layout, 'v1', publisher), v2: await importTag(layout, 'v2', publisher), other: await importTag(layout, 'other', publisher) };
  const keys = { release: await keygen(join(work, 'release')), bundle: await keygen(join(work, 'bundle')) };
  return { layout, publisher, keys, config };
}

/** A device store holding app:v1. */
export async function deviceStore(fx: BundleFixture, dir: string): Promise<string> {
  await importTag(fx.layout, 'v1', dir);
  return dir;
}

/** Asserts a failure printed exactly one `ferry: error CODE: ...` line. */
export function expectOneError(r: { code: number; stderr: string }, exit: number, code: string): void {
  expect(r.code, r.stderr).toBe(exit);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^ferry: error ${code}: \\S`));
}
