/**
 * Option types and their defaults, merged in one place ({@link resolveGenOptions},
 * {@link resolveWriteOptions}).
 */

/** The images writeImagePair can write: a release pair and an unrelated app on the same base. */
export type ImageTag = 'v1' | 'v2' | 'other';

/** How layer blobs are stored. `zstd` needs the `zstd` command on PATH. */
export type LayerCompression = 'gzip' | 'none' | 'zstd';

/** An OCI platform. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** Options that decide what the generated images contain. */
export interface ImageGenOptions {
  /** Seed of every random choice; the same seed gives byte-identical images. Default 1. */
  seed?: number;
  /**
   * Uncompressed size of the `v1` image in bytes (sum of its layer tars). Other images come out
   * about the same size. Default 40 MiB. At least 256 KiB; from 512 KiB up v1 lands within 1% of
   * it (below that the fixed skeleton of tar headers makes images up to 30% larger).
   */
  targetBytes?: number;
  /**
   * Multiplier on file counts. Default `sqrt(targetBytes / 40 MiB)` (at most 20, and falling
   * linearly below 4 MiB): about 3000 files at the default size, 15000 at 1 GiB.
   */
  fileScale?: number;
  /** Build time of `v1`'s base layer (Date or seconds since the epoch). Default 2024-01-15T00:00:00Z. */
  mtime?: Date | number;
  /** Platform as `os/arch[/variant]`. Default `linux/amd64`. */
  platform?: string;
  /** Name of the application (its binary, /etc directory and image labels). Default `edgeapp`. */
  appName?: string;
}

/** {@link ImageGenOptions} with every default applied. */
export interface ResolvedGenOptions {
  seed: number;
  targetBytes: number;
  fileScale: number;
  /** Seconds since the epoch. */
  mtime: number;
  platform: Platform;
  appName: string;
}

/** Options for how images are written. */
export interface WriteOptions {
  /** Layer blob compression. Default `gzip`. */
  layerCompression?: LayerCompression;
  /** gzip level (default 6, as docker/containerd) or zstd level (default 3). */
  compressionLevel?: number;
  /** Aborts the write; partial temp files are removed. */
  signal?: AbortSignal;
}

/** {@link WriteOptions} with every default applied. */
export interface ResolvedWriteOptions {
  layerCompression: LayerCompression;
  compressionLevel: number;
  signal: AbortSignal | undefined;
}

/** Default uncompressed image size: 40 MiB. */
export const DEFAULT_TARGET_BYTES = 40 * 1024 * 1024;

/** Default base build time: 2024-01-15T00:00:00Z. */
export const DEFAULT_MTIME = Date.UTC(2024, 0, 15) / 1000;

/** Parses `os/arch[/variant]`. */
export function parsePlatform(text: string): Platform {
  const [os, architecture, variant, extra] = text.split('/');
  if (!os || !architecture || extra !== undefined || variant === '') throw new TypeError(`bad platform ${JSON.stringify(text)}: expected os/arch[/variant]`);
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** Formats a platform as `os/arch[/variant]`. */
export function formatPlatform(p: Platform): string {
  return p.variant === undefined ? `${p.os}/${p.architecture}` : `${p.os}/${p.architecture}/${p.variant}`;
}

/**
 * File-count multiplier for an image size: grows with the square root of the size (bigger images
 * have more and bigger files), and linearly below 4 MiB so tiny images are not all tar headers.
 */
export function defaultFileScale(targetBytes: number): number {
  const knee = 4 * 1024 * 1024;
  const atKnee = Math.sqrt(knee / DEFAULT_TARGET_BYTES);
  if (targetBytes < knee) return atKnee * (targetBytes / knee);
  return Math.min(20, Math.sqrt(targetBytes / DEFAULT_TARGET_BYTES));
}

/** Applies the defaults of {@link ImageGenOptions}. */
export function resolveGenOptions(opts: ImageGenOptions = {}): ResolvedGenOptions {
  const targetBytes = opts.targetBytes ?? DEFAULT_TARGET_BYTES;
  if (!Number.isFinite(targetBytes) || targetBytes < 256 * 1024) throw new RangeError(`targetBytes must be at least 256 KiB, got ${targetBytes}`);
  const fileScale = opts.fileScale ?? defaultFileScale(targetBytes);
  const mtime = opts.mtime === undefined ? DEFAULT_MTIME : typeof opts.mtime === 'number' ? opts.mtime : opts.mtime.getTime() / 1000;
  return {
    seed: opts.seed ?? 1,
    targetBytes,
    fileScale,
    mtime: Math.floor(mtime),
    platform: parsePlatform(opts.platform ?? 'linux/amd64'),
    appName: opts.appName ?? 'edgeapp',
  };
}

/** Applies the defaults of {@link WriteOptions}. */
export function resolveWriteOptions(opts: WriteOptions = {}): ResolvedWriteOptions {
  const layerCompression = opts.layerCompression ?? 'gzip';
  return {
    layerCompression,
    compressionLevel: opts.compressionLevel ?? (layerCompression === 'zstd' ? 3 : 6),
    signal: opts.signal,
  };
}

/** How the image budget splits: about 60% base layer, the rest app plus config layers. */
export function layerBudgets(o: ResolvedGenOptions): { base: number; upper: number } {
  const base = Math.round(o.targetBytes * 0.6);
  return { base, upper: o.targetBytes - base };
}

/** One day in seconds. */
export const DAY = 86400;
