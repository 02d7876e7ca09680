/**
 * Independent readers for what imagegen writes: OCI layouts and layer tars are read back with
 * node:zlib and tar-stream only, never with imagegen's own model, so the tests check the bytes.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { requireTool } from '@ferry/test-support';
import tar from 'tar-stream';

/** One entry of a layer tar as read back. */
export interface ReadEntry {
  name: string;
  type: string;
  size: number;
  mode: number;
  mtime: number;
  linkname: string | null;
  /** sha256 hex of the body (regular files). */
  sha?: string;
  /** First bytes of the body (regular files). */
  head?: Buffer;
}

/** sha256 hex of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Parsed JSON of a blob in a layout. */
export async function blobJson<T = Record<string, any>>(dir: string, digest: string): Promise<T> {
  return JSON.parse(await readFile(join(dir, 'blobs', 'sha256', digest.slice(7)), 'utf8')) as T;
}

/** A stream of a layer's uncompressed tar bytes. */
export function layerStream(path: string, mediaType: string): Readable {
  const file = createReadStream(path);
  if (mediaType.endsWith('+gzip')) return file.pipe(createGunzip());
  if (mediaType.endsWith('+zstd')) {
    const child = spawn(requireTool('zstd'), ['-dcq'], { stdio: ['pipe', 'pipe', 'inherit'] });
    file.pipe(child.stdin);
    return child.stdout;
  }
  return file;
}

/** sha256 hex and size of a layer's uncompressed tar. */
export async function diffIdOf(path: string, mediaType: string): Promise<{ hex: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of layerStream(path, mediaType)) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { hex: h.digest('hex'), size };
}

/** Every entry of a tar stream, with body digests. */
export async function readTar(source: Readable): Promise<ReadEntry[]> {
  const out: ReadEntry[] = [];
  const extract = tar.extract();
  const reading = (async () => {
    for await (const entry of extract) {
      const h = createHash('sha256');
      let head: Buffer | undefined;
      for await (const chunk of entry) {
        h.update(chunk as Buffer);
        head ??= Buffer.from((chunk as Buffer).subarray(0, 64));
      }
      const hd = entry.header;
      const e: ReadEntry = { name: hd.name.replace(/\/$/, ''), type: hd.type, size: hd.size, mode: hd.mode, mtime: hd.mtime.getTime() / 1000, linkname: hd.linkname ?? null };
      if (hd.type === 'file') {
        e.sha = h.digest('hex');
        e.head = head ?? Buffer.alloc(0);
      }
      out.push(e);
    }
  })();
  await Promise.all([pipeline(source, extract as unknown as NodeJS.WritableStream), reading]);
  return out;
}

/** A manifest of a layout, with its config, resolved from a tag (and platform for an index). */
export interface ReadImage {
  manifestDigest: string;
  manifest: Record<string, any>;
  config: Record<string, any>;
  layers: Array<{ path: string; mediaType: string; digest: string }>;
}

/** Resolves `tag` in the layout at `dir`, choosing `platform` (os/arch) inside an image index. */
export async function readImage(dir: string, tag: string, platform?: string): Promise<ReadImage> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Array<Record<string, any>> };
  let desc = index.manifests.find((d) => d['annotations']?.['org.opencontainers.image.ref.name'] === tag);
  if (!desc) throw new Error(`no tag ${tag}`);
  if (desc['mediaType'] === 'application/vnd.oci.image.index.v1+json') {
    const nested = await blobJson<{ manifests: Array<Record<string, any>> }>(dir, desc['digest']);
    desc = nested.manifests.find((d) => platform === undefined || `${d['platform'].os}/${d['platform'].architecture}` === platform);
    if (!desc) throw new Error(`no platform ${platform}`);
  }
  const manifest = await blobJson(dir, desc['digest']);
  const config = await blobJson(dir, manifest['config'].digest);
  const layers = (manifest['layers'] as Array<Record<string, any>>).map((l) => ({ path: join(dir, 'blobs', 'sha256', String(l['digest']).slice(7)), mediaType: String(l['mediaType']), digest: String(l['digest']) }));
  return { manifestDigest: desc['digest'], manifest, config, layers };
}

/** The entries of each layer of an image. */
export async function readLayers(img: ReadImage): Promise<ReadEntry[][]> {
  const out: ReadEntry[][] = [];
  for (const l of img.layers) out.push(await readTar(layerStream(l.path, l.mediaType)));
  return out;
}

/** Flattens layers with OCI whiteouts, written independently of imagegen's flattenLayers. */
export function flatten(layers: ReadEntry[][]): Map<string, ReadEntry> {
  const state = new Map<string, ReadEntry>();
  const drop = (path: string, keep: boolean): void => {
    if (!keep) state.delete(path);
    for (const k of [...state.keys()]) if (k.startsWith(`${path}/`)) state.delete(k);
  };
  for (const layer of layers) {
    for (const e of layer) {
      const slash = e.name.lastIndexOf('/');
      const dir = e.name.slice(0, slash);
      const base = e.name.slice(slash + 1);
      if (base === '.wh..wh..opq') drop(dir, true);
      else if (base.startsWith('.wh.')) drop(`${slash === -1 ? '' : dir + '/'}${base.slice(4)}`, false);
    }
    for (const e of layer) if (!e.name.slice(e.name.lastIndexOf('/') + 1).startsWith('.wh.')) state.set(e.name, e);
  }
  return state;
}

/** Every file below `dir`, relative, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

