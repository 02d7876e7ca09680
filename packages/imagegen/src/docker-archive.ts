/**
 * writeDockerArchive: images as a classic `docker save` tar: `manifest.json` (Config, RepoTags,
 * Layers), `repositories`, `<config hex>.json` and one `<layer id>/` directory per layer holding
 * `VERSION`, `json` and the uncompressed `layer.tar`.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { imageConfig, type LayerSpec } from './image-json.js';
import { buildImageSet } from './images.js';
import { waitDrain, writeLayerFile, type LayerWriteResult } from './layer-writer.js';
import { resolveGenOptions, type ImageGenOptions, type ImageTag } from './options.js';

/** Options for {@link writeDockerArchive}. */
export interface DockerArchiveOptions extends ImageGenOptions {
  /** Images to include. Default `['v1']`. */
  tags?: ImageTag[];
  /** Repository of the RepoTags (`<repository>:<tag>`). Default `ferry/<appName>`. */
  repository?: string;
  signal?: AbortSignal;
}

/** One image of a written archive. */
export interface DockerArchiveImage {
  repoTag: string;
  /** sha256 of the config JSON: the image ID docker shows. */
  configDigest: string;
  diffIds: string[];
  /** `<id>/layer.tar` paths, bottom first, as in manifest.json. */
  layerPaths: string[];
}

/** What {@link writeDockerArchive} wrote. */
export interface WrittenDockerArchive {
  path: string;
  images: Partial<Record<ImageTag, DockerArchiveImage>>;
}

/** A member of the outer tar: bytes, or a file streamed from disk. */
interface Member {
  name: string;
  type: 'directory' | 'file';
  data?: Buffer;
  file?: string;
  size?: number;
}

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

async function packMembers(path: string, members: Member[], mtime: Date, signal: AbortSignal | undefined): Promise<void> {
  const pack = tar.pack();
  const feeding = (async () => {
    for (const m of members.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      signal?.throwIfAborted();
      const header = { name: m.name, type: m.type, mode: m.type === 'directory' ? 0o755 : 0o644, mtime, size: m.data?.length ?? m.size ?? 0 };
      if (m.file === undefined) {
        const data = m.data ?? Buffer.alloc(0);
        await new Promise<void>((res, rej) => pack.entry(header, data, (err) => (err ? rej(err) : res())));
        continue;
      }
      let settle!: (err?: Error | null) => void;
      const done = new Promise<void>((res, rej) => (settle = (err) => (err ? rej(err) : res())));
      const w = pack.entry(header, settle);
      w.on('error', () => undefined); // reported through settle
      for await (const chunk of createReadStream(m.file)) if (!w.write(chunk as Buffer)) await waitDrain(w);
      w.end(undefined);
      await done;
    }
    pack.finalize();
  })().catch((err: unknown) => {
    pack.destroy(err as Error);
    throw err;
  });
  await Promise.all([feeding, pipeline(pack as unknown as Readable, createWriteStream(path), { signal })]);
}

/**
 * Writes the images named by `opts.tags` as one `docker save` archive at `path` (via a temp file
 * and rename). Layers are uncompressed; layers shared by several images are stored once.
 */
export async function writeDockerArchive(path: string, opts: DockerArchiveOptions = {}): Promise<WrittenDockerArchive> {
  const o = resolveGenOptions(opts);
  const tags = opts.tags ?? ['v1'];
  const repository = opts.repository ?? `ferry/${o.appName}`;
  const set = buildImageSet(opts, tags);
  const work = await mkdtemp(join(dirname(path), '.imagegen-'));
  try {
    const written = new Map<LayerSpec, LayerWriteResult & { file: string }>();
    const members = new Map<string, Member>();
    const manifest: Array<{ Config: string; RepoTags: string[]; Layers: string[] }> = [];
    const repositories: Record<string, Record<string, string>> = {};
    const images: Partial<Record<ImageTag, DockerArchiveImage>> = {};
    for (const tag of tags) {
      const spec = set.images[tag];
      if (!spec) continue;
      const layers: Array<LayerWriteResult & { file: string }> = [];
      for (const l of spec.layers) {
        let r = written.get(l);
        if (!r) {
          const file = join(work, `layer-${written.size}.tar`);
          r = { ...(await writeLayerFile(file, l.entries, { compression: 'none', level: 0, signal: opts.signal })), file };
          written.set(l, r);
        }
        layers.push(r);
      }
      // Legacy v1 layer IDs chain each diff_id onto its parent's ID, as docker save did.
      let parent = '';
      const layerPaths: string[] = [];
      for (const l of layers) {
        const id = sha256(`${parent}\n${l.diffId}`);
        const json = { id, ...(parent ? { parent } : {}), created: new Date(spec.created * 1000).toISOString(), os: 'linux' };
        members.set(`${id}/`, { name: `${id}/`, type: 'directory' });
        members.set(`${id}/VERSION`, { name: `${id}/VERSION`, type: 'file', data: Buffer.from('1.0') });
        members.set(`${id}/json`, { name: `${id}/json`, type: 'file', data: Buffer.from(JSON.stringify(json)) });
        members.set(`${id}/layer.tar`, { name: `${id}/layer.tar`, type: 'file', file: l.file, size: (await stat(l.file)).size });
        layerPaths.push(`${id}/layer.tar`);
        parent = id;
      }
      const diffIds = layers.map((l) => l.diffId);
      const config = Buffer.from(JSON.stringify(imageConfig(spec, diffIds)));
      const hex = sha256(config);
      members.set(`${hex}.json`, { name: `${hex}.json`, type: 'file', data: config });
      const repoTag = `${repository}:${tag}`;
      manifest.push({ Config: `${hex}.json`, RepoTags: [repoTag], Layers: layerPaths });
      (repositories[repository] ??= {})[tag] = parent;
      images[tag] = { repoTag, configDigest: `sha256:${hex}`, diffIds, layerPaths };
    }
    members.set('manifest.json', { name: 'manifest.json', type: 'file', data: Buffer.from(JSON.stringify(manifest)) });
    members.set('repositories', { name: 'repositories', type: 'file', data: Buffer.from(JSON.stringify(repositories)) });
    const tmp = `${path}.tmp-${process.pid}`;
    try {
      await packMembers(tmp, [...members.values()], new Date(o.mtime * 1000), opts.signal);
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return { path, images };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
