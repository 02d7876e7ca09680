/**
 * What ferry exports, real clients read (DESIGN.md section 4): Debian's skopeo inspects and copies
 * the OCI layout (the config digest, i.e. the image ID, survives), the docker archive skopeo
 * writes imports back into a fresh store, and umoci unpacks the layout into a bundle whose rootfs
 * has every file, with later layers applied over earlier ones (including a whiteout).
 */
import { createWriteStream } from 'node:fs';
import { lstat, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportDockerArchive, exportOci, fsck, importImage, openImage, Store } from '@ferry/core';
import { buildImage, buildLayer, digestOf, ociLayout, runTool, runToolBytes, seededBytes, seededText, toolsOrSkip, writeFiles, type BuiltImage } from '@ferry/test-support';

const hasSkopeo = toolsOrSkip('skopeo') !== undefined;
const hasUmoci = toolsOrSkip('umoci') !== undefined;

const REF = 'example/app:1.0';
const TAG = '1.0';

let work: string;
let image: BuiltImage;
let store: Store;
const binary = seededBytes('client-bin', 200_000);
const conf = seededText('client-conf', 4000);
const confV2 = seededText('client-conf-v2', 4100);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-clients-'));
  const base = await buildLayer(
    [
      { path: 'etc/', type: 'directory' },
      { path: 'etc/app.conf', body: conf },
      { path: 'etc/obsolete.conf', body: 'old\n' },
      { path: 'usr/', type: 'directory' },
      { path: 'usr/bin/', type: 'directory' },
      { path: 'usr/bin/app', body: binary, mode: 0o755 },
      { path: 'usr/bin/app-link', type: 'symlink', linkname: 'app' },
    ],
    'gzip',
  );
  const top = await buildLayer(
    [
      { path: 'etc/app.conf', body: confV2 }, // replaces the base layer's file
      { path: 'etc/.wh.obsolete.conf', body: '' }, // deletes it (OCI whiteout)
      { path: 'var/lib/app/state.json', body: '{"ok":true}\n' },
    ],
    'zstd',
  );
  image = buildImage([base, top], { label: 'clients' });
  const layout = join(work, 'source');
  await writeFiles(layout, ociLayout([{ image, tag: 'src' }]).files);
  store = await Store.open(join(work, 'store'), { create: true });
  await importImage(store, await openImage(layout), REF);
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const diffIds = (): string[] => image.layers.map((l) => l.diffId);

describe.skipIf(!hasSkopeo)('a docker archive exported by ferry', () => {
  it('skopeo reads its config byte for byte and copies it to an OCI layout', async () => {
    const archive = join(work, 'ferry-export.tar');
    await exportDockerArchive(store, REF, createWriteStream(archive));
    const raw = await runToolBytes('skopeo', ['inspect', '--config', '--raw', `docker-archive:${archive}`]);
    expect(digestOf(raw)).toBe(image.configDigest);
    const info = JSON.parse((await runTool('skopeo', ['inspect', `docker-archive:${archive}`])).stdout) as { Layers: string[]; RepoTags?: string[] };
    expect(info.Layers).toEqual(diffIds());
    const dir = join(work, 'from-ferry-archive');
    await runTool('skopeo', ['--insecure-policy', 'copy', '--quiet', `docker-archive:${archive}`, `oci:${dir}:back`]);
    expect((await openImage(dir, { ref: 'back' })).configDigest).toBe(image.configDigest);
  });
});

describe.each(['none', 'gzip'] as const)('an OCI layout exported with %s layers', (compression) => {
  let dir: string;
  let manifestDigest: string;
  beforeAll(async () => {
    dir = join(work, `export-${compression}`);
    ({ manifestDigest } = await exportOci(store, REF, dir, { compression }));
  });

  it.skipIf(!hasSkopeo)('skopeo inspects it: manifest digest, platform and layers', async () => {
    const info = JSON.parse((await runTool('skopeo', ['inspect', `oci:${dir}:${TAG}`])).stdout) as { Digest: string; Architecture: string; Os: string; Layers: string[] };
    expect(info.Digest).toBe(manifestDigest);
    expect(info.Os).toBe('linux');
    expect(info.Architecture).toBe('amd64');
    expect(info.Layers).toHaveLength(2);
    if (compression === 'none') expect(info.Layers).toEqual(diffIds());
  });

  it.skipIf(!hasSkopeo)('skopeo reads the config byte for byte: the same config digest', async () => {
    const raw = await runToolBytes('skopeo', ['inspect', '--config', '--raw', `oci:${dir}:${TAG}`]);
    expect(digestOf(raw)).toBe(image.configDigest);
    const parsed = JSON.parse((await runTool('skopeo', ['inspect', '--config', `oci:${dir}:${TAG}`])).stdout) as { rootfs: { diff_ids: string[] } };
    expect(parsed.rootfs.diff_ids).toEqual(diffIds());
  });

  it.skipIf(!hasSkopeo)('skopeo copies it to a docker archive that imports back with the same config digest', async () => {
    const archive = join(work, `skopeo-${compression}.tar`);
    await runTool('skopeo', ['--insecure-policy', 'copy', '--quiet', `oci:${dir}:${TAG}`, `docker-archive:${archive}:example/app:copied`]);
    // skopeo writes the fully qualified name (docker.io/...); the short name still selects it
    const source = await openImage(archive, { ref: 'example/app:copied' });
    expect(source.configDigest).toBe(image.configDigest);
    expect(source.ref).toBe('docker.io/example/app:copied');
    const fresh = await Store.open(join(work, `store-from-skopeo-${compression}`), { create: true });
    const r = await importImage(fresh, source, 'example/app:copied');
    expect(r.configDigest).toBe(image.configDigest);
    expect(r.layers.map((l) => l.diffId)).toEqual(diffIds());
    expect((await fsck(fresh)).ok).toBe(true);
  });

  it.skipIf(!hasUmoci)('umoci unpacks it into a bundle with every file, layers applied in order', async () => {
    const bundle = join(work, `bundle-${compression}`);
    const rootless = process.getuid?.() === 0 ? [] : ['--rootless'];
    await runTool('umoci', ['unpack', ...rootless, '--image', `${dir}:${TAG}`, bundle]);
    const rootfs = join(bundle, 'rootfs');
    expect((await readFile(join(rootfs, 'usr/bin/app'))).equals(binary)).toBe(true);
    expect((await lstat(join(rootfs, 'usr/bin/app'))).mode & 0o777).toBe(0o755);
    expect(await readlink(join(rootfs, 'usr/bin/app-link'))).toBe('app');
    expect((await readFile(join(rootfs, 'etc/app.conf'))).equals(confV2)).toBe(true);
    await expect(lstat(join(rootfs, 'etc/obsolete.conf'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(lstat(join(rootfs, 'etc/.wh.obsolete.conf'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readFile(join(rootfs, 'var/lib/app/state.json'), 'utf8')).toBe('{"ok":true}\n');
    const config = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: { env: string[] } };
    expect(config.process.env).toContain('PATH=/usr/bin:/bin');
  });
});
