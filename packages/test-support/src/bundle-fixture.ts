/**
 * Fixtures for bundle tests, generated in code (STYLE.md "Tests"): keys, trust policies, small
 * hand-made layers (tar-stream, with control over mtimes and whiteouts), imagegen release pairs
 * imported into a publisher store and a device store, and snapshots of a device store so a test
 * can assert that a refused bundle changed nothing (DESIGN.md section 8).
 *
 * The bundle tests use the built packages (`@ferry/core`, `@ferry/differ`): the differ's patch
 * workers load `dist/patch-worker.js`, which does not exist when the sources are imported. Call
 * {@link buildPackages} in `beforeAll` (a no-op when dist is fresh).
 */
import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import {
  Store,
  exportOci,
  fsck,
  generateKeyPair,
  importImage,
  openImage,
  parsePrivateKey,
  rolePolicy,
  type Digest,
  type PrivateKey,
  type TrustPolicy,
} from '@ferry/core';
import { ROOT } from './cli.js';
import { buildImage, buildLayer, makeTar, ociLayout, writeFiles, type BuiltImage, type Compression, type FileSpec } from './images.js';
import { verifyOciLayout, type ExpectedLayers } from './verify.js';

/** Builds a package and what it depends on from the sources under test (tsc -b: a no-op when dist is fresh; default differ and core). */
export function buildPackages(project = 'packages/differ'): void {
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', project], { cwd: ROOT, stdio: 'pipe' });
  } catch (err) {
    throw new Error(`building ${project} failed:\n${String((err as { stdout?: Buffer }).stdout ?? err)}`);
  }
}

/** A fresh Ed25519 private key. */
export function newKey(): PrivateKey {
  return parsePrivateKey(generateKeyPair().privatePem);
}

/** Trust in one key (or one release key and one header key), threshold 1. */
export function trustOf(release: PrivateKey, header: PrivateKey = release): TrustPolicy {
  return { release: rolePolicy([release.publicKey]), header: rolePolicy([header.publicKey]) };
}

// ---------------------------------------------------------------- hand-made layers

/** One member of a hand-made layer (`mtime` defaults to {@link BASE_MTIME}). */
export type TarEntry = FileSpec;

/** Default mtime of hand-made entries: 2024-01-01T00:00:00Z. */
export const BASE_MTIME = 1_704_067_200;

/** Packs entries into an uncompressed tar with tar-stream (ustar; pax where needed). */
export function tarOf(entries: readonly TarEntry[]): Promise<Buffer> {
  return makeTar(entries, BASE_MTIME);
}

/** An image of hand-made layers, each layer a list of entries. */
export async function imageOf(layers: readonly TarEntry[][], label: string, compression: Compression = 'gzip'): Promise<BuiltImage> {
  const built = [];
  for (const l of layers) built.push(await buildLayer(await tarOf(l), compression));
  return buildImage(built, { label });
}

/** Writes images into one OCI layout, tagged. */
export async function writeLayout(dir: string, images: Record<string, BuiltImage>): Promise<void> {
  await writeFiles(dir, ociLayout(Object.entries(images).map(([tag, image]) => ({ image, tag }))).files);
}

/** Imports tags of a layout into a store as `app:<tag>`. */
export async function importTags(store: Store, layout: string, tags: readonly string[], name = 'app'): Promise<void> {
  for (const tag of tags) await importImage(store, await openImage(layout, { ref: tag }), `${name}:${tag}`);
}

/** Opens (creating) a store at `dir`. */
export function createStore(dir: string): Promise<Store> {
  return Store.open(dir, { create: true });
}

/** Copies a store directory (a device prepared once, cloned per case). */
export async function cloneStore(from: string, to: string): Promise<Store> {
  await cp(from, to, { recursive: true });
  return Store.open(to);
}

/** A scratch directory. */
export function scratch(prefix: string): Promise<string> {
  return mkdtemp(join(process.env.TMPDIR ?? '/tmp', `ferry-${prefix}-`));
}

/** Removes a directory tree. */
export function remove(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------- checking stores

/** What a device store holds, for "changed nothing" checks. */
export interface StoreState {
  refs: { ref: string; manifest: Digest }[];
  /** Channel state files by name, verbatim. */
  channels: Record<string, string>;
  skeletons: string[];
  blobs: string[];
}

async function names(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).sort();
}

/** Snapshot of refs, channel states, skeletons and blobs (contents are left out: see below). */
export async function storeState(store: Store): Promise<StoreState> {
  const channels: Record<string, string> = {};
  for (const f of await names(join(store.root, 'channels'))) channels[f] = await readFile(join(store.root, 'channels', f), 'utf8');
  return { refs: await store.listRefs(), channels, skeletons: await names(join(store.root, 'skeletons')), blobs: await names(join(store.root, 'blobs')) };
}

/**
 * Asserts that a store is as `before` and passes fsck with no temp files left. Content objects
 * are not compared: a refused apply may leave unreferenced contents, which gc removes.
 */
export async function expectUnchanged(store: Store, before: StoreState, label: string): Promise<void> {
  expect(await storeState(store), label).toEqual(before);
  const report = await fsck(store);
  expect(report.problems, label).toEqual([]);
  expect(report.leftovers, label).toEqual([]);
  expect((await names(store.root)).includes('lock'), `${label}: lock released`).toBe(false);
}

/** Every file under a directory with its size and mtime: any write shows up here. */
export async function treeSnapshot(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else {
        const st = await stat(p);
        out.set(p.slice(root.length + 1), `${st.size}:${st.mtimeMs}`);
      }
    }
  };
  await walk(root);
  return out;
}

/** Paths added, removed or changed between two snapshots. */
export function treeChanges(before: Map<string, string>, after: Map<string, string>): { added: string[]; removed: string[]; changed: string[] } {
  return {
    added: [...after.keys()].filter((k) => !before.has(k)).sort(),
    removed: [...before.keys()].filter((k) => !after.has(k)).sort(),
    changed: [...after.keys()].filter((k) => before.has(k) && before.get(k) !== after.get(k)).sort(),
  };
}

/** The image a store must end up holding. */
export interface ExpectedImage extends ExpectedLayers {
  manifestDigest: Digest;
}

/** What a publisher store holds for `ref`. */
export async function expected(store: Store, ref: string): Promise<ExpectedImage> {
  const img = await store.resolve(ref);
  return { manifestDigest: img.manifestDigest, configDigest: img.configDigest, diffIds: img.layers.map((l) => l.diffId) };
}

/**
 * Exports `ref` as an OCI layout and checks it with an independent reader: manifest digest, config
 * digest and every layer's sha256 against its diff_id.
 */
export async function verifyExport(store: Store, ref: string, want: ExpectedImage, work: string): Promise<void> {
  const dir = await mkdtemp(join(work, 'export-'));
  try {
    const { manifestDigest } = await exportOci(store, ref, dir);
    if (manifestDigest !== want.manifestDigest) throw new Error(`exported manifest ${manifestDigest}, expected ${want.manifestDigest}`);
    const facts = await verifyOciLayout(dir, ref.slice(ref.lastIndexOf(':') + 1), { configDigest: want.configDigest, diffIds: want.diffIds });
    if (facts.manifestDigest !== want.manifestDigest) throw new Error(`layout names manifest ${facts.manifestDigest}`);
  } finally {
    await remove(dir);
  }
}
