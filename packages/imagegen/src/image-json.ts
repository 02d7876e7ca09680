/**
 * Image specs (what an image is made of) and the JSON documents that describe a written image:
 * the image config and the OCI manifest (image-spec config.md and manifest.md).
 */
import { parsePlatform, type Platform } from './options.js';
import type { TreeEntry } from './tree.js';

/** Media types used in written layouts. */
export const MEDIA_TYPES = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
} as const;

/** Annotation that names a tag in an OCI layout's index.json. */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** One layer of an image: its entries and the build step that made it. */
export interface LayerSpec {
  entries: readonly TreeEntry[];
  /** `history[].created_by` of the layer (a Dockerfile instruction). */
  createdBy: string;
  /** Creation time in seconds; defaults to the image's. */
  created?: number;
}

/** A step of the image's history that made no layer (ENV, CMD, LABEL...). */
export interface EmptyLayerStep {
  createdBy: string;
  /** Index of the layer this step follows (-1: before the first layer). */
  after: number;
}

/** Everything needed to write one image for one platform. */
export interface ImageSpec {
  /** Tag written as the `org.opencontainers.image.ref.name` annotation (none: untagged). */
  ref?: string;
  /** `os/arch[/variant]`. Default `linux/amd64`. */
  platform?: string;
  /** Layers, bottom first. Reusing one LayerSpec object in several images writes its blob once. */
  layers: LayerSpec[];
  /** Creation time in seconds since the epoch. */
  created: number;
  env?: string[];
  cmd?: string[];
  entrypoint?: string[];
  workingDir?: string;
  user?: string;
  labels?: Record<string, string>;
  /** History steps that made no layer (written with `empty_layer: true`). */
  emptySteps?: EmptyLayerStep[];
}

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

/** The image config JSON of `spec` whose layers have the given diff_ids. */
export function imageConfig(spec: ImageSpec, diffIds: readonly string[]): Record<string, unknown> {
  const p = parsePlatform(spec.platform ?? 'linux/amd64');
  const config: Record<string, unknown> = {};
  if (spec.user !== undefined) config['User'] = spec.user;
  if (spec.env !== undefined) config['Env'] = spec.env;
  if (spec.entrypoint !== undefined) config['Entrypoint'] = spec.entrypoint;
  if (spec.cmd !== undefined) config['Cmd'] = spec.cmd;
  if (spec.workingDir !== undefined) config['WorkingDir'] = spec.workingDir;
  if (spec.labels !== undefined) config['Labels'] = spec.labels;
  const history: Array<Record<string, unknown>> = [];
  const steps = spec.emptySteps ?? [];
  const empty = (after: number): void => {
    for (const s of steps) if (s.after === after) history.push({ created: iso(spec.created), created_by: s.createdBy, empty_layer: true });
  };
  empty(-1);
  spec.layers.forEach((l, i) => {
    history.push({ created: iso(l.created ?? spec.created), created_by: l.createdBy, comment: 'buildkit.dockerfile.v0' });
    empty(i);
  });
  return {
    created: iso(spec.created),
    architecture: p.architecture,
    ...(p.variant === undefined ? {} : { variant: p.variant }),
    os: p.os,
    config,
    rootfs: { type: 'layers', diff_ids: diffIds },
    history,
  };
}

/** The OCI image manifest JSON. */
export function imageManifest(config: Descriptor, layers: readonly Descriptor[]): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
}

/** An OCI image index JSON listing `manifests`. */
export function imageIndex(manifests: readonly Descriptor[]): Record<string, unknown> {
  return { schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests };
}
