/**
 * Exporting from the store (DESIGN.md section 4): an OCI image layout (uncompressed or gzip
 * layers) or a `docker save` archive stream. Each layer is reassembled from its skeleton and
 * contents and verified against its diff_id while it streams; the config is written verbatim, so
 * the image ID is the publisher's.
 */
import { createHash } from 'node:crypto';
import { rename, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { FerryError } from '../errors.js';
import { MAX_JSON_BYTES } from '../image/json.js';
import { readRegularFile } from '../util/bounded-read.js';
import { HashingStream, digestHex, hashToDigest, sha256, type Digest } from '../util/digest.js';
import { tempPathFor, writeFileAtomic, writeStreamAtomic } from '../util/fs.js';
import { reassembleLayer } from '../tar/skeleton.js';
import type { SkeletonReader } from '../tar/skeleton-file.js';
import { prefetchBodies } from '../tar/prefetch.js';
import { MT } from '../image/media.js';
import type { Progress } from './import.js';
import { ContentReader } from './content-reader.js';
import { parseRef } from './refs.js';
import type { StoredImage, Store } from './store.js';

/** Options for exports. */
export interface ExportOptions {
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

/** Output pieces are gathered up to this size: one write and one hash update per piece, not per header and small body. */
const OUT_PIECE = 256 * 1024;

/** Joins small chunks into pieces of about OUT_PIECE bytes; large chunks pass as they are. */
async function* coalesce(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let parts: Uint8Array[] = [];
  let bytes = 0;
  for await (const c of source) {
    if (c.byteLength >= OUT_PIECE / 4) {
      if (bytes > 0) yield Buffer.concat(parts, bytes);
      parts = [];
      bytes = 0;
      yield c;
      continue;
    }
    parts.push(c);
    bytes += c.byteLength;
    if (bytes >= OUT_PIECE) {
      yield Buffer.concat(parts, bytes);
      parts = [];
      bytes = 0;
    }
  }
  if (bytes > 0) yield Buffer.concat(parts, bytes);
}

/**
 * Reassembles a layer from a skeleton and the store's contents, checking its diff_id and size as
 * bytes flow: a mismatch fails the stream at its end (FERRY_ERR_DIGEST_MISMATCH), so a consumer
 * must treat the output as unverified until it ends cleanly. With `verifyContents` every body is
 * also re-hashed, which names a damaged content instead of only the layer.
 */
export async function* reassembleVerified(store: Store, skel: SkeletonReader, diffId: Digest, size: number | undefined, verifyContents: boolean): AsyncGenerator<Uint8Array> {
  const hash = createHash('sha256');
  let total = 0;
  const reader = new ContentReader(store, { verify: verifyContents });
  const entries = prefetchBodies(skel.entries, { load: (d, n) => reader.load(d, n), depth: 512, maxBytes: 8 * 1024 * 1024 });
  for await (const c of coalesce(reassembleLayer(entries, () => skel.trailer(), (d) => store.openContent(d, { verify: verifyContents })))) {
    hash.update(c);
    total += c.byteLength;
    yield c;
  }
  const got = hashToDigest(hash);
  if (got !== diffId || (size !== undefined && total !== size)) {
    throw new FerryError('FERRY_ERR_DIGEST_MISMATCH', `layer ${diffId} reassembled to ${got} (${total} bytes)`, { details: { expected: diffId, actual: got } });
  }
}

/** Streams a stored layer's exact tar bytes, verified as in reassembleVerified. */
export async function* layerStream(store: Store, diffId: Digest, size?: number): AsyncGenerator<Uint8Array> {
  yield* reassembleVerified(store, await store.openSkeleton(diffId), diffId, size, false);
}

function progressCounter(opts: ExportOptions, image: StoredImage): { phase: (i: number) => Transform } {
  const total = image.layers.reduce((a, l) => a + l.size, 0);
  let done = 0;
  return {
    phase: (i) =>
      new Transform({
        transform(chunk: Buffer, _e, cb) {
          done += chunk.length;
          opts.onProgress?.({ phase: `layer ${i + 1}/${image.layers.length}`, done, total });
          cb(null, chunk);
        },
      }),
  };
}

/** Options for exportOci. */
export interface ExportOciOptions extends ExportOptions {
  /** Layer compression in the layout (default 'none': the store's own manifest, byte for byte). */
  compression?: 'none' | 'gzip';
}

/**
 * The index.json of the layout being added to: its manifests are kept. None (or one that is not
 * JSON with a manifest list) starts a new index; one that cannot be read is FERRY_ERR_IO, and one
 * that is not a regular file is FERRY_ERR_USAGE (it would be replaced, or hang a read).
 */
async function readIndex(dir: string): Promise<{ schemaVersion: number; mediaType?: string; manifests: Record<string, unknown>[] }> {
  const fresh = { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] as Record<string, unknown>[] };
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(join(dir, 'index.json'), { what: 'OCI layout index', notRegular: 'FERRY_ERR_USAGE', tooBig: 'FERRY_ERR_USAGE', maxBytes: MAX_JSON_BYTES });
  } catch (err) {
    if ((err as FerryError).details?.errno === 'ENOENT') return fresh;
    throw err;
  }
  try {
    const idx = JSON.parse(bytes.toString('utf8')) as { manifests?: unknown };
    if (Array.isArray(idx.manifests)) return { ...fresh, manifests: idx.manifests as Record<string, unknown>[] };
  } catch {
    // not JSON: replaced by a new index, as a missing one is
  }
  return fresh;
}

/**
 * Writes `ref` into an OCI image layout at `dir` (created, or added to: other tags in its
 * index.json are kept, the same tag is replaced). Returns the manifest digest written.
 */
export async function exportOci(store: Store, ref: string, dir: string, opts: ExportOciOptions = {}): Promise<{ manifestDigest: Digest; configDigest: Digest }> {
  const { tag } = parseRef(ref);
  const image = await store.resolve(ref);
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const progress = progressCounter(opts, image);
  const layerDescs: { mediaType: string; digest: Digest; size: number }[] = [];
  for (const [i, l] of image.layers.entries()) {
    if ((opts.compression ?? 'none') === 'none') {
      await writeStreamAtomic(join(blobs, digestHex(l.diffId)), layerStream(store, l.diffId, l.size), { signal: opts.signal, transforms: [progress.phase(i)] });
      layerDescs.push({ mediaType: MT.ociLayer, digest: l.diffId, size: l.size });
    } else {
      const tmpName = tempPathFor(join(blobs, 'x'));
      const out = new HashingStream();
      await writeStreamAtomic(tmpName, layerStream(store, l.diffId, l.size), { signal: opts.signal, transforms: [progress.phase(i), createGzip({ level: 6 }), out], syncDir: false });
      const d = out.digest!;
      await rename(tmpName, join(blobs, digestHex(d))).catch(async (err) => {
        await rm(tmpName, { force: true });
        throw err;
      });
      layerDescs.push({ mediaType: MT.ociLayerGzip, digest: d, size: out.size });
    }
  }
  await writeFileAtomic(join(blobs, digestHex(image.configDigest)), image.config);
  let manifest: Buffer;
  if ((opts.compression ?? 'none') === 'none') {
    manifest = image.manifest;
  } else {
    const m = JSON.parse(image.manifest.toString('utf8')) as Record<string, unknown>;
    manifest = Buffer.from(JSON.stringify({ ...m, layers: layerDescs }));
  }
  const manifestDigest = sha256(manifest);
  await writeFileAtomic(join(blobs, digestHex(manifestDigest)), manifest);
  await writeFileAtomic(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const index = await readIndex(dir);
  index.manifests = index.manifests.filter((m) => (m.annotations as Record<string, string> | undefined)?.['org.opencontainers.image.ref.name'] !== tag);
  index.manifests.push({
    mediaType: MT.ociManifest,
    digest: manifestDigest,
    size: manifest.length,
    annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': tag },
  });
  await writeFileAtomic(join(dir, 'index.json'), JSON.stringify(index));
  return { manifestDigest, configDigest: image.configDigest };
}

/**
 * Writes `ref` as a `docker save` archive (classic layout: manifest.json, <config>.json,
 * <diff_id>/layer.tar) to `out`, for `ferry export app:v2 --format docker-archive | docker load`.
 * Layers are uncompressed; a layer failing its diff_id check aborts the stream (the archive is
 * then truncated, so `docker load` refuses it rather than loading a wrong image).
 */
export async function exportDockerArchive(store: Store, ref: string, out: Writable, opts: ExportOptions = {}): Promise<{ configDigest: Digest }> {
  const image = await store.resolve(ref);
  // loaded here: the other commands (an agent's start above all) need not load tar-stream's modules
  const { default: tar } = await import('tar-stream');
  const pack = tar.pack();
  const done = pipeline(pack, out, { signal: opts.signal, end: out !== process.stdout });
  done.catch(() => {});
  const progress = progressCounter(opts, image);
  const configName = `${digestHex(image.configDigest)}.json`;
  const mtime = new Date(0);
  try {
    for (const [i, l] of image.layers.entries()) {
      const entry = pack.entry({ name: `${digestHex(l.diffId)}/layer.tar`, size: l.size, mtime, mode: 0o644 });
      await pipeline(layerStream(store, l.diffId, l.size), progress.phase(i), entry, { signal: opts.signal });
    }
    pack.entry({ name: configName, mtime, mode: 0o644 }, image.config);
    const manifest = [{ Config: configName, RepoTags: [ref], Layers: image.layers.map((l) => `${digestHex(l.diffId)}/layer.tar`) }];
    pack.entry({ name: 'manifest.json', mtime, mode: 0o644 }, JSON.stringify(manifest));
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await done.catch(() => {});
    throw err;
  }
  await done;
  return { configDigest: image.configDigest };
}

