/**
 * Image readers (DESIGN.md section 4): OCI layouts with indexes and platforms, docker archives in
 * both forms, every layer compression, and every kind of malformed input with its stable code.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostPlatform, openImage, type SourceImage } from '../src/index.js';
import {
  archiveBytes,
  blobPath,
  buildImage,
  buildLayer,
  digestOf,
  dockerArchive,
  flipByte,
  ociLayout,
  seededBytes,
  seededText,
  writeArchive,
  writeFiles,
  type BuiltImage,
  type BuiltLayer,
  type FileMap,
} from '@ferry/test-support';

let work: string;
let n = 0;
/** A fresh path under the test's temp dir. */
const fresh = (name: string): string => join(work, `${n++}-${name}`);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-reader-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function drain(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

/** Every layer of `got` streams exactly the tar `want` built. */
async function expectLayers(got: SourceImage, want: BuiltImage): Promise<void> {
  expect(got.configDigest).toBe(want.configDigest);
  expect(got.config.equals(want.config)).toBe(true);
  expect(got.layers.map((l) => l.diffId)).toEqual(want.layers.map((l) => l.diffId));
  for (const [i, l] of got.layers.entries()) {
    const tar = await drain(l.open());
    expect(tar.equals(want.layers[i]!.tar), `layer ${i}`).toBe(true);
  }
}

async function layersOf(seed: string, compressions: ('none' | 'gzip' | 'zstd')[]): Promise<BuiltLayer[]> {
  return Promise.all(
    compressions.map((c, i) =>
      buildLayer(
        [
          { path: 'etc/', type: 'directory' },
          { path: `etc/${seed}-${i}.conf`, body: seededText(`${seed}${i}`, 3000) },
          { path: `usr/bin/${seed}-${i}`, body: seededBytes(`${seed}${i}`, 70_000 + i) },
          { path: `usr/bin/${seed}-link-${i}`, type: 'symlink', linkname: `${seed}-${i}` },
          { path: `var/empty-${i}`, body: '' },
        ],
        c,
      ),
    ),
  );
}

async function layoutDir(files: FileMap): Promise<string> {
  const dir = fresh('layout');
  await writeFiles(dir, files);
  return dir;
}

const other = hostPlatform().architecture === 'arm64' ? 'amd64' : 'arm64';

describe('OCI image layout', () => {
  it('reads an image with gzip, zstd and uncompressed layers', async () => {
    const img = buildImage(await layersOf('mixed', ['gzip', 'zstd', 'none']));
    const dir = await layoutDir(ociLayout([{ image: img, tag: 'v1' }]).files);
    const got = await openImage(dir);
    expect(got.ref).toBe('v1');
    expect(got.layers.map((l) => l.compression)).toEqual(['gzip', 'zstd', 'none']);
    expect(got.layers.map((l) => l.digest)).toEqual(img.layers.map((l) => l.digest));
    await expectLayers(got, img);
  });

  it('picks the host platform from an image index by default and another on request', async () => {
    const host = hostPlatform();
    const mine = buildImage(await layersOf('host', ['gzip']), { platform: { os: 'linux', architecture: host.architecture }, label: 'host' });
    const theirs = buildImage(await layersOf('other', ['gzip']), { platform: { os: 'linux', architecture: other }, label: 'other' });
    const dir = await layoutDir(ociLayout([{ index: [theirs, mine], tag: 'multi' }]).files);
    const byDefault = await openImage(dir);
    expect(byDefault.platform).toBe(`linux/${host.architecture}`);
    await expectLayers(byDefault, mine);
    const asked = await openImage(dir, { platform: { os: 'linux', architecture: other } });
    expect(asked.platform).toBe(`linux/${other}`);
    await expectLayers(asked, theirs);
    await expect(openImage(dir, { platform: { os: 'linux', architecture: 's390x' } })).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_PLATFORM' });
  });

  it('matches arm64 with and without its default v8 variant', async () => {
    const v7 = buildImage(await layersOf('armv7', ['none']), { platform: { os: 'linux', architecture: 'arm', variant: 'v7' } });
    const v8 = buildImage(await layersOf('arm64', ['none']), { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    const dir = await layoutDir(ociLayout([{ index: [v7, v8] }]).files);
    expect((await openImage(dir, { platform: { os: 'linux', architecture: 'arm64' } })).configDigest).toBe(v8.configDigest);
    expect((await openImage(dir, { platform: { os: 'linux', architecture: 'arm', variant: 'v7' } })).configDigest).toBe(v7.configDigest);
    await expect(openImage(dir, { platform: { os: 'linux', architecture: 'arm', variant: 'v6' } })).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_PLATFORM' });
  });

  it('needs a ref when the layout holds several tagged images, and selects by it', async () => {
    const v1 = buildImage(await layersOf('one', ['none']), { label: 'v1' });
    const v2 = buildImage(await layersOf('two', ['gzip']), { label: 'v2' });
    const dir = await layoutDir(ociLayout([{ image: v1, tag: 'v1' }, { image: v2, tag: 'v2' }]).files);
    await expect(openImage(dir)).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_AMBIGUOUS' });
    const got = await openImage(dir, { ref: 'v2' });
    expect(got.ref).toBe('v2');
    await expectLayers(got, v2);
    expect((await openImage(dir, { ref: 'app:v1' })).configDigest).toBe(v1.configDigest);
    await expect(openImage(dir, { ref: 'v3' })).rejects.toMatchObject({ code: 'FERRY_ERR_REF_NOT_FOUND' });
  });
});

describe('docker archive', () => {
  it('reads a classic archive (manifest.json, <hex>.json, <id>/layer.tar) from a tar file', async () => {
    const img = buildImage(await layersOf('classic', ['none', 'none']));
    const file = fresh('classic.tar');
    await writeArchive(file, dockerArchive([{ image: img, tags: ['example/app:1.0'] }], 'classic'));
    const got = await openImage(file);
    expect(got.ref).toBe('example/app:1.0');
    expect(got.layers.every((l) => l.compression === 'none' && l.digest === undefined)).toBe(true);
    await expectLayers(got, img);
  });

  it('reads a classic archive extracted to a directory, with gzip layer.tar files sniffed', async () => {
    const img = buildImage(await layersOf('classic-dir', ['gzip', 'none']));
    const dir = fresh('classic-dir');
    await writeFiles(dir, dockerArchive([{ image: img, tags: ['app:1'] }], 'classic'));
    const got = await openImage(dir);
    expect(got.layers.map((l) => l.compression)).toEqual(['gzip', 'none']);
    await expectLayers(got, img);
  });

  it('reads the OCI-form archive (manifest.json into blobs/sha256, index.json, oci-layout)', async () => {
    const img = buildImage(await layersOf('ociform', ['none', 'zstd']));
    const files = dockerArchive([{ image: img, tags: ['app:2.0'] }], 'oci');
    expect(files.has('index.json') && files.has('oci-layout') && files.has('manifest.json')).toBe(true);
    const file = fresh('ociform.tar');
    await writeArchive(file, files);
    const got = await openImage(file);
    expect(got.ref).toBe('app:2.0');
    expect(got.layers.map((l) => l.digest)).toEqual(img.layers.map((l) => l.digest));
    await expectLayers(got, img);
  });

  it('selects among several images by tag, and is ambiguous without one', async () => {
    const a = buildImage(await layersOf('a', ['none']), { label: 'a' });
    const b = buildImage(await layersOf('b', ['none']), { label: 'b' });
    const file = fresh('two.tar');
    await writeArchive(file, dockerArchive([{ image: a, tags: ['app:a'] }, { image: b, tags: ['app:b'] }], 'classic'));
    await expect(openImage(file)).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_AMBIGUOUS' });
    await expectLayers(await openImage(file, { ref: 'app:b' }), b);
    await expectLayers(await openImage(file, { ref: 'a' }), a);
  });
});

describe('malformed input gets a stable code', () => {
  let img: BuiltImage;
  beforeAll(async () => {
    img = buildImage(await layersOf('bad', ['none', 'gzip']));
  });
  const layout = (): FileMap => ociLayout([{ image: img, tag: 'v1' }]).files;

  it('a missing manifest, config or layer blob: FERRY_ERR_IMAGE_MISSING_BLOB', async () => {
    for (const d of [img.manifestDigest, img.configDigest, img.layers[1]!.digest]) {
      const files = layout();
      files.delete(blobPath(d));
      await expect(openImage(await layoutDir(files)), d).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_MISSING_BLOB' });
    }
    const docker = dockerArchive([{ image: img, tags: ['app:1'] }], 'classic');
    docker.delete([...docker.keys()].find((k) => k.endsWith('/layer.tar'))!);
    await expect(openImage(await layoutDir(docker))).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_MISSING_BLOB' });
  });

  it('a tampered manifest or config: FERRY_ERR_DIGEST_MISMATCH when opening', async () => {
    for (const d of [img.manifestDigest, img.configDigest]) {
      const files = layout();
      const bytes = files.get(blobPath(d))!;
      files.set(blobPath(d), flipByte(bytes, bytes.length - 2)); // still the same size
      await expect(openImage(await layoutDir(files)), d).rejects.toMatchObject({ code: 'FERRY_ERR_DIGEST_MISMATCH' });
    }
  });

  it('a tampered layer: opens, then FERRY_ERR_DIGEST_MISMATCH once its stream is read to the end', async () => {
    const files = layout();
    const l0 = img.layers[0]!;
    const bytes = flipByte(l0.blob, 2000, 0x20); // inside a body: the tar still parses
    files.set(blobPath(l0.digest), bytes);
    const got = await openImage(await layoutDir(files));
    await expect(drain(got.layers[0]!.open())).rejects.toMatchObject({ code: 'FERRY_ERR_DIGEST_MISMATCH' });
    // the other layer is unharmed
    expect(digestOf(await drain(got.layers[1]!.open()))).toBe(img.layers[1]!.diffId);

    // a docker archive names no blob digests: the diff_id catches it
    const docker = dockerArchive([{ image: img, tags: ['app:1'] }], 'classic');
    const name = [...docker.keys()].find((k) => docker.get(k)!.equals(l0.blob))!;
    docker.set(name, bytes);
    const fromDocker = await openImage(await layoutDir(docker));
    await expect(drain(fromDocker.layers[0]!.open())).rejects.toMatchObject({ code: 'FERRY_ERR_DIGEST_MISMATCH' });
  });

  it('bad JSON in index, manifest, config or manifest.json: FERRY_ERR_IMAGE_BAD_JSON', async () => {
    const badIndex = layout();
    badIndex.set('index.json', Buffer.from('{"schemaVersion": 2, "manifests": ['));
    await expect(openImage(await layoutDir(badIndex))).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_BAD_JSON' });

    // bad documents stored under their own digests, so only the JSON is wrong
    const garbage = Buffer.from('{"schemaVersion": 2, oops');
    const badManifest = ociLayout([{ image: { ...img, manifest: garbage, manifestDigest: digestOf(garbage) }, tag: 'v1' }]).files;
    await expect(openImage(await layoutDir(badManifest))).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_BAD_JSON' });

    const broken = buildImage(img.layers);
    const cfg = Buffer.from('{"rootfs": {"type": "layers", "diff_ids": [');
    const withBadConfig = { ...broken, config: cfg, configDigest: digestOf(cfg) };
    const m = JSON.parse(broken.manifest.toString()) as { config: { digest: string; size: number } };
    m.config = { ...m.config, digest: digestOf(cfg), size: cfg.length };
    withBadConfig.manifest = Buffer.from(JSON.stringify(m));
    withBadConfig.manifestDigest = digestOf(withBadConfig.manifest);
    await expect(openImage(await layoutDir(ociLayout([{ image: withBadConfig }]).files))).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_BAD_JSON' });

    // valid JSON of the wrong shape: a config without rootfs
    const shapeless = Buffer.from('{"architecture": "amd64", "os": "linux"}');
    m.config = { ...m.config, digest: digestOf(shapeless), size: shapeless.length };
    const noRootfs = { ...broken, config: shapeless, configDigest: digestOf(shapeless), manifest: Buffer.from(JSON.stringify(m)) };
    noRootfs.manifestDigest = digestOf(noRootfs.manifest);
    await expect(openImage(await layoutDir(ociLayout([{ image: noRootfs }]).files))).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_BAD_JSON' });

    const docker = dockerArchive([{ image: img, tags: ['app:1'] }], 'classic');
    docker.set('manifest.json', Buffer.from('[{"Config": '));
    await expect(openImage(await layoutDir(docker))).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_BAD_JSON' });
  });

  it('an unknown media type on a layer, a manifest or an index entry: FERRY_ERR_IMAGE_MEDIA_TYPE', async () => {
    const weird = { ...img.layers[0]!, mediaType: 'application/vnd.example.layer.v1.tar+lz4' };
    const layerType = buildImage([weird, img.layers[1]!]);
    await expect(openImage(await layoutDir(ociLayout([{ image: layerType }]).files))).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_MEDIA_TYPE' });

    const manifestType = buildImage(img.layers, { manifestMediaType: 'application/vnd.example.manifest.v9+json' });
    await expect(openImage(await layoutDir(ociLayout([{ image: manifestType }]).files))).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_MEDIA_TYPE' });

    const files = layout();
    const index = JSON.parse(files.get('index.json')!.toString()) as { manifests: { mediaType: string }[] };
    index.manifests[0]!.mediaType = 'application/vnd.example.thing+json';
    files.set('index.json', Buffer.from(JSON.stringify(index)));
    await expect(openImage(await layoutDir(files))).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_MEDIA_TYPE' });
  });

  it('a truncated docker archive: FERRY_ERR_TAR_TRUNCATED wherever it is cut', async () => {
    const whole = await archiveBytes(dockerArchive([{ image: img, tags: ['app:1'] }], 'classic'));
    // cut inside a body, inside a header block, and just past a header (body wholly missing)
    const firstBody = whole.indexOf(img.layers[0]!.blob.subarray(0, 64));
    expect(firstBody).toBeGreaterThan(0);
    for (const cut of [Math.floor(whole.length / 2), firstBody - 512 + 100, firstBody, firstBody + 1000]) {
      const file = fresh('truncated.tar');
      await writeFile(file, whole.subarray(0, cut));
      await expect(openImage(file), `cut at ${cut}`).rejects.toMatchObject({ code: 'FERRY_ERR_TAR_TRUNCATED' });
    }
  });

  it('a truncated gzip or zstd layer: FERRY_ERR_IMAGE_LAYER_CORRUPT when read', async () => {
    for (const c of ['gzip', 'zstd'] as const) {
      const [good] = await layersOf(`trunc-${c}`, [c]);
      // the descriptor names the truncated bytes: the writer produced a broken blob
      const cut = good!.blob.subarray(0, Math.floor(good!.blob.length * 0.6));
      const broken = { ...good!, blob: cut, digest: digestOf(cut) };
      const image = buildImage([broken]);
      const got = await openImage(await layoutDir(ociLayout([{ image }]).files));
      await expect(drain(got.layers[0]!.open()), c).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_LAYER_CORRUPT' });

      const docker = await openImage(await layoutDir(dockerArchive([{ image, tags: ['app:1'] }], 'classic')));
      expect(docker.layers[0]!.compression).toBe(c);
      await expect(drain(docker.layers[0]!.open()), `docker ${c}`).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_LAYER_CORRUPT' });
    }
  });

  it('a path that is not an image: FERRY_ERR_IMAGE_NOT_FOUND', async () => {
    const empty = fresh('empty');
    await writeFiles(empty, new Map([['README', Buffer.from('not an image\n')]]));
    await expect(openImage(empty)).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_NOT_FOUND' });
    await expect(openImage(fresh('does-not-exist'))).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_NOT_FOUND' });
    const text = fresh('notes.txt');
    await writeFile(text, seededText('notes', 5000));
    await expect(openImage(text)).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_NOT_FOUND' });
    const tiny = fresh('tiny');
    await writeFile(tiny, 'hi\n');
    await expect(openImage(tiny)).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_NOT_FOUND' });
    // a well-formed tar of something else
    const otherTar = fresh('other.tar');
    await writeArchive(otherTar, new Map([['hello.txt', Buffer.from('hello')]]));
    await expect(openImage(otherTar)).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_NOT_FOUND' });
    // a compressed `docker save | gzip`: not readable as is
    const gz = fresh('saved.tar.gz');
    await writeFile(gz, gzipSync(await archiveBytes(dockerArchive([{ image: img, tags: ['app:1'] }], 'classic'))));
    await expect(openImage(gz)).rejects.toMatchObject({ code: 'FERRY_ERR_IMAGE_NOT_FOUND' });
  });
});
