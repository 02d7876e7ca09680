/**
 * Image fixtures built in code (STYLE.md "Tests"): layer tars with tar-stream, OCI image layouts
 * (single manifests and nested image indexes with platforms) and `docker save` archives in both
 * forms (classic `<id>/layer.tar`, and the OCI form Docker 25+ writes), as directories or tar
 * files. Every builder returns the digests it wrote so tests can check results and tamper on
 * purpose. zstd layers are compressed with the `zstd` CLI where installed (see compress).
 */
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { Compressor } from 'zstd-napi';
import { findTool } from './tools.js';

/** A sha256 digest string (kept local so the helper does not depend on the code under test). */
export type Digest = `sha256:${string}`;

/** sha256 of bytes as an OCI digest. */
export function digestOf(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The hex part of a digest. */
export function hexOf(d: Digest): string {
  return d.slice('sha256:'.length);
}

/** Deterministic, incompressible bytes (AES-CTR keystream of a seed): fast, reproducible. */
export function seededBytes(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const c = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([c.update(Buffer.alloc(size)), c.final()]);
}

/** Deterministic text-like, compressible bytes. */
export function seededText(seed: string, size: number): Buffer {
  const words = seededBytes(seed, Math.ceil(size / 8) + 64).toString('hex');
  const line = `${seed} lorem ipsum dolor sit amet ${words.slice(0, 48)}\n`;
  return Buffer.from(line.repeat(Math.ceil(size / line.length)).slice(0, size));
}

/** One member of a layer tar. */
export interface FileSpec {
  path: string;
  body?: string | Buffer;
  type?: 'file' | 'directory' | 'symlink';
  linkname?: string;
  mode?: number;
  /** Seconds since the epoch (default: makeTar's `mtime`). */
  mtime?: number;
}

/**
 * Packs members into an uncompressed tar (tar-stream: ustar, pax where needed, 2 zero blocks;
 * owner 0:0). Members without an mtime get `mtime` (seconds since the epoch).
 */
export async function makeTar(files: readonly FileSpec[], mtime = 1_700_000_000): Promise<Buffer> {
  const p = pack();
  const out: Buffer[] = [];
  const done = (async () => {
    for await (const c of p) out.push(c as Buffer);
  })();
  for (const f of files) {
    const type = f.type ?? 'file';
    const header = { name: f.path, mtime: new Date((f.mtime ?? mtime) * 1000), uid: 0, gid: 0 };
    if (type === 'file') {
      await new Promise<void>((resolve, reject) => p.entry({ ...header, mode: f.mode ?? 0o644 }, f.body ?? '', (err) => (err ? reject(err) : resolve())));
    } else {
      p.entry({ ...header, type, linkname: f.linkname, mode: f.mode ?? (type === 'directory' ? 0o755 : 0o777) });
    }
  }
  p.finalize();
  await done;
  return Buffer.concat(out);
}

/** Layer compression in fixtures. */
export type Compression = 'none' | 'gzip' | 'zstd';

const LAYER_MT: Record<Compression, string> = {
  none: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
};

/**
 * Compresses bytes. zstd goes through the `zstd` CLI (apt package `zstd`, which CI installs), an
 * encoder independent of ferry's; on a machine without it, through the zstd-napi library directly
 * (still not ferry's wrapper), so the fixtures build everywhere.
 */
export function compress(data: Buffer, c: Compression): Buffer {
  if (c === 'gzip') return gzipSync(data);
  if (c === 'zstd') {
    const cli = findTool('zstd');
    if (cli) return execFileSync(cli, ['-q', '-c', '-3'], { input: data, maxBuffer: 1 << 30 });
    // as the CLI writes it: level 3 with a content checksum (a damaged blob then fails to decode)
    const z = new Compressor();
    z.setParameters({ compressionLevel: 3, checksumFlag: true });
    return z.compress(data);
  }
  return data;
}

/** A layer as it sits in a layout: its tar, its blob, and their digests. */
export interface BuiltLayer {
  tar: Buffer;
  diffId: Digest;
  blob: Buffer;
  digest: Digest;
  mediaType: string;
  compression: Compression;
}

/** Builds a layer from members or a ready tar. */
export async function buildLayer(files: readonly FileSpec[] | Buffer, compression: Compression = 'none'): Promise<BuiltLayer> {
  const tar = Buffer.isBuffer(files) ? files : await makeTar(files);
  const blob = compress(tar, compression);
  return { tar, diffId: digestOf(tar), blob, digest: digestOf(blob), mediaType: LAYER_MT[compression], compression };
}

/** An image's documents and layers. */
export interface BuiltImage {
  config: Buffer;
  configDigest: Digest;
  manifest: Buffer;
  manifestDigest: Digest;
  layers: BuiltLayer[];
  platform: { os: string; architecture: string; variant?: string };
}

/** Options for buildImage. */
export interface ImageOptions {
  platform?: { os: string; architecture: string; variant?: string };
  /** Overrides the config's diff_ids (to build an image whose config lies about a layer). */
  diffIds?: Digest[];
  /** Extra config fields (labels, a marker to tell images apart). */
  label?: string;
  /** Overrides the manifest's media type. */
  manifestMediaType?: string;
}

/** Builds config and manifest for layers. */
export function buildImage(layers: BuiltLayer[], opts: ImageOptions = {}): BuiltImage {
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const config = Buffer.from(
    JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Env: ['PATH=/usr/bin:/bin'], Labels: { fixture: opts.label ?? 'image' } },
      rootfs: { type: 'layers', diff_ids: opts.diffIds ?? layers.map((l) => l.diffId) },
      history: layers.map((_, i) => ({ created_by: `fixture layer ${i}` })),
    }),
  );
  const configDigest = digestOf(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: opts.manifestMediaType ?? 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.blob.length })),
    }),
  );
  return { config, configDigest, manifest, manifestDigest: digestOf(manifest), layers, platform };
}

/** The files of a layout or archive, by relative path. */
export type FileMap = Map<string, Buffer>;

/** The path of a blob inside a layout. */
export function blobPath(d: Digest): string {
  return `blobs/sha256/${hexOf(d)}`;
}

function addImageBlobs(files: FileMap, image: BuiltImage): void {
  files.set(blobPath(image.configDigest), image.config);
  files.set(blobPath(image.manifestDigest), image.manifest);
  for (const l of image.layers) files.set(blobPath(l.digest), l.blob);
}

/** An entry of an OCI layout's index.json: one image, or a nested index of several platforms. */
export type LayoutEntry = { image: BuiltImage; tag?: string } | { index: BuiltImage[]; tag?: string };

/** Files of an OCI image layout. Returns the files and the nested index digests by entry. */
export function ociLayout(entries: readonly LayoutEntry[]): { files: FileMap; nested: (Digest | undefined)[] } {
  const files: FileMap = new Map();
  const manifests: unknown[] = [];
  const nested: (Digest | undefined)[] = [];
  for (const e of entries) {
    const annotations = e.tag === undefined ? undefined : { 'org.opencontainers.image.ref.name': e.tag };
    if ('image' in e) {
      addImageBlobs(files, e.image);
      manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: e.image.manifestDigest, size: e.image.manifest.length, annotations });
      nested.push(undefined);
    } else {
      for (const img of e.index) addImageBlobs(files, img);
      const idx = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: e.index.map((img) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: img.manifestDigest, size: img.manifest.length, platform: img.platform })),
        }),
      );
      const d = digestOf(idx);
      files.set(blobPath(d), idx);
      manifests.push({ mediaType: 'application/vnd.oci.image.index.v1+json', digest: d, size: idx.length, annotations });
      nested.push(d);
    }
  }
  files.set('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
  files.set('index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests })));
  return { files, nested };
}

/**
 * Files of a `docker save` archive. `classic`: `<config hex>.json`, `<id>/layer.tar` (uncompressed
 * or whatever the layer blob is), `<id>/VERSION`, `repositories`. `oci`: blobs under
 * blobs/sha256 plus index.json and oci-layout, with manifest.json pointing into blobs/ (Docker 25+).
 */
export function dockerArchive(images: readonly { image: BuiltImage; tags: string[] }[], form: 'classic' | 'oci'): FileMap {
  const files: FileMap = new Map();
  const manifest: unknown[] = [];
  for (const { image, tags } of images) {
    if (form === 'classic') {
      const configName = `${hexOf(image.configDigest)}.json`;
      files.set(configName, image.config);
      const layerNames = image.layers.map((l, i) => {
        // v1 layer ids are not diff_ids; make them different on purpose
        const id = createHash('sha256').update(`v1-id ${i} ${l.digest}`).digest('hex');
        files.set(`${id}/VERSION`, Buffer.from('1.0'));
        files.set(`${id}/json`, Buffer.from(JSON.stringify({ id })));
        files.set(`${id}/layer.tar`, l.blob);
        return `${id}/layer.tar`;
      });
      manifest.push({ Config: configName, RepoTags: tags, Layers: layerNames });
    } else {
      addImageBlobs(files, image);
      manifest.push({ Config: blobPath(image.configDigest), RepoTags: tags, Layers: image.layers.map((l) => blobPath(l.digest)) });
    }
  }
  if (form === 'oci') {
    const idx = images.map(({ image, tags }) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: image.manifestDigest,
      size: image.manifest.length,
      annotations: tags[0] ? { 'io.containerd.image.name': tags[0], 'org.opencontainers.image.ref.name': tags[0].split(':').pop() } : undefined,
    }));
    files.set('index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: idx })));
    files.set('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
  }
  files.set('manifest.json', Buffer.from(JSON.stringify(manifest)));
  files.set('repositories', Buffer.from('{}'));
  return files;
}

/** Writes files under `dir`. */
export async function writeFiles(dir: string, files: FileMap): Promise<void> {
  for (const [name, data] of files) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), data);
  }
}

/** The bytes of a tar holding `files` (directories implied), as `docker save` streams it. */
export async function archiveBytes(files: FileMap): Promise<Buffer> {
  return makeTar([...files].map(([path, body]) => ({ path, body })));
}

/** Writes `files` as one tar file. */
export async function writeArchive(path: string, files: FileMap): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, await archiveBytes(files));
}

/** A copy of `data` with the bits of `mask` flipped in the byte at `at` (same size, other digest). */
export function flipByte(data: Buffer, at: number, mask = 0x01): Buffer {
  const out = Buffer.from(data);
  out.writeUInt8(out.readUInt8(at) ^ mask, at);
  return out;
}
