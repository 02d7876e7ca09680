/**
 * One imagegen release pair bundled with small chunks (so every rebuilt layer spans several), a
 * device store holding v1 to clone per case, and snapshots that catch any write to a store:
 * for the tests of the applier's three steps (planApply, rebuildLayer, commitApply).
 */
import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeImagePair } from '@ferry/imagegen';
import { openBundle, verifyHeader, type BundleHeader, type BundleSource, type ChunkSource, type Digest, type PrivateKey, type Store, type TrustPolicy, type VerifiedHeader } from '@ferry/core';
import { createBundle, signBundle, writeFerryFile, type ComputedBundle } from '@ferry/differ';
import { buildPackages, cloneStore, createStore, expected, importTags, newKey, scratch, trustOf, type ExpectedImage } from '@ferry/test-support';

/** What makeApplyFixture made. */
export interface ApplyFixture {
  work: string;
  pub: Store;
  /** A store holding app:v1 (clone it: cloneDevice). */
  deviceDir: string;
  key: PrivateKey;
  trust: TrustPolicy;
  /** The public key as a PEM file, for child processes. */
  keyFile: string;
  bundle: ComputedBundle;
  ferry: string;
  header: VerifiedHeader;
  v2: ExpectedImage;
  expires: number;
}

/** Chunk size of the fixture bundle: small, so layers span several chunks. */
export const CHUNK = 4 * 1024;

/** Options of makeApplyFixture. */
export interface ApplyFixtureOptions {
  /** false: the differ's single-file references (format version 1's matching) instead of reference sets. */
  referenceSets?: boolean | undefined;
}

/** Builds the packages, the pair, the stores and the bundle (v1 -> v2, channel stable, release 2). */
export async function makeApplyFixture(prefix: string, opts: ApplyFixtureOptions = {}): Promise<ApplyFixture> {
  buildPackages();
  const work = await scratch(prefix);
  const layout = join(work, 'layout');
  await writeImagePair(layout, { targetBytes: 6 * 1024 * 1024, tags: ['v1', 'v2'] });
  const pub = await createStore(join(work, 'pub'));
  await importTags(pub, layout, ['v1', 'v2']);
  const deviceDir = join(work, 'device');
  await importTags(await createStore(deviceDir), layout, ['v1']);
  const key = newKey();
  const trust = trustOf(key);
  const expires = Math.floor(Date.now() / 1000) + 86_400;
  const bundle = await createBundle(pub, { from: ['app:v1'], to: 'app:v2', channel: 'stable', release: 2, expires, releaseKeys: [key], headerKeys: [key], chunkSize: CHUNK, referenceSets: opts.referenceSets });
  const ferry = join(work, 'v2.ferry');
  await writeFerryFile(ferry, bundle.signed);
  const keyFile = join(work, 'key.pub');
  await writeFile(keyFile, key.publicKey.key.export({ format: 'pem', type: 'spki' }));
  const header = verifyHeader(bundle.signed.envelope, { trust });
  return { work, pub, deviceDir, key, trust, keyFile, bundle, ferry, header, v2: await expected(pub, 'app:v2'), expires };
}

let clones = 0;

/** A fresh copy of the v1 device. */
export async function cloneDevice(fx: ApplyFixture, name = 'device'): Promise<Store> {
  return cloneStore(fx.deviceDir, join(fx.work, `${name}-${clones++}`));
}

/** The fixture bundle's source and chunks. */
export async function fixtureSource(fx: ApplyFixture): Promise<{ source: BundleSource; chunks: ChunkSource }> {
  const source = await openBundle(fx.ferry);
  return { source, chunks: source.chunks(fx.header) };
}

/**
 * Every path under `root` (directories too, so a created empty directory shows) with the sha256
 * of each file's bytes: two equal snapshots mean nothing was written, created or removed.
 */
export async function contentSnapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        out[`${p}/`] = 'dir';
        await walk(join(dir, e.name), p);
      } else {
        out[p] = createHash('sha256').update(await readFile(join(dir, e.name))).digest('hex');
      }
    }
  };
  await walk(root, '');
  return out;
}

/** What a bundle with a replaced frame is signed from. */
export interface FrameBase {
  header: BundleHeader;
  payloadFile: string;
  key: PrivateKey;
  chunkSize: number;
  work: string;
}

/** A signed `.ferry` file of the same target with some header fields or the payload changed. */
export async function signVariant(base: FrameBase, name: string, change: { layers?: BundleHeader['layers']; need?: number; payloadFile?: string; version?: number }): Promise<string> {
  const h = base.header;
  const signed = await signBundle({ release: h.release, releaseKeys: [base.key], headerKeys: [base.key], manifest: h.manifest, config: h.config, baseline: h.baseline, layers: change.layers ?? h.layers, payloadFile: change.payloadFile ?? base.payloadFile, need: change.need ?? h.need, version: change.version ?? h.version, chunkSize: base.chunkSize, created: h.created });
  const path = join(base.work, `${name}.ferry`);
  await writeFerryFile(path, signed);
  return path;
}

/**
 * A signed `.ferry` file for the same target whose first rebuilt layer's frame is `frame` (other
 * frames moved to fit): a payload that lies with valid chunks and signatures. `version` is the
 * header's format version (default: the fixture's).
 */
export async function withFrame(base: FrameBase, name: string, frame: Uint8Array, version?: number): Promise<string> {
  const h = base.header;
  const first = h.layers.findIndex((l) => l.mode === 'rebuild');
  const old = await readFile(base.payloadFile);
  const f = h.layers[first]!;
  const delta = frame.length - (f.end - f.start);
  const payloadFile = join(base.work, `${name}.payload`);
  await writeFile(payloadFile, Buffer.concat([old.subarray(0, f.start), frame, old.subarray(f.end)]));
  const layers = h.layers.map((l, i) => (i < first ? l : i === first ? { ...l, end: l.start + frame.length } : { ...l, start: l.start + delta, end: l.end + delta }));
  return signVariant(base, name, { layers, payloadFile, version });
}

/** What variants of the fixture bundle are signed from. */
export function frameBase(fx: ApplyFixture): FrameBase {
  return { header: fx.header, payloadFile: fx.bundle.signed.payloadFile, key: fx.key, chunkSize: CHUNK, work: fx.work };
}

/** A chunk source that holds chunk `index` until `release()` is called; `asked` resolves when it is requested. */
export function holdingSource(inner: ChunkSource, index: number): { source: ChunkSource; asked: Promise<void>; release: () => void } {
  let onAsked!: () => void;
  let onRelease!: () => void;
  const asked = new Promise<void>((r) => (onAsked = r));
  const released = new Promise<void>((r) => (onRelease = r));
  const source: ChunkSource = {
    async readChunk(i, digest, size, signal) {
      if (i === index) {
        onAsked();
        await new Promise<void>((resolve, reject) => {
          void released.then(resolve);
          signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
        });
      }
      return inner.readChunk(i, digest, size, signal);
    },
  };
  return { source, asked, release: onRelease };
}

/** Every content digest the skeletons of `layers` name. */
export async function contentsOf(store: Store, layers: readonly Digest[]): Promise<Set<Digest>> {
  const out = new Set<Digest>();
  for (const d of layers) for await (const e of (await store.openSkeleton(d)).entries) if (e.digest) out.add(e.digest);
  return out;
}
