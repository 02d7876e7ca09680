/**
 * Image readers (DESIGN.md section 4): OCI image layouts (with image indexes and platforms) and
 * `docker save` archives (classic manifest.json layout and the OCI-layout form newer Docker
 * writes). Every document is digest-checked; malformed input gets a stable error code.
 */
import { stat } from 'node:fs/promises';
import { FerryError, toFerryError } from '../errors.js';
import { sha256, type Digest, digestHex } from '../util/digest.js';
import { DirFiles, TarFiles, type BlobFiles } from './blobs.js';
import { MAX_JSON_BYTES, configDiffIds, parseJsonObject, toDescriptor, toDescriptors, type Descriptor } from './json.js';
import { openLayerStream } from './layer.js';
import { MT, layerCompression, sniffCompression, type Compression } from './media.js';
import { formatPlatform, hostPlatform, platformMatches, type Platform } from './platform.js';

/** One layer of a source image. */
export interface SourceLayer {
  diffId: Digest;
  compression: Compression;
  /** Blob digest and size when the source declares them (OCI). */
  digest?: Digest | undefined;
  size?: number | undefined;
  mediaType?: string | undefined;
  /** Streams the uncompressed tar, verifying as it flows (see openLayerStream). */
  open(options?: { verifyDiffId?: boolean; signal?: AbortSignal }): AsyncGenerator<Buffer>;
}

/** An image found in a layout or archive. */
export interface SourceImage {
  /** Where it came from, for messages. */
  where: string;
  /** The name it carries in the source (ref-name annotation or RepoTags), if any. */
  ref?: string | undefined;
  platform?: string | undefined;
  config: Buffer;
  configDigest: Digest;
  layers: SourceLayer[];
  /** Manifest annotations, kept on import. */
  annotations?: Record<string, string> | undefined;
}

/** Options for openImage. */
export interface OpenImageOptions {
  /** Which image to take when the source holds several: a tag or name:tag to match. */
  ref?: string | undefined;
  /** Platform for image indexes; default the host's. */
  platform?: Platform | undefined;
}

interface Candidate {
  ref: string | undefined;
  platform: Platform | undefined;
  manifest: Descriptor;
}

const REF_ANNOTATION = 'org.opencontainers.image.ref.name';

function refMatches(have: string | undefined, want: string): boolean {
  if (have === undefined) return false;
  return have === want || have.endsWith(`:${want}`) || want.endsWith(`:${have}`) || have.endsWith(`/${want}`);
}

function blobPath(d: Digest): string {
  return `blobs/sha256/${digestHex(d)}`;
}

async function readVerified(files: BlobFiles, d: Descriptor | { digest: Digest; size?: number }, what: string): Promise<Buffer> {
  const name = blobPath(d.digest);
  if (!(await files.has(name))) throw new FerryError('FERRY_ERR_IMAGE_MISSING_BLOB', `${files.where}: ${what} ${d.digest} is missing`, { details: { digest: d.digest } });
  const bytes = await files.read(name, MAX_JSON_BYTES);
  if (sha256(bytes) !== d.digest) throw new FerryError('FERRY_ERR_DIGEST_MISMATCH', `${files.where}: ${what} ${d.digest} does not match its digest`, { details: { digest: d.digest } });
  if (d.size !== undefined && bytes.length !== d.size) throw new FerryError('FERRY_ERR_SIZE_MISMATCH', `${files.where}: ${what} ${d.digest} is ${bytes.length} bytes, descriptor says ${d.size}`);
  return bytes;
}

async function ociCandidates(files: BlobFiles): Promise<Candidate[]> {
  const index = parseJsonObject(await files.read('index.json', MAX_JSON_BYTES), `${files.where}/index.json`);
  const out: Candidate[] = [];
  for (const d of toDescriptors(index.manifests, `${files.where}/index.json manifests`)) {
    const ref = d.annotations?.[REF_ANNOTATION];
    if (d.mediaType === MT.ociIndex || d.mediaType === MT.dockerList) {
      const nested = parseJsonObject(await readVerified(files, d, 'image index'), `image index ${d.digest}`);
      for (const m of toDescriptors(nested.manifests, `image index ${d.digest}`)) {
        if (m.mediaType === MT.ociManifest || m.mediaType === MT.dockerManifest) out.push({ ref, platform: m.platform, manifest: m });
      }
    } else if (d.mediaType === MT.ociManifest || d.mediaType === MT.dockerManifest) {
      out.push({ ref, platform: d.platform, manifest: d });
    } else {
      throw new FerryError('FERRY_ERR_IMAGE_MEDIA_TYPE', `${files.where}/index.json: unsupported manifest media type ${d.mediaType}`);
    }
  }
  return out;
}

function choose(cands: Candidate[], options: OpenImageOptions, where: string): Candidate {
  let pool = cands;
  if (options.ref !== undefined) {
    pool = pool.filter((c) => refMatches(c.ref, options.ref!));
    if (pool.length === 0) {
      const names = [...new Set(cands.map((c) => c.ref ?? '(unnamed)'))].join(', ');
      throw new FerryError('FERRY_ERR_REF_NOT_FOUND', `${where} has no image named ${options.ref} (it has: ${names || 'none'})`);
    }
  }
  const want = options.platform ?? hostPlatform();
  const withPlatform = pool.filter((c) => c.platform !== undefined);
  if (withPlatform.length > 0) {
    const matching = pool.filter((c) => c.platform === undefined || platformMatches(c.platform, want));
    if (matching.length === 0) {
      const have = withPlatform.map((c) => formatPlatform(c.platform!)).join(', ');
      throw new FerryError('FERRY_ERR_IMAGE_PLATFORM', `${where}: no manifest for platform ${formatPlatform(want)} (it has: ${have})`);
    }
    pool = matching;
  }
  if (pool.length === 0) throw new FerryError('FERRY_ERR_IMAGE_NOT_FOUND', `${where} holds no image`);
  const refs = new Set(pool.map((c) => c.ref));
  if (pool.length > 1 && refs.size > 1) {
    throw new FerryError('FERRY_ERR_IMAGE_AMBIGUOUS', `${where} holds several images (${[...refs].map((r) => r ?? '(unnamed)').join(', ')}); name one`);
  }
  return pool[0]!;
}

async function openOci(files: BlobFiles, options: OpenImageOptions): Promise<SourceImage> {
  const cand = choose(await ociCandidates(files), options, files.where);
  const mbytes = await readVerified(files, cand.manifest, 'manifest');
  const manifest = parseJsonObject(mbytes, `manifest ${cand.manifest.digest}`);
  const mt = (manifest.mediaType as string | undefined) ?? cand.manifest.mediaType;
  if (mt !== MT.ociManifest && mt !== MT.dockerManifest) throw new FerryError('FERRY_ERR_IMAGE_MEDIA_TYPE', `manifest ${cand.manifest.digest} has unsupported media type ${mt}`);
  const configDesc = toDescriptor(manifest.config, `manifest ${cand.manifest.digest} config`);
  const config = await readVerified(files, configDesc, 'config');
  const diffIds = configDiffIds(parseJsonObject(config, `config ${configDesc.digest}`), `config ${configDesc.digest}`);
  const layerDescs = toDescriptors(manifest.layers, `manifest ${cand.manifest.digest} layers`);
  if (layerDescs.length !== diffIds.length) {
    throw new FerryError('FERRY_ERR_IMAGE_BAD_JSON', `manifest ${cand.manifest.digest} has ${layerDescs.length} layers but its config lists ${diffIds.length} diff_ids`);
  }
  const layers = await Promise.all(layerDescs.map(async (d, i): Promise<SourceLayer> => {
    const compression = layerCompression(d.mediaType);
    if (compression === undefined) throw new FerryError('FERRY_ERR_IMAGE_MEDIA_TYPE', `layer ${d.digest} has unsupported media type ${d.mediaType}`);
    const name = blobPath(d.digest);
    if (!(await files.has(name))) throw new FerryError('FERRY_ERR_IMAGE_MISSING_BLOB', `${files.where}: layer ${d.digest} is missing`, { details: { digest: d.digest } });
    const blob = { what: `layer ${i} (${d.digest})`, compression, digest: d.digest, size: d.size, diffId: diffIds[i]! };
    return { diffId: diffIds[i]!, compression, digest: d.digest, size: d.size, mediaType: d.mediaType, open: (o = {}) => openLayerStream(files.stream(name), blob, o.verifyDiffId ?? true, o.signal) };
  }));
  return {
    where: files.where,
    ref: cand.ref,
    platform: cand.platform ? formatPlatform(cand.platform) : undefined,
    config,
    configDigest: configDesc.digest,
    layers,
    annotations: manifest.annotations as Record<string, string> | undefined,
  };
}

async function openDockerManifest(files: BlobFiles, options: OpenImageOptions): Promise<SourceImage> {
  let list: unknown;
  try {
    list = JSON.parse((await files.read('manifest.json', MAX_JSON_BYTES)).toString('utf8'));
  } catch (err) {
    if (err instanceof FerryError) throw err;
    throw new FerryError('FERRY_ERR_IMAGE_BAD_JSON', `${files.where}/manifest.json is not valid JSON`, { cause: err });
  }
  if (!Array.isArray(list) || list.length === 0) throw new FerryError('FERRY_ERR_IMAGE_BAD_JSON', `${files.where}/manifest.json is not a non-empty array`);
  const entries = list.map((e, i) => {
    const o = e as Record<string, unknown>;
    if (!o || typeof o.Config !== 'string' || !Array.isArray(o.Layers) || !o.Layers.every((l) => typeof l === 'string')) {
      throw new FerryError('FERRY_ERR_IMAGE_BAD_JSON', `${files.where}/manifest.json[${i}] lacks Config or Layers`);
    }
    const tags = Array.isArray(o.RepoTags) ? (o.RepoTags as unknown[]).filter((t): t is string => typeof t === 'string') : [];
    return { config: o.Config, layers: o.Layers as string[], tags };
  });
  let pick = entries;
  if (options.ref !== undefined) pick = entries.filter((e) => e.tags.some((t) => refMatches(t, options.ref!)));
  if (pick.length === 0) throw new FerryError('FERRY_ERR_REF_NOT_FOUND', `${files.where} has no image named ${options.ref} (it has: ${entries.flatMap((e) => e.tags).join(', ') || 'none'})`);
  if (pick.length > 1) throw new FerryError('FERRY_ERR_IMAGE_AMBIGUOUS', `${files.where} holds ${pick.length} images (${pick.flatMap((e) => e.tags).join(', ')}); name one`);
  const entry = pick[0]!;
  if (!(await files.has(entry.config))) throw new FerryError('FERRY_ERR_IMAGE_MISSING_BLOB', `${files.where}: config ${entry.config} is missing`);
  const config = await files.read(entry.config, MAX_JSON_BYTES);
  const configDigest = sha256(config);
  const named = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(entry.config);
  if (named && `sha256:${named[1]}` !== configDigest) throw new FerryError('FERRY_ERR_DIGEST_MISMATCH', `${files.where}: config ${entry.config} does not match its digest`);
  const diffIds = configDiffIds(parseJsonObject(config, `${files.where}/${entry.config}`), `${files.where}/${entry.config}`);
  if (diffIds.length !== entry.layers.length) throw new FerryError('FERRY_ERR_IMAGE_BAD_JSON', `${files.where}: manifest.json lists ${entry.layers.length} layers, config ${diffIds.length} diff_ids`);
  const layers = await Promise.all(entry.layers.map(async (name, i): Promise<SourceLayer> => {
    if (!(await files.has(name))) throw new FerryError('FERRY_ERR_IMAGE_MISSING_BLOB', `${files.where}: layer ${name} is missing`);
    const compression = sniffCompression(await headOf(files, name));
    const m = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(name);
    const digest = m ? (`sha256:${m[1]}` as Digest) : undefined;
    const size = await files.size(name);
    const blob = { what: `layer ${i} (${name})`, compression, digest, size, diffId: diffIds[i]! };
    return { diffId: diffIds[i]!, compression, digest, size, open: (o = {}) => openLayerStream(files.stream(name), blob, o.verifyDiffId ?? true, o.signal) };
  }));
  return { where: files.where, ref: entry.tags[0], config, configDigest, layers };
}

async function headOf(files: BlobFiles, name: string): Promise<Buffer> {
  const s = files.stream(name);
  try {
    for await (const chunk of s) return (chunk as Buffer).subarray(0, 4);
    return Buffer.alloc(0);
  } finally {
    s.destroy();
  }
}

/**
 * Opens an image from an OCI image layout directory or a `docker save` archive (tar file, or a
 * directory it was extracted to). Throws FERRY_ERR_IMAGE_* codes for anything malformed.
 */
export async function openImage(path: string, options: OpenImageOptions = {}): Promise<SourceImage> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT' || errno === 'ENOTDIR') throw new FerryError('FERRY_ERR_IMAGE_NOT_FOUND', `${path} does not exist`, { cause: err });
    throw toFerryError(err, `opening ${path}`);
  }
  // a FIFO or a device is no archive (and opening a FIFO would wait for a writer)
  if (!st.isDirectory() && !st.isFile()) throw new FerryError('FERRY_ERR_IMAGE_NOT_FOUND', `${path} is neither a directory nor a regular file`);
  const files: BlobFiles = st.isDirectory() ? new DirFiles(path) : await TarFiles.open(path).catch((err: unknown) => {
    throw toFerryError(err, `reading ${path}`);
  });
  if (await files.has('manifest.json')) return openDockerManifest(files, options);
  if (await files.has('index.json')) return openOci(files, options);
  throw new FerryError('FERRY_ERR_IMAGE_NOT_FOUND', `${path} is neither an OCI image layout (no index.json) nor a docker archive (no manifest.json)`);
}
