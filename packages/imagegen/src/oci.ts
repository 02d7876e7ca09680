/**
 * Writing OCI image layouts (image-spec image-layout.md): `oci-layout`, `index.json` and
 * `blobs/sha256/<hex>`. Blobs are written to a temp name and renamed once their digest is known.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { imageConfig, imageIndex, imageManifest, MEDIA_TYPES, REF_NAME_ANNOTATION, type Descriptor, type ImageSpec, type LayerSpec } from './image-json.js';
import { layerMediaType, writeLayerFile, type LayerWriteResult } from './layer-writer.js';
import { parsePlatform, resolveWriteOptions, type ResolvedWriteOptions, type WriteOptions } from './options.js';

/** A layer written into a layout. */
export interface WrittenLayer extends LayerWriteResult {
  mediaType: string;
}

/** One platform's manifest of a written image. */
export interface WrittenManifest {
  platform: string;
  manifest: Descriptor;
  config: Descriptor;
  layers: WrittenLayer[];
}

/** A written image: the descriptor in index.json and each platform's manifest. */
export interface WrittenImage {
  ref: string | undefined;
  /** The manifest's descriptor, or the nested image index's for a multi-platform image. */
  descriptor: Descriptor;
  manifests: WrittenManifest[];
}

let tempCounter = 0;

/**
 * Writes images into one OCI layout directory. Layers are written one at a time (bounded memory
 * and CPU) and each LayerSpec object once, however many images share it. Call {@link commit} to
 * write index.json; tags already in an existing index.json that are not rewritten are kept.
 */
export class OciLayoutWriter {
  private readonly opts: ResolvedWriteOptions;
  private readonly layers = new Map<LayerSpec, WrittenLayer>();
  private readonly tagged: Descriptor[] = [];
  private ready: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    opts: WriteOptions = {},
  ) {
    this.opts = resolveWriteOptions(opts);
  }

  private get blobDir(): string {
    return join(this.dir, 'blobs', 'sha256');
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(this.blobDir, { recursive: true });
      await writeFile(join(this.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    })();
    return this.ready;
  }

  private tempPath(): string {
    return join(this.blobDir, `.tmp-${process.pid}-${++tempCounter}`);
  }

  /** Writes a layer blob (once per LayerSpec object). */
  async layer(spec: LayerSpec): Promise<WrittenLayer> {
    const known = this.layers.get(spec);
    if (known) return known;
    await this.init();
    const tmp = this.tempPath();
    try {
      const r = await writeLayerFile(tmp, spec.entries, { compression: this.opts.layerCompression, level: this.opts.compressionLevel, signal: this.opts.signal });
      await rename(tmp, join(this.blobDir, r.digest.slice(7)));
      const written = { ...r, mediaType: layerMediaType(this.opts.layerCompression) };
      this.layers.set(spec, written);
      return written;
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** Writes a JSON document as a blob and returns its descriptor. */
  async json(doc: unknown, mediaType: string): Promise<Descriptor> {
    await this.init();
    const bytes = Buffer.from(JSON.stringify(doc));
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const tmp = this.tempPath();
    await writeFile(tmp, bytes);
    await rename(tmp, join(this.blobDir, digest.slice(7)));
    return { mediaType, digest, size: bytes.length };
  }

  /** Writes the layers, config and manifest of one platform's image. */
  async manifest(spec: ImageSpec): Promise<WrittenManifest> {
    const layers: WrittenLayer[] = [];
    for (const l of spec.layers) {
      this.opts.signal?.throwIfAborted();
      layers.push(await this.layer(l));
    }
    const config = await this.json(imageConfig(spec, layers.map((l) => l.diffId)), MEDIA_TYPES.config);
    const layerDescs = layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.blobSize }));
    const manifest = await this.json(imageManifest(config, layerDescs), MEDIA_TYPES.manifest);
    return { platform: spec.platform ?? 'linux/amd64', manifest, config, layers };
  }

  /**
   * Writes an image: a plain manifest for one spec, or a nested image index with one manifest per
   * platform when given several specs (or `forceIndex`). Tags it `ref` when given.
   */
  async image(specs: readonly ImageSpec[], ref?: string, forceIndex = false): Promise<WrittenImage> {
    if (specs.length === 0) throw new RangeError('an image needs at least one platform spec');
    const manifests: WrittenManifest[] = [];
    for (const s of specs) manifests.push(await this.manifest(s));
    let descriptor: Descriptor;
    const withPlatform = (m: WrittenManifest): Descriptor => ({ ...m.manifest, platform: parsePlatform(m.platform) });
    const first = manifests[0];
    if (manifests.length === 1 && !forceIndex && first) descriptor = withPlatform(first);
    else descriptor = await this.json(imageIndex(manifests.map(withPlatform)), MEDIA_TYPES.index);
    if (ref !== undefined) this.tagged.push({ ...descriptor, annotations: { ...descriptor.annotations, [REF_NAME_ANNOTATION]: ref } });
    return { ref, descriptor, manifests };
  }

  /** Writes index.json: earlier tags not rewritten here, then this writer's tags in order. */
  async commit(): Promise<void> {
    await this.init();
    const path = join(this.dir, 'index.json');
    const refs = new Set(this.tagged.map((d) => d.annotations?.[REF_NAME_ANNOTATION]));
    let kept: Descriptor[] = [];
    try {
      const old = JSON.parse(await readFile(path, 'utf8')) as { manifests?: Descriptor[] };
      kept = (old.manifests ?? []).filter((d) => !refs.has(d.annotations?.[REF_NAME_ANNOTATION]));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify(imageIndex([...kept, ...this.tagged])));
    await rename(tmp, path);
  }
}

/**
 * Writes one image into the OCI layout at `dir` (created if needed; other tags in an existing
 * layout are kept) and tags it `spec.ref`.
 */
export async function writeImage(dir: string, spec: ImageSpec, opts: WriteOptions = {}): Promise<WrittenImage> {
  const writer = new OciLayoutWriter(dir, opts);
  const image = await writer.image([spec], spec.ref);
  await writer.commit();
  return image;
}
