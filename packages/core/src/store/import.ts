/**
 * Importing an image into the store (DESIGN.md section 4). Order is what makes it crash-safe:
 * contents (durable), then each layer's skeleton, then config and manifest, and only then the ref.
 * A kill at any moment leaves complete objects (every one written by temp + rename) and the old
 * ref; the half-imported image is never visible.
 */
import { FerryError } from '../errors.js';
import type { Digest } from '../util/digest.js';
import { writeStreamAtomic } from '../util/fs.js';
import { splitLayer } from '../tar/skeleton.js';
import { SkeletonWriter } from '../tar/skeleton-file.js';
import { MT } from '../image/media.js';
import type { SourceImage, SourceLayer } from '../image/reader.js';
import { ContentBatch } from './contents.js';
import { parseRef } from './refs.js';
import type { Store } from './store.js';

/** Progress of a long operation. */
export interface Progress {
  /** What is being done ("layer 2/5", ...). */
  phase: string;
  /** Bytes done and expected (expected may be unknown). */
  done: number;
  total?: number | undefined;
}

/** Options for importImage. */
export interface ImportOptions {
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

/** What an import did. */
export interface ImportResult {
  ref: string;
  manifestDigest: Digest;
  configDigest: Digest;
  layers: { diffId: Digest; size: number; reused: boolean; files: number }[];
  /** Uncompressed bytes of layers read. */
  bytesRead: number;
  /** Compressed bytes of new contents written. */
  bytesStored: number;
  contentsAdded: number;
  contentsDeduplicated: number;
}

/**
 * The canonical manifest of a stored image: OCI, uncompressed layers named by diff_id. Export as
 * an uncompressed OCI layout writes exactly these bytes.
 */
export function storeManifest(config: Buffer, configDigest: Digest, layers: { diffId: Digest; size: number }[], annotations?: Record<string, string>): Buffer {
  const m: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: { mediaType: MT.ociConfig, digest: configDigest, size: config.length },
    layers: layers.map((l) => ({ mediaType: MT.ociLayer, digest: l.diffId, size: l.size })),
  };
  if (annotations && Object.keys(annotations).length > 0) m.annotations = annotations;
  return Buffer.from(JSON.stringify(m));
}

async function importLayer(store: Store, layer: SourceLayer, index: number, opts: ImportOptions, counters: { read: number; stored: number; added: number; dedup: number }, total: number | undefined): Promise<{ size: number; files: number }> {
  const batch = new ContentBatch(store);
  const writer = new SkeletonWriter();
  const phase = `layer ${index + 1}`;
  const write = writeStreamAtomic(store.skeletonPath(layer.diffId), writer.output, {
    signal: opts.signal,
    check: async () => {
      await batch.flush(); // contents are durable before the skeleton that names them
    },
  });
  write.catch(() => {}); // awaited below; avoid an unhandled rejection while the split runs
  let trailer;
  try {
    // count every tar byte (headers and padding too), so bytesRead and progress reach the layer sizes
    const counted = async function* (src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
      for await (const chunk of src) {
        counters.read += chunk.length;
        opts.onProgress?.({ phase, done: counters.read, total });
        yield chunk;
      }
    };
    trailer = await splitLayer(counted(layer.open({ verifyDiffId: false, signal: opts.signal })), {
      hashesBodies: true,
      onBody: (body, size) => batch.put(body, size),
      onEntry: (e) => writer.add(e),
    });
    if (trailer.diffId !== layer.diffId) {
      throw new FerryError('FERRY_ERR_DIGEST_MISMATCH', `layer ${index + 1} hashes to ${trailer.diffId}, its config says ${layer.diffId}`, { details: { expected: layer.diffId, actual: trailer.diffId } });
    }
    writer.finish(trailer);
  } catch (err) {
    writer.destroy(err as Error);
    await write.catch(() => {});
    await batch.flush().catch(() => {});
    throw err;
  }
  await write;
  counters.stored += batch.stats.storedBytes;
  counters.added += batch.stats.added;
  counters.dedup += batch.stats.deduplicated;
  return { size: trailer.size, files: trailer.count };
}

/** Imports `source` under `ref`. Layers whose skeleton the store has are not read again. */
export async function importImage(store: Store, source: SourceImage, ref: string, opts: ImportOptions = {}): Promise<ImportResult> {
  parseRef(ref);
  return store.withLock(async () => {
    const counters = { read: 0, stored: 0, added: 0, dedup: 0 };
    const total = source.layers.every((l) => l.size !== undefined) && source.layers.every((l) => l.compression === 'none') ? source.layers.reduce((a, l) => a + (l.size ?? 0), 0) : undefined;
    const layers: ImportResult['layers'] = [];
    for (const [i, layer] of source.layers.entries()) {
      opts.signal?.throwIfAborted();
      if (await store.hasSkeleton(layer.diffId)) {
        const r = await store.openSkeleton(layer.diffId);
        let files = 0;
        for await (const _ of r.entries) files++;
        layers.push({ diffId: layer.diffId, size: r.trailer().size, reused: true, files });
        continue;
      }
      const { size, files } = await importLayer(store, layer, i, opts, counters, total);
      layers.push({ diffId: layer.diffId, size, reused: false, files });
    }
    const configDigest = await store.putBlob(source.config);
    if (configDigest !== source.configDigest) throw new FerryError('FERRY_ERR_DIGEST_MISMATCH', `config hashes to ${configDigest}, expected ${source.configDigest}`);
    const manifest = storeManifest(source.config, configDigest, layers, source.annotations);
    const manifestDigest = await store.putBlob(manifest);
    await store.setRef(ref, manifestDigest);
    return {
      ref,
      manifestDigest,
      configDigest,
      layers,
      bytesRead: counters.read,
      bytesStored: counters.stored,
      contentsAdded: counters.added,
      contentsDeduplicated: counters.dedup,
    };
  });
}

