import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyBytes, bodySize, buildImageSet, literal, tarSize, writeDockerArchive, writeImage, writeImagePair, type GeneratedLayout } from '../src/index.js';
import { runTool, toolsOrSkip } from '@ferry/test-support';
import { blobJson, diffIdOf, flatten, listFiles, readImage, readLayers, readTar, sha256File, type ReadEntry } from './helpers.js';

/** Independent readers of what imagegen writes; tests that use one skip (visibly) without it. */
const has = {
  skopeo: toolsOrSkip('skopeo') !== undefined,
  tar: toolsOrSkip('tar', 'gzip') !== undefined,
  zstd: toolsOrSkip('zstd') !== undefined,
};

/** A tool's stdout. */
async function run(tool: 'skopeo' | 'tar', args: string[]): Promise<string> {
  return (await runTool(tool, args)).stdout;
}

const MIB = 1024 * 1024;
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'imagegen-test-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Regular files of a flattened image, path to sha256. */
function fileShas(fs: Map<string, ReadEntry>): Map<string, string> {
  return new Map([...fs].filter(([, e]) => e.type === 'file').map(([p, e]) => [p, e.sha ?? '']));
}

describe('writeImagePair layout', () => {
  let dir: string;
  let result: GeneratedLayout;

  beforeAll(async () => {
    dir = join(root, 'pair');
    result = await writeImagePair(dir, { targetBytes: 12 * MIB, tags: ['v1', 'v2', 'other'] });
  });

  it('names every blob by its sha256 and every diff_id by the sha256 of the uncompressed tar', async () => {
    const blobs = await listFiles(join(dir, 'blobs', 'sha256'));
    expect(blobs.length).toBeGreaterThan(10);
    for (const b of blobs) expect(await sha256File(join(dir, 'blobs', 'sha256', b)), b).toBe(b);
    expect(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    for (const tag of ['v1', 'v2', 'other']) {
      const img = await readImage(dir, tag);
      expect(img.manifest['mediaType']).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(img.config['rootfs'].diff_ids).toHaveLength(img.layers.length);
      expect(img.config['history'].filter((h: Record<string, unknown>) => h['empty_layer'] !== true)).toHaveLength(img.layers.length);
      for (const [i, l] of img.layers.entries()) {
        expect(l.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
        const { hex, size } = await diffIdOf(l.path, l.mediaType);
        expect(`sha256:${hex}`).toBe(img.config['rootfs'].diff_ids[i]);
        expect(size).toBe(result.images[tag as 'v1']?.manifests[0]?.layers[i]?.size);
      }
    }
  });

  it.skipIf(!has.skopeo || !has.tar)('is accepted by skopeo and tar', async () => {
    for (const tag of ['v1', 'v2', 'other']) {
      const info = JSON.parse(await run('skopeo', ['inspect', `oci:${dir}:${tag}`])) as { Layers: string[]; Architecture: string };
      expect(info.Architecture).toBe('amd64');
      expect(info.Layers).toEqual((await readImage(dir, tag)).layers.map((l) => l.digest));
    }
    const v1 = await readImage(dir, 'v1');
    const listing = (await run('tar', ['-tzf', v1.layers[0]?.path ?? ''])).trim().split('\n');
    expect(listing).toContain('usr/bin/');
    expect(listing.length).toBeGreaterThan(500);
  });

  it('shares the base layer blob between v1 and other, and rebuilds it in v2', async () => {
    const [v1, v2, other] = await Promise.all(['v1', 'v2', 'other'].map((t) => readImage(dir, t)));
    expect(other?.layers[0]?.digest).toBe(v1?.layers[0]?.digest);
    expect(other?.layers[1]?.digest).not.toBe(v1?.layers[1]?.digest);
    expect(v2?.config['rootfs'].diff_ids[0]).not.toBe(v1?.config['rootfs'].diff_ids[0]);
    expect(v2?.layers).toHaveLength(4);
  });

  it('makes v2 a realistic release of v1', async () => {
    const [v1, v2] = await Promise.all([readImage(dir, 'v1'), readImage(dir, 'v2')]);
    const [l1, l2] = await Promise.all([readLayers(v1), readLayers(v2)]);
    const f1 = fileShas(flatten(l1));
    const f2 = fileShas(flatten(l2));
    const edited = [...f1].filter(([p, s]) => f2.has(p) && f2.get(p) !== s).map(([p]) => p);
    const removed = [...f1.keys()].filter((p) => !f2.has(p));
    const added = [...f2.keys()].filter((p) => !f1.has(p));
    // what was read back is exactly what the generator says it changed
    const c = result.changes;
    expect(c).toBeDefined();
    expect(edited.sort()).toEqual([...(c?.edited ?? [])].sort());
    expect(removed.sort()).toEqual([...(c?.removed ?? [])].sort());
    expect(added.sort()).toEqual([...(c?.added ?? [])].sort());
    expect(edited.length).toBeGreaterThanOrEqual(15);
    expect(added.length).toBeGreaterThanOrEqual(8);
    expect(removed.length).toBeGreaterThanOrEqual(8);

    // the base layer was rebuilt: new mtimes everywhere, but nearly all bodies identical
    const b1 = new Map(l1[0]?.map((e) => [e.name, e]));
    const b2 = l2[0] ?? [];
    const same = b2.filter((e) => e.type === 'file' && b1.get(e.name)?.sha === e.sha);
    expect(same.length / b2.filter((e) => e.type === 'file').length).toBeGreaterThan(0.95);
    expect(same.every((e) => e.mtime !== b1.get(e.name)?.mtime)).toBe(true);

    // whiteouts and an opaque directory in the new top layer
    const top = (l2[3] ?? []).map((e) => e.name);
    expect(top.some((n) => /(^|\/)\.wh\.[^.]/.test(n))).toBe(true);
    expect(top).toContain('app/plugins/.wh..wh..opq');

    // a versioned directory moved to the next patch version, keeping most of its files
    const [from, to] = c?.renamedDirs.find(([a]) => a.startsWith('app/lib/')) ?? ['', ''];
    expect(to).toMatch(/^app\/lib\/[a-z]+-\d+\.\d+\.\d+$/);
    const moved = [...f1].filter(([p]) => p.startsWith(`${from}/`));
    expect(moved.length).toBeGreaterThan(3);
    expect(moved.every(([p]) => !f2.has(p) && f2.has(to + p.slice(from.length)))).toBe(true);
    expect(moved.filter(([p, s]) => f2.get(to + p.slice(from.length)) === s).length).toBeGreaterThan(0);

    // binaries are edited slightly: same ELF header, a small share of bytes changed
    const bin = (l: ReadEntry[][]): ReadEntry | undefined => l[1]?.find((e) => e.name === 'app/bin/edgeapp');
    expect(bin(l1)?.head?.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(bin(l2)?.sha).not.toBe(bin(l1)?.sha);
    expect(Math.abs((bin(l2)?.size ?? 0) - (bin(l1)?.size ?? 0))).toBeLessThan((bin(l1)?.size ?? 0) * 0.05);
  });
});

describe('determinism', () => {
  it('writes byte-identical layouts for the same options, different ones for another seed', async () => {
    const opts = { targetBytes: 3 * MIB, tags: ['v1', 'v2', 'other'] as const };
    const a = join(root, 'det-a');
    const b = join(root, 'det-b');
    await writeImagePair(a, { ...opts, tags: [...opts.tags] });
    await writeImagePair(b, { ...opts, tags: [...opts.tags] });
    const files = await listFiles(a);
    expect(await listFiles(b)).toEqual(files);
    for (const f of files) expect((await readFile(join(b, f))).equals(await readFile(join(a, f))), f).toBe(true);
    const c = join(root, 'det-c');
    const other = await writeImagePair(c, { ...opts, tags: ['v1'], seed: 2 });
    expect(other.images.v1?.descriptor.digest).not.toBe((await readImage(a, 'v1')).manifestDigest);
  });

  it('builds the same trees for any subset of tags', () => {
    const all = buildImageSet({ targetBytes: 2 * MIB }, ['v1', 'v2', 'other']);
    const v2 = buildImageSet({ targetBytes: 2 * MIB }, ['v2']);
    expect(v2.images.v2?.layers.map((l) => tarSize(l.entries))).toEqual(all.images.v2?.layers.map((l) => tarSize(l.entries)));
  });
});

describe('size', () => {
  it('hits targetBytes within 10% and predicts layer sizes exactly', async () => {
    for (const targetBytes of [1 * MIB, 40 * MIB]) {
      const dir = join(root, `size-${targetBytes}`);
      const r = await writeImagePair(dir, { targetBytes, tags: ['v1'], layerCompression: 'none' });
      const layers = r.images.v1?.manifests[0]?.layers ?? [];
      const total = layers.reduce((n, l) => n + l.size, 0);
      expect(Math.abs(total - targetBytes) / targetBytes, `${targetBytes}: got ${total}`).toBeLessThan(0.1);
      const predicted = buildImageSet({ targetBytes }, ['v1']).images.v1?.layers.map((l) => tarSize(l.entries));
      expect(layers.map((l) => l.size)).toEqual(predicted);
      await rm(dir, { recursive: true });
    }
  });

  it('generates about 3000 files of mixed kinds at the default size', () => {
    const v1 = buildImageSet({}, ['v1']).images.v1;
    const entries = v1?.layers.flatMap((l) => l.entries) ?? [];
    const count = (t: string): number => entries.filter((e) => e.type === t).length;
    expect(count('file')).toBeGreaterThan(2500);
    expect(count('file')).toBeLessThan(3500);
    expect(count('symlink')).toBeGreaterThan(20);
    expect(count('hardlink')).toBeGreaterThan(0);
    const files = entries.flatMap((e) => (e.type === 'file' ? [e] : []));
    expect(files.filter((e) => bodySize(e.body) === 0).length).toBeGreaterThan(2);
    expect(files.filter((e) => bodySize(e.body) > 100 * 1024).length).toBeGreaterThan(5);
    expect(files.some((e) => bodySize(e.body) > 1 * MIB)).toBe(true);
    expect(new Set(files.map((e) => e.body.kind)).size).toBeGreaterThanOrEqual(8);
  });

  it('streams a 200 MB image with bounded memory', async () => {
    const dir = join(root, 'big');
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    try {
      const r = await writeImagePair(dir, { targetBytes: 200 * MIB, tags: ['v1'], compressionLevel: 1 });
      const total = r.images.v1?.manifests[0]?.layers.reduce((n, l) => n + l.size, 0) ?? 0;
      expect(total).toBeGreaterThan(180 * MIB);
    } finally {
      clearInterval(timer);
    }
    expect(peak - before, `rss grew ${((peak - before) / MIB).toFixed(0)} MiB`).toBeLessThan(100 * MIB);
    await rm(dir, { recursive: true });
  });
});

describe('other formats and platforms', () => {
  it.skipIf(!has.skopeo || !has.tar)('writes a docker save archive', async () => {
    const path = join(root, 'images.tar');
    const r = await writeDockerArchive(path, { targetBytes: 2 * MIB, tags: ['v1', 'v2'] });
    const entries = await readTar(createReadStream(path));
    const byName = new Map(entries.map((e) => [e.name, e]));
    const manifest = JSON.parse(await run('tar', ['-xOf', path, 'manifest.json'])) as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
    expect(manifest.map((m) => m.RepoTags)).toEqual([['ferry/edgeapp:v1'], ['ferry/edgeapp:v2']]);
    for (const tag of ['v1', 'v2'] as const) {
      const img = r.images[tag];
      expect(img?.repoTag).toBe(`ferry/edgeapp:${tag}`);
      expect(byName.get(`${img?.configDigest.slice(7)}.json`)?.sha).toBe(img?.configDigest.slice(7));
      expect(manifest.find((m) => m.RepoTags[0] === img?.repoTag)?.Layers).toEqual(img?.layerPaths);
      img?.layerPaths.forEach((p, i) => expect(`sha256:${byName.get(p)?.sha}`).toBe(img.diffIds[i]));
      const info = JSON.parse(await run('skopeo', ['inspect', '--config', `docker-archive:${path}:ferry/edgeapp:${tag}`])) as { rootfs: { diff_ids: string[] } };
      expect(info.rootfs.diff_ids).toEqual(img?.diffIds);
    }
    expect(existsSync(`${path}.tmp-${process.pid}`)).toBe(false);
  });

  it.skipIf(!has.skopeo)('writes a multi-platform image index with per-architecture binaries', async () => {
    const dir = join(root, 'multi');
    await writeImagePair(dir, { targetBytes: 2 * MIB, tags: ['v1', 'v2'], platforms: ['linux/amd64', 'linux/arm64'], layerCompression: 'none' });
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Array<Record<string, any>> };
    expect(index.manifests.map((d) => d['mediaType'])).toEqual(['application/vnd.oci.image.index.v1+json', 'application/vnd.oci.image.index.v1+json']);
    const nested = await blobJson(dir, index.manifests[0]?.['digest']);
    expect(nested['manifests'].map((m: Record<string, any>) => m['platform'].architecture)).toEqual(['amd64', 'arm64']);
    const amd = await readImage(dir, 'v1', 'linux/amd64');
    const arm = await readImage(dir, 'v1', 'linux/arm64');
    expect(arm.config['architecture']).toBe('arm64');
    const [la, lr] = await Promise.all([readLayers(amd), readLayers(arm)]);
    const machine = (l: ReadEntry[][]): number | undefined => l[1]?.find((e) => e.name === 'app/bin/edgeapp')?.head?.readUInt16LE(18);
    expect([machine(la), machine(lr)]).toEqual([0x3e, 0xb7]);
    expect(lr[0]?.some((e) => e.name.startsWith('usr/lib/aarch64-linux-gnu/'))).toBe(true);
    // text is the same on every architecture
    const docs = (l: ReadEntry[][]): string[] => (l[0] ?? []).filter((e) => e.name.startsWith('usr/share/doc/')).map((e) => `${e.name}:${e.sha}`);
    expect(docs(lr)).toEqual(docs(la));
    const info = JSON.parse(await run('skopeo', ['--override-arch', 'arm64', 'inspect', `oci:${dir}:v2`])) as { Architecture: string };
    expect(info.Architecture).toBe('arm64');
  });

  it.skipIf(!has.zstd)('compresses layers with zstd', async () => {
    const dir = join(root, 'zstd');
    await writeImagePair(dir, { targetBytes: 1 * MIB, tags: ['v1'], layerCompression: 'zstd' });
    const img = await readImage(dir, 'v1');
    for (const [i, l] of img.layers.entries()) {
      expect(l.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
      expect(`sha256:${await sha256File(l.path)}`).toBe(l.digest);
      expect(`sha256:${(await diffIdOf(l.path, l.mediaType)).hex}`).toBe(img.config['rootfs'].diff_ids[i]);
    }
  });

  it('writes hand-made images next to existing tags', async () => {
    const dir = join(root, 'custom');
    const meta = { mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 };
    const layer = { createdBy: 'COPY hello /', entries: [{ ...meta, type: 'file' as const, path: 'hello.txt', body: literal('hello\n') }] };
    await writeImage(dir, { ref: 'a', layers: [layer], created: meta.mtime });
    await writeImage(dir, { ref: 'b', layers: [layer], created: meta.mtime, platform: 'linux/arm64/v8' });
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Array<Record<string, any>> };
    expect(index.manifests.map((d) => d['annotations']['org.opencontainers.image.ref.name'])).toEqual(['a', 'b']);
    const b = await readImage(dir, 'b');
    expect(b.config['variant']).toBe('v8');
    const [entries] = await readLayers(b);
    expect(entries?.map((e) => e.name)).toEqual(['hello.txt']);
  });

  it('aborts cleanly', async () => {
    const dir = join(root, 'aborted');
    const ac = new AbortController();
    const p = writeImagePair(dir, { targetBytes: 20 * MIB, tags: ['v1'], signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(p).rejects.toThrow();
    const left = existsSync(join(dir, 'blobs', 'sha256')) ? (await listFiles(join(dir, 'blobs', 'sha256'))).filter((f) => f.startsWith('.tmp')) : [];
    expect(left).toEqual([]);
    expect(existsSync(join(dir, 'index.json'))).toBe(false);
  });
});

describe('bodies', () => {
  it('applies edits locally and keeps sizes exact', () => {
    const base = { kind: 'elf' as const, seed: 7, size: 200_000, arch: 'amd64' };
    const edited = { ...base, edits: [{ op: 'replace' as const, offset: 1000, length: 16, seed: 1 }, { op: 'insert' as const, offset: 50_000, length: 300, seed: 2 }, { op: 'delete' as const, offset: 120_000, length: 100, seed: 3 }] };
    const a = bodyBytes(base);
    const b = bodyBytes(edited);
    expect(a.length).toBe(200_000);
    expect(b.length).toBe(bodySize(edited));
    expect(b.length).toBe(200_200);
    expect(b.subarray(0, 1000).equals(a.subarray(0, 1000))).toBe(true);
    expect(b.subarray(1016, 50_000).equals(a.subarray(1016, 50_000))).toBe(true);
    expect(b.subarray(120_300).equals(a.subarray(120_100))).toBe(true);
    for (const kind of ['elf', 'data', 'random', 'prose', 'js', 'python', 'config', 'shell'] as const) {
      expect(bodyBytes({ kind, seed: 3, size: 70_001 }).length, kind).toBe(70_001);
    }
  });
});
