/**
 * The store (DESIGN.md section 4): deduplicated import, export to OCI layouts and docker archives
 * that keep the config digest and every diff_id, refs, fsck and gc, failed imports that change
 * nothing, and the writer lock.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Store,
  exportDockerArchive,
  exportOci,
  fsck,
  gc,
  importImage,
  openImage,
  zstdCompress,
  type SourceImage,
} from '../src/index.js';
import {
  buildImage,
  buildLayer,
  digestOf,
  flipByte,
  ociLayout,
  rejectionCode,
  seededBytes,
  seededText,
  verifyDockerArchive,
  verifyOciLayout,
  writeFiles,
  type BuiltImage,
  type Digest,
} from '@ferry/test-support';
import { appV1, appV2, baseFiles, baseV2, big, bodiesOf, shared } from './helpers/store-images.js';

let work: string;
let n = 0;
const fresh = (name: string): string => join(work, `${n++}-${name}`);

let v1: BuiltImage;
let v2: BuiltImage;
let v1Dir: string;
let v2Dir: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-store-'));
  v1 = buildImage([await buildLayer(baseFiles, 'gzip'), await buildLayer(appV1, 'zstd')], { label: 'v1' });
  v2 = buildImage([await buildLayer(baseV2, 'none'), await buildLayer(appV2, 'gzip')], { label: 'v2' });
  v1Dir = fresh('v1');
  v2Dir = fresh('v2');
  await writeFiles(v1Dir, ociLayout([{ image: v1, tag: 'v1' }]).files);
  await writeFiles(v2Dir, ociLayout([{ image: v2, tag: 'v2' }]).files);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const want = (img: BuiltImage): { configDigest: Digest; diffIds: Digest[] } => ({ configDigest: img.configDigest, diffIds: img.layers.map((l) => l.diffId) });

async function newStore(): Promise<Store> {
  return Store.open(fresh('store'), { create: true });
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out.sort();
}

async function storeWithBoth(): Promise<Store> {
  const store = await newStore();
  await importImage(store, await openImage(v1Dir), 'app:v1');
  await importImage(store, await openImage(v2Dir), 'app:v2');
  return store;
}

describe('import', () => {
  it('stores each file body once across images and layers', async () => {
    const store = await newStore();
    const r1 = await importImage(store, await openImage(v1Dir), 'app:v1');
    expect(r1.configDigest).toBe(v1.configDigest);
    expect(r1.layers.map((l) => l.diffId)).toEqual(v1.layers.map((l) => l.diffId));
    expect(r1.contentsAdded).toBe(bodiesOf(baseFiles, appV1).size);
    const r2 = await importImage(store, await openImage(v2Dir), 'app:v2');
    expect(r2.contentsAdded).toBe(bodiesOf(baseFiles, appV1, baseV2, appV2).size - bodiesOf(baseFiles, appV1).size);
    const contents = await filesUnder(join(store.root, 'contents'));
    expect(contents.map((p) => `sha256:${p.slice(-64)}`).sort()).toEqual([...bodiesOf(baseFiles, appV1, baseV2, appV2)].sort());
    expect((await fsck(store)).ok).toBe(true);
  });

  it('reuses layers on a second import of the same image', async () => {
    const store = await newStore();
    const first = await importImage(store, await openImage(v1Dir), 'app:v1');
    expect(first.layers.every((l) => !l.reused)).toBe(true);
    const before = await filesUnder(store.root);
    const again = await importImage(store, await openImage(v1Dir), 'app:again');
    expect(again.layers.map((l) => l.reused)).toEqual([true, true]);
    expect(again.layers.map((l) => l.files)).toEqual(first.layers.map((l) => l.files));
    expect(again.bytesRead).toBe(0);
    expect(again.manifestDigest).toBe(first.manifestDigest);
    // nothing but the new ref appeared
    const after = await filesUnder(store.root);
    expect(after.filter((f) => !before.includes(f)).map((f) => f.slice(store.root.length))).toEqual(['/refs/app%3Aagain']);
  });
});

describe('export', () => {
  let store: Store;
  beforeAll(async () => {
    store = await storeWithBoth();
  });

  it('writes an uncompressed OCI layout with the original config and diff_ids, and the store manifest byte for byte', async () => {
    const dir = fresh('oci-none');
    const r = await exportOci(store, 'app:v1', dir);
    expect(r.configDigest).toBe(v1.configDigest);
    const facts = await verifyOciLayout(dir, 'v1', want(v1));
    expect(facts.manifestDigest).toBe((await store.resolve('app:v1')).manifestDigest);
    expect(facts.layerMediaTypes).toEqual(['application/vnd.oci.image.layer.v1.tar', 'application/vnd.oci.image.layer.v1.tar']);
    // a second tag is added to the same layout; the first stays readable
    await exportOci(store, 'app:v2', dir);
    await verifyOciLayout(dir, 'v2', want(v2));
    await verifyOciLayout(dir, 'v1', want(v1));
  });

  it('writes a gzip OCI layout whose layers decompress to their diff_ids', async () => {
    const dir = fresh('oci-gzip');
    await exportOci(store, 'app:v2', dir, { compression: 'gzip' });
    const facts = await verifyOciLayout(dir, 'v2', want(v2));
    expect(facts.layerMediaTypes.every((t) => t.endsWith('+gzip'))).toBe(true);
    // and ferry reads its own export back
    const back = await openImage(dir, { ref: 'v2' });
    expect(back.configDigest).toBe(v2.configDigest);
  });

  it('writes a docker archive with the config and layer tars of the original', async () => {
    const file = fresh('docker.tar');
    await exportDockerArchive(store, 'app:v1', createWriteStream(file));
    expect(await verifyDockerArchive(file, want(v1))).toEqual(['app:v1']);
    const back = await openImage(file);
    expect(back.configDigest).toBe(v1.configDigest);
  });
});

describe('refs', () => {
  it('lists, resolves and deletes refs', async () => {
    const store = await storeWithBoth();
    expect((await store.listRefs()).map((r) => r.ref)).toEqual(['app:v1', 'app:v2']);
    const img = await store.resolve('app:v2');
    expect(img.configDigest).toBe(v2.configDigest);
    expect(img.layers.map((l) => l.diffId)).toEqual(v2.layers.map((l) => l.diffId));
    expect(img.layers.map((l) => l.size)).toEqual(v2.layers.map((l) => l.tar.length));
    expect(digestOf(img.manifest)).toBe(img.manifestDigest);
    await store.setRef('registry.local:5000/team/app:stable', img.manifestDigest);
    expect((await store.resolve('registry.local:5000/team/app:stable')).configDigest).toBe(v2.configDigest);
    await store.deleteRef('app:v1');
    expect((await store.listRefs()).map((r) => r.ref)).toEqual(['app:v2', 'registry.local:5000/team/app:stable']);
    await expect(store.resolve('app:v1')).rejects.toMatchObject({ code: 'FERRY_ERR_REF_NOT_FOUND' });
    await expect(store.deleteRef('app:v1')).rejects.toMatchObject({ code: 'FERRY_ERR_REF_NOT_FOUND' });
    await expect(store.resolve('App:v1')).rejects.toMatchObject({ code: 'FERRY_ERR_REF_INVALID' });
    await expect(store.resolve('app')).rejects.toMatchObject({ code: 'FERRY_ERR_REF_INVALID' });
  });
});

describe('fsck', () => {
  let store: Store;
  beforeAll(async () => {
    store = await storeWithBoth();
  });

  it('passes on a healthy store', async () => {
    const report = await fsck(store);
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.leftovers).toEqual([]);
    expect(report.checked).toEqual({ contents: bodiesOf(baseFiles, appV1, baseV2, appV2).size, skeletons: 4, blobs: 4, refs: 2, channels: 0 });
  });

  /** Flips one byte in the middle of `path`, runs fsck, restores the file. */
  async function withFlippedByte(path: string): Promise<Awaited<ReturnType<typeof fsck>>> {
    const original = await readFile(path);
    await writeFile(path, flipByte(original, Math.floor(original.length / 2), 0x10));
    try {
      return await fsck(store);
    } finally {
      await writeFile(path, original);
    }
  }

  it('names a corrupt content by digest and path', async () => {
    const d = digestOf(shared[5]!);
    const report = await withFlippedByte(store.contentPath(d));
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([expect.objectContaining({ kind: 'content', id: d, path: store.contentPath(d) })]);
    const big1 = digestOf(big);
    const bigReport = await withFlippedByte(store.contentPath(big1));
    expect(bigReport.problems).toEqual([expect.objectContaining({ kind: 'content', id: big1, path: store.contentPath(big1) })]);
  });

  it('names a corrupt skeleton by its diff_id and path', async () => {
    const d = v1.layers[1]!.diffId;
    const report = await withFlippedByte(store.skeletonPath(d));
    expect(report.problems).toEqual([expect.objectContaining({ kind: 'skeleton', id: d, path: store.skeletonPath(d) })]);
  });

  it('names a corrupt config blob by digest and path, and the ref that needs it', async () => {
    const d = v2.configDigest;
    const report = await withFlippedByte(store.blobPath(d));
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'blob', id: d, path: store.blobPath(d) }));
    const refs = report.problems.filter((p) => p.kind === 'ref');
    expect(refs).toEqual([expect.objectContaining({ id: 'app:v2' })]);
    expect(refs[0]!.problem).toContain(d);
    expect(report.problems).toHaveLength(2);
  });

  it('reports a corrupt ref and still checks the others', async () => {
    const path = join(store.root, 'refs', 'app%3Av1');
    const original = await readFile(path);
    await writeFile(path, '{"manifest": "sha256:nope"');
    try {
      const report = await fsck(store);
      expect(report.problems).toEqual([expect.objectContaining({ kind: 'ref', id: 'app:v1', path })]);
      expect(report.checked.refs).toBe(2);
    } finally {
      await writeFile(path, original);
    }
  });

  it('reports a deleted content as missing', async () => {
    const d = digestOf(shared[7]!);
    const path = store.contentPath(d);
    const original = await readFile(path);
    await rm(path);
    try {
      const report = await fsck(store);
      expect(report.problems).toEqual([expect.objectContaining({ kind: 'content', id: d, path, problem: expect.stringMatching(/missing/) })]);
    } finally {
      await writeFile(path, original);
    }
    expect((await fsck(store)).ok).toBe(true);
  });
});

describe('gc', () => {
  it('removes exactly what no ref reaches, and the remaining image still exports', async () => {
    const store = await storeWithBoth();
    const before = new Set(await filesUnder(store.root));
    const v1Manifest = (await store.resolve('app:v1')).manifestDigest;
    await store.deleteRef('app:v1');
    const report = await gc(store);
    const after = new Set(await filesUnder(store.root));
    const removed = [...before].filter((f) => !after.has(f) && !f.endsWith('/refs/app%3Av1'));
    expect([...after].filter((f) => !before.has(f))).toEqual([]);

    const keep = bodiesOf(baseV2, appV2);
    const expected = [
      ...[...bodiesOf(baseFiles, appV1)].filter((d) => !keep.has(d)).map((d) => store.contentPath(d)),
      ...v1.layers.map((l) => store.skeletonPath(l.diffId)),
      store.blobPath(v1.configDigest),
      store.blobPath(v1Manifest),
    ].sort();
    expect(removed.sort()).toEqual(expected);
    expect(report.removed).toEqual({ contents: expected.length - 4, skeletons: 2, blobs: 2, temps: 0 });

    expect((await fsck(store)).ok).toBe(true);
    const dir = fresh('after-gc');
    await exportOci(store, 'app:v2', dir, { compression: 'gzip' });
    await verifyOciLayout(dir, 'v2', want(v2));
    // a second gc finds nothing
    expect((await gc(store)).removed).toEqual({ contents: 0, skeletons: 0, blobs: 0, temps: 0 });
  });

});

describe('leftover temp files', () => {
  it('are reported by fsck as leftovers, not problems, and removed by gc', async () => {
    const store = await storeWithBoth();
    const temps = [
      join(store.root, 'contents', 'ab', '.tmp-4242-0123456789ab'),
      join(store.root, 'contents', '.tmp-4242-ba9876543210'),
      join(store.root, 'skeletons', '.tmp-4242-aaaaaaaaaaaa'),
      join(store.root, 'blobs', '.tmp-4242-bbbbbbbbbbbb'),
      join(store.root, 'refs', '.tmp-4242-cccccccccccc'),
    ];
    for (const t of temps) await writeFile(t, 'half written');
    const report = await fsck(store);
    expect(report.ok).toBe(true);
    expect([...report.leftovers].sort()).toEqual([...temps].sort());
    const removed = await gc(store);
    expect(removed.removed).toEqual({ contents: 0, skeletons: 0, blobs: 0, temps: temps.length });
    expect((await fsck(store)).leftovers).toEqual([]);
    expect((await store.listRefs()).map((r) => r.ref)).toEqual(['app:v1', 'app:v2']);
  });
});

describe('a failed import changes nothing', () => {
  it('a layer whose diff_id does not match the config', async () => {
    const store = await storeWithBoth();
    const refsBefore = await store.listRefs();
    const blobsBefore = await store.listObjects('blobs');
    const good = await buildLayer([{ path: 'ok.txt', body: seededText('fine', 5000) }]);
    const liar = await buildLayer([{ path: 'lie.txt', body: seededBytes('liar', 80_000) }, { path: 'shared.so', body: shared[1] }], 'gzip');
    const claimed = digestOf('not this layer');
    const bad = buildImage([good, liar], { diffIds: [good.diffId, claimed] });
    const dir = fresh('liar');
    await writeFiles(dir, ociLayout([{ image: bad, tag: 'bad' }]).files);
    await expect(importImage(store, await openImage(dir), 'app:bad')).rejects.toMatchObject({ code: 'FERRY_ERR_DIGEST_MISMATCH' });
    expect(await store.listRefs()).toEqual(refsBefore);
    expect(await store.listObjects('blobs')).toEqual(blobsBefore);
    expect(await store.hasSkeleton(claimed)).toBe(false);
    expect(await store.hasSkeleton(liar.diffId)).toBe(false);
    const report = await fsck(store);
    expect(report.ok).toBe(true);
    expect(report.leftovers).toEqual([]);
    // the lock was released: the next import runs
    await importImage(store, await openImage(v1Dir), 'app:v1-again');
  });

  it('a layer blob that does not match its descriptor', async () => {
    const store = await newStore();
    const files = ociLayout([{ image: v1, tag: 'v1' }]).files;
    const l = v1.layers[1]!;
    const key = `blobs/sha256/${l.digest.slice(7)}`;
    const blob = files.get(key)!;
    files.set(key, flipByte(blob, blob.length - 10, 0xff));
    const dir = fresh('tampered');
    await writeFiles(dir, files);
    await expect(importImage(store, await openImage(dir), 'app:v1')).rejects.toMatchObject({ code: expect.stringMatching(/^FERRY_ERR_(DIGEST_MISMATCH|IMAGE_LAYER_CORRUPT)$/) });
    expect(await store.listRefs()).toEqual([]);
    expect(await store.listObjects('blobs')).toEqual([]);
    expect((await fsck(store)).ok).toBe(true);
  });

  it('a layer whose descriptor size is wrong, uncompressed as gzip: FERRY_ERR_SIZE_MISMATCH', async () => {
    const plain = await buildLayer([{ path: 'a.txt', body: seededText('size-lie', 20_000) }], 'none');
    const gz = await buildLayer([{ path: 'b.bin', body: seededBytes('size-lie', 30_000) }], 'gzip');
    for (const [which, delta] of [[0, 512], [0, -1], [1, 512], [1, -1]] as const) {
      const image = buildImage([plain, gz], { label: `size-lie-${which}-${delta}` });
      const m = JSON.parse(image.manifest.toString('utf8')) as { layers: { size: number }[] };
      m.layers[which]!.size += delta;
      const manifest = Buffer.from(JSON.stringify(m));
      const dir = fresh(`size-lie-${which}-${delta}`);
      await writeFiles(dir, ociLayout([{ image: { ...image, manifest, manifestDigest: digestOf(manifest) }, tag: 'v1' }]).files);
      const store = await newStore();
      await expect(importImage(store, await openImage(dir), 'app:v1'), `layer ${which}, size ${delta > 0 ? '+' : ''}${delta}`).rejects.toMatchObject({ code: 'FERRY_ERR_SIZE_MISMATCH' });
      expect(await store.listRefs()).toEqual([]);
      expect((await fsck(store)).ok).toBe(true);
    }
  });

  it('a zstd layer blob that decodes cleanly but does not match its descriptor: FERRY_ERR_DIGEST_MISMATCH, no hang', async () => {
    // no content checksum in the frame, so nothing but the blob digest tells (this read used to never settle)
    const good = await buildLayer(appV1);
    const liar = { ...good, blob: zstdCompress(good.tar, { compressionLevel: 3 }), digest: digestOf('another blob'), mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', compression: 'zstd' as const };
    const dir = fresh('zstd-liar');
    await writeFiles(dir, ociLayout([{ image: buildImage([liar], { label: 'liar' }), tag: 'v1' }]).files);
    const store = await newStore();
    expect(await rejectionCode(importImage(store, await openImage(dir), 'app:v1'))).toBe('FERRY_ERR_DIGEST_MISMATCH');
    expect(await store.listRefs()).toEqual([]);
    expect(await store.listObjects('skeletons')).toEqual([]);
    expect((await fsck(store)).ok).toBe(true);
  });
});

describe('lock', () => {
  it('a second concurrent import gets FERRY_ERR_STORE_LOCKED', async () => {
    const store = await newStore();
    const source: SourceImage = await openImage(v1Dir);
    const first = importImage(store, source, 'app:first');
    const second = importImage(store, await openImage(v2Dir), 'app:second');
    await expect(second).rejects.toMatchObject({ code: 'FERRY_ERR_STORE_LOCKED', retryable: true });
    await first;
    expect((await store.listRefs()).map((r) => r.ref)).toEqual(['app:first']);
    // once the first is done, the lock is free
    await importImage(store, await openImage(v2Dir), 'app:second');
  });

  it('of two imports started in the same tick, exactly one runs', async () => {
    const store = await newStore();
    const [s1, s2] = [await openImage(v1Dir), await openImage(v2Dir)];
    const results = await Promise.allSettled([importImage(store, s1, 'app:one'), importImage(store, s2, 'app:two')]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(failed.reason).toMatchObject({ code: 'FERRY_ERR_STORE_LOCKED' });
    expect(await store.listRefs()).toHaveLength(1);
    expect((await fsck(store)).ok).toBe(true);
  });

  it('a lock held by another live process gets FERRY_ERR_STORE_LOCKED', async () => {
    const store = await newStore();
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      await writeFile(join(store.root, 'lock'), String(holder.pid));
      await expect(importImage(store, await openImage(v1Dir), 'app:v1')).rejects.toMatchObject({ code: 'FERRY_ERR_STORE_LOCKED', details: { pid: holder.pid } });
      expect(await readFile(join(store.root, 'lock'), 'utf8')).toBe(String(holder.pid));
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('takes over a stale lock file whose pid is dead', async () => {
    const store = await newStore();
    const dead = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await new Promise((resolve) => dead.on('exit', resolve));
    await writeFile(join(store.root, 'lock'), String(dead.pid));
    await importImage(store, await openImage(v1Dir), 'app:v1');
    expect((await store.listRefs()).map((r) => r.ref)).toEqual(['app:v1']);
    await expect(readFile(join(store.root, 'lock'))).rejects.toMatchObject({ code: 'ENOENT' });
    // our own pid, left by an earlier process that had it (pid 1 in a container): stale as well
    await writeFile(join(store.root, 'lock'), String(process.pid));
    await importImage(store, await openImage(v2Dir), 'app:v2');
    expect((await store.listRefs()).map((r) => r.ref)).toEqual(['app:v1', 'app:v2']);
  });
});

describe('Store.open', () => {
  it('refuses a directory that is not a store', async () => {
    const dir = fresh('not-a-store');
    await mkdir(dir);
    await writeFile(join(dir, 'something'), 'x');
    await expect(Store.open(dir)).rejects.toMatchObject({ code: 'FERRY_ERR_STORE_INVALID' });
    await expect(Store.open(dir, { create: true })).rejects.toMatchObject({ code: 'FERRY_ERR_STORE_INVALID' });
    await expect(Store.open(fresh('missing'))).rejects.toMatchObject({ code: 'FERRY_ERR_STORE_INVALID' });
    const other = fresh('other-format');
    await mkdir(other);
    await writeFile(join(other, 'ferry-store.json'), JSON.stringify({ format: 'ferry-store', version: 99 }));
    await expect(Store.open(other)).rejects.toMatchObject({ code: 'FERRY_ERR_STORE_INVALID' });
    await writeFile(join(other, 'ferry-store.json'), '{not json');
    await expect(Store.open(other)).rejects.toMatchObject({ code: 'FERRY_ERR_STORE_INVALID' });
    // a store whose creation was cut short (no marker yet, only its own directories) is finished
    const half = fresh('half-created');
    for (const d of ['refs', 'blobs', 'contents/00', 'contents/01']) await mkdir(join(half, d), { recursive: true });
    await writeFile(join(half, '.tmp-4242-0123456789ab'), '{"format":');
    await expect(Store.open(half)).rejects.toMatchObject({ code: 'FERRY_ERR_STORE_INVALID' });
    const finished = await Store.open(half, { create: true });
    await importImage(finished, await openImage(v1Dir), 'app:v1');
    expect((await fsck(finished)).ok).toBe(true);
    // an existing store opens without create
    const ok = await newStore();
    await expect(Store.open(ok.root)).resolves.toBeInstanceOf(Store);
  });
});
