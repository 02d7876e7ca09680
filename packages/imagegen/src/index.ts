/**
 * @ferry/imagegen: realistic OCI images generated deterministically in code, with no network,
 * for tests, the demo and the benchmarks. See writeImagePair for the usual entry point.
 */
export { generateAppTree, generateConfigTree, NPM_MTIME } from './app-tree.js';
export { generateBaseTree, multiarchTriplet } from './base-tree.js';
export { BODY_CHUNK, bodyBytes, bodyChunks, bodyDigest, bodyKey, bodySize, literal } from './body.js';
export type { BodyEdit, BodySpec, ContentKind, GeneratedBody, LiteralBody } from './body.js';
export { diffFiles, editBody, flattenLayers, OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from './changes.js';
export type { FileChanges } from './changes.js';
export { writeDockerArchive } from './docker-archive.js';
export type { DockerArchiveImage, DockerArchiveOptions, WrittenDockerArchive } from './docker-archive.js';
export { imageConfig, imageIndex, imageManifest, MEDIA_TYPES, REF_NAME_ANNOTATION } from './image-json.js';
export type { Descriptor, EmptyLayerStep, ImageSpec, LayerSpec } from './image-json.js';
export { buildImageSet } from './images.js';
export type { ImageSet, ReleaseChanges } from './images.js';
export { layerMediaType, writeLayerFile } from './layer-writer.js';
export type { LayerFileOptions, LayerWriteResult } from './layer-writer.js';
export { OciLayoutWriter, writeImage } from './oci.js';
export type { WrittenImage, WrittenLayer, WrittenManifest } from './oci.js';
export { DEFAULT_MTIME, DEFAULT_TARGET_BYTES, formatPlatform, parsePlatform, resolveGenOptions, resolveWriteOptions } from './options.js';
export type { ImageGenOptions, ImageTag, LayerCompression, Platform, ResolvedGenOptions, ResolvedWriteOptions, WriteOptions } from './options.js';
export { writeImagePair } from './pair.js';
export type { GeneratedLayout, WriteImagePairOptions } from './pair.js';
export { deriveRelease, RELEASE_SHIFT } from './release.js';
export type { ReleaseTrees } from './release.js';
export { hashSeed, Rng } from './rng.js';
export { comparePaths, tarSize, TreeBuilder } from './tree.js';
export type { DirEntry, EntryMeta, FileEntry, HardlinkEntry, SymlinkEntry, TreeEntry } from './tree.js';
