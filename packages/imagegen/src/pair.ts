/**
 * writeImagePair: the release pair (and optionally `other`) in one OCI layout, single- or
 * multi-platform.
 */
import { buildImageSet, type ImageSet, type ReleaseChanges } from './images.js';
import { OciLayoutWriter, type WrittenImage } from './oci.js';
import type { ImageGenOptions, ImageTag, WriteOptions } from './options.js';

/** Options for {@link writeImagePair}. */
export interface WriteImagePairOptions extends ImageGenOptions, WriteOptions {
  /** Images to write and tag. Default `['v1', 'v2']`; add `'other'` for cross-image dedup tests. */
  tags?: ImageTag[];
  /**
   * Platforms (`os/arch[/variant]`). When given, every tag is a nested image index with one
   * manifest per platform (binaries differ per architecture); `platform` is then ignored.
   */
  platforms?: string[];
}

/** What {@link writeImagePair} wrote. */
export interface GeneratedLayout {
  dir: string;
  /** Each tag's descriptor in index.json and its per-platform manifests, configs and layers. */
  images: Partial<Record<ImageTag, WrittenImage>>;
  /** v1 to v2 file changes of the first platform (when both were written). */
  changes: ReleaseChanges | undefined;
  /** v1 to v2 file changes per platform. */
  changesByPlatform: Record<string, ReleaseChanges>;
}

/**
 * Writes one OCI image layout at `dir` holding the tagged images `v1`, `v2` (a typical release of
 * v1) and optionally `other` (another app sharing v1's base layer blob). Deterministic: the same
 * options give byte-identical layouts. Bodies are generated while the tars stream to disk, so
 * memory stays bounded whatever `targetBytes` is.
 */
export async function writeImagePair(dir: string, opts: WriteImagePairOptions = {}): Promise<GeneratedLayout> {
  const tags = opts.tags ?? ['v1', 'v2'];
  const platforms = opts.platforms ?? [opts.platform ?? 'linux/amd64'];
  if (platforms.length === 0) throw new RangeError('platforms must not be empty');
  const sets: ImageSet[] = platforms.map((platform) => buildImageSet({ ...opts, platform }, tags));
  const writer = new OciLayoutWriter(dir, opts);
  const images: Partial<Record<ImageTag, WrittenImage>> = {};
  for (const tag of tags) {
    const specs = sets.map((s) => s.images[tag]).filter((s) => s !== undefined);
    images[tag] = await writer.image(specs, tag, opts.platforms !== undefined);
  }
  await writer.commit();
  const changesByPlatform: Record<string, ReleaseChanges> = {};
  for (const s of sets) if (s.changes) changesByPlatform[s.platform] = s.changes;
  return { dir, images, changes: sets[0]?.changes, changesByPlatform };
}
