/**
 * Checks exported images with nothing but fs, zlib and tar-stream (never ferry's own readers), so
 * a bug shared by reader and writer cannot hide: the config's digest, every blob's digest, and
 * every layer's sha256 against its diff_id.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract } from 'tar-stream';
import { digestOf, hexOf, type Digest } from './images.js';

/** What an exported image must be. */
export interface ExpectedLayers {
  configDigest: Digest;
  diffIds: Digest[];
}

async function sha256File(path: string, gunzip: boolean): Promise<Digest> {
  const hash = createHash('sha256');
  const sink = async function (src: AsyncIterable<Buffer>): Promise<void> {
    for await (const c of src) hash.update(c);
  };
  if (gunzip) await pipeline(createReadStream(path), createGunzip(), sink);
  else await pipeline(createReadStream(path), sink);
  return `sha256:${hash.digest('hex')}`;
}

function fail(msg: string): never {
  throw new Error(`export check: ${msg}`);
}

/** What verifyOciLayout found. */
export interface LayoutFacts {
  manifestDigest: Digest;
  layerMediaTypes: string[];
}

/** Checks the image tagged `tag` in the OCI layout at `dir`. */
export async function verifyOciLayout(dir: string, tag: string, want: ExpectedLayers): Promise<LayoutFacts> {
  const blob = (d: Digest): string => join(dir, 'blobs', 'sha256', hexOf(d));
  const layout = JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8')) as { imageLayoutVersion?: string };
  if (layout.imageLayoutVersion !== '1.0.0') fail(`oci-layout says ${JSON.stringify(layout)}`);
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: Digest; size: number; annotations?: Record<string, string> }[] };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag) ?? fail(`no manifest tagged ${tag} in index.json`);
  const mbytes = await readFile(blob(entry.digest));
  if (digestOf(mbytes) !== entry.digest || mbytes.length !== entry.size) fail(`manifest blob ${entry.digest} does not match its descriptor`);
  const manifest = JSON.parse(mbytes.toString('utf8')) as { config: { digest: Digest; size: number }; layers: { mediaType: string; digest: Digest; size: number }[] };
  if (manifest.config.digest !== want.configDigest) fail(`config digest ${manifest.config.digest}, expected ${want.configDigest}`);
  const config = await readFile(blob(manifest.config.digest));
  if (digestOf(config) !== want.configDigest || config.length !== manifest.config.size) fail('config blob does not match its digest');
  const diffIds = (JSON.parse(config.toString('utf8')) as { rootfs: { diff_ids: Digest[] } }).rootfs.diff_ids;
  if (JSON.stringify(diffIds) !== JSON.stringify(want.diffIds)) fail('config diff_ids differ');
  if (manifest.layers.length !== want.diffIds.length) fail(`${manifest.layers.length} layers, expected ${want.diffIds.length}`);
  for (const [i, l] of manifest.layers.entries()) {
    const gz = l.mediaType.endsWith('+gzip');
    if (!gz && !l.mediaType.endsWith('.tar')) fail(`layer ${i} has media type ${l.mediaType}`);
    if ((await sha256File(blob(l.digest), false)) !== l.digest) fail(`layer ${i} blob does not match ${l.digest}`);
    const diffId = gz ? await sha256File(blob(l.digest), true) : l.digest;
    if (diffId !== want.diffIds[i]) fail(`layer ${i} uncompressed is ${diffId}, its diff_id is ${want.diffIds[i]}`);
  }
  return { manifestDigest: entry.digest, layerMediaTypes: manifest.layers.map((l) => l.mediaType) };
}

/** Checks a `docker save` archive (a file, or a stream of one) holding one image. Returns its RepoTags. */
export async function verifyDockerArchive(file: string | Readable, want: ExpectedLayers): Promise<string[]> {
  const hashes = new Map<string, Digest>();
  const small = new Map<string, Buffer>();
  const ex = extract();
  const done = (async () => {
    for await (const entry of ex) {
      const hash = createHash('sha256');
      const parts: Buffer[] = [];
      for await (const c of entry) {
        hash.update(c as Buffer);
        if (!entry.header.name.endsWith('.tar')) parts.push(c as Buffer);
      }
      hashes.set(entry.header.name, `sha256:${hash.digest('hex')}`);
      if (parts.length > 0) small.set(entry.header.name, Buffer.concat(parts));
    }
  })();
  await pipeline(typeof file === 'string' ? createReadStream(file) : file, ex);
  await done;
  const list = JSON.parse((small.get('manifest.json') ?? fail('no manifest.json')).toString('utf8')) as { Config: string; RepoTags?: string[]; Layers: string[] }[];
  if (list.length !== 1) fail(`manifest.json lists ${list.length} images`);
  const m = list[0]!;
  if (hashes.get(m.Config) !== want.configDigest) fail(`config ${m.Config} hashes to ${hashes.get(m.Config)}, expected ${want.configDigest}`);
  const layers = m.Layers.map((name) => hashes.get(name) ?? fail(`layer ${name} is missing`));
  if (JSON.stringify(layers) !== JSON.stringify(want.diffIds)) fail(`layer tars hash to ${layers.join(', ')}, expected ${want.diffIds.join(', ')}`);
  return m.RepoTags ?? [];
}
