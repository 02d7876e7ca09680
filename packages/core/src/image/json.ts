/** Shape checks for OCI/Docker JSON documents: malformed input is FERRY_ERR_IMAGE_BAD_JSON. */
import { FerryError } from '../errors.js';
import { isDigest, type Digest } from '../util/digest.js';

/** Largest manifest, index or config ferry reads (4 MiB), checked before reading. */
export const MAX_JSON_BYTES = 4 * 1024 * 1024;

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string> | undefined;
  platform?: { os: string; architecture: string; variant?: string } | undefined;
}

function bad(where: string, msg: string): FerryError {
  return new FerryError('FERRY_ERR_IMAGE_BAD_JSON', `${where}: ${msg}`);
}

/** Parses a JSON object or throws FERRY_ERR_IMAGE_BAD_JSON. */
export function parseJsonObject(bytes: Buffer, where: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new FerryError('FERRY_ERR_IMAGE_BAD_JSON', `${where}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw bad(where, 'is not a JSON object');
  return v as Record<string, unknown>;
}

/** Checks a descriptor's shape. */
export function toDescriptor(v: unknown, where: string): Descriptor {
  const d = v as Record<string, unknown> | null;
  if (!d || typeof d !== 'object') throw bad(where, 'descriptor is not an object');
  if (typeof d.mediaType !== 'string') throw bad(where, 'descriptor has no mediaType');
  if (!isDigest(d.digest)) throw bad(where, `descriptor digest ${JSON.stringify(d.digest)} is not a sha256 digest`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw bad(where, 'descriptor size is not a non-negative integer');
  const p = d.platform as Record<string, unknown> | undefined;
  const platform = p && typeof p.os === 'string' && typeof p.architecture === 'string' ? { os: p.os, architecture: p.architecture, variant: typeof p.variant === 'string' ? p.variant : undefined } : undefined;
  const annotations = d.annotations && typeof d.annotations === 'object' ? (d.annotations as Record<string, string>) : undefined;
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, annotations, platform };
}

/** Checks an array of descriptors. */
export function toDescriptors(v: unknown, where: string): Descriptor[] {
  if (!Array.isArray(v)) throw bad(where, 'expected an array of descriptors');
  return v.map((x, i) => toDescriptor(x, `${where}[${i}]`));
}

/** The diff_ids of an image config, checked. */
export function configDiffIds(config: Record<string, unknown>, where: string): Digest[] {
  const rootfs = config.rootfs as Record<string, unknown> | undefined;
  if (!rootfs || rootfs.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) throw bad(where, 'config has no rootfs.diff_ids');
  return rootfs.diff_ids.map((d, i) => {
    if (!isDigest(d)) throw bad(where, `rootfs.diff_ids[${i}] is not a sha256 digest`);
    return d;
  });
}
