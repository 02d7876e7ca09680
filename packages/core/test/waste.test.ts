import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store, importImage, openImage, wasteReport, type WasteReport } from '../src/index.js';
import { hiddenEntries } from '../src/report/hidden.js';
import { classifyEntry, type LayerScan } from '../src/report/scan.js';

/** A tar member for the handmade layers: a directory (no body), a whiteout, or a file. */
type Member = { name: string; dir?: true } | { name: string; body: Buffer };

/** Deterministic bytes, distinct per seed. */
function bytes(n: number, seed: string): Buffer {
  const out = Buffer.alloc(n);
  let block = createHash('sha256').update(seed).digest();
  for (let i = 0; i < n; i++) {
    if (i % 32 === 0 && i > 0) block = createHash('sha256').update(block).digest();
    out[i] = block[i % 32]!;
  }
  return out;
}

async function layerTar(members: Member[]): Promise<Buffer> {
  const p = pack();
  const mtime = new Date(1_700_000_000_000);
  for (const m of members) {
    if ('body' in m) p.entry({ name: m.name, mtime, mode: 0o644 }, m.body);
    else if (m.dir) p.entry({ name: m.name, type: 'directory', mtime, mode: 0o755 });
    else p.entry({ name: m.name, mtime, mode: 0o644 }, ''); // whiteouts are empty files
  }
  p.finalize();
  const parts: Buffer[] = [];
  for await (const c of p) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function sha(b: Buffer | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** Writes an OCI layout with uncompressed layers, the image tagged `tag`. */
async function writeLayout(dir: string, tag: string, layers: Buffer[]): Promise<void> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (b: Buffer | string): Promise<string> => {
    const d = sha(b);
    await writeFile(join(blobs, d.slice(7)), b);
    return d;
  };
  const diffIds = await Promise.all(layers.map(put));
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } });
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await put(config), size: config.length },
    layers: layers.map((l, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: diffIds[i], size: l.length })),
  });
  const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: await put(manifest), size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } }] };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
}

const C = {
  a: bytes(100, 'a'),
  a2: bytes(110, 'a2'),
  b: bytes(200, 'b'),
  tool: bytes(1000, 'tool'),
  x: bytes(300, 'x'),
  y: bytes(50, 'y'),
  c1: bytes(400, 'c1'),
  c2: bytes(500, 'c2'),
  dup: bytes(64, 'dup'),
  big: bytes(5000, 'big'),
  big2: bytes(10, 'big2'),
  n: bytes(70, 'n'),
  t1: bytes(20, 't1'),
  t2: bytes(30, 't2'),
  q: bytes(33, 'q'),
};

/** Bottom layer: "./"-prefixed names, as `tar -C rootfs .` writes them. */
const L0: Member[] = [
  { name: './', dir: true },
  { name: './etc/', dir: true },
  { name: './etc/a.conf', body: C.a },
  { name: './etc/b.conf', body: C.b },
  { name: './bin/', dir: true },
  { name: './bin/tool', body: C.tool },
  { name: './opt/', dir: true },
  { name: './opt/old/', dir: true },
  { name: './opt/old/x', body: C.x },
  { name: './opt/y', body: C.y },
  { name: './var/', dir: true },
  { name: './var/cache/', dir: true },
  { name: './var/cache/c1', body: C.c1 },
  { name: './var/cache/c2', body: C.c2 },
  { name: './usr/share/dup1', body: C.dup },
  { name: './srv/big', body: C.big },
];

/** Overwrites (one with the same bytes: a chmod copy), an opaque dir, a whiteout of a directory. */
const L1: Member[] = [
  { name: 'etc/a.conf', body: C.a2 },
  { name: 'bin/tool', body: C.tool },
  { name: 'opt/', dir: true },
  { name: 'opt/.wh..wh..opq' },
  { name: 'opt/new', body: C.n },
  { name: 'var/.wh.cache' },
  { name: '/usr/share/dup2', body: C.dup },
];

/** A file whiteout, an overwrite, a third copy, and one path written twice in the same tar. */
const L2: Member[] = [
  { name: './etc/.wh.b.conf' },
  { name: './srv/big', body: C.big2 },
  { name: './tmp/dup3', body: C.dup },
  { name: './tmp/twice', body: C.t1 },
  { name: './tmp/twice', body: C.t2 },
];

/** Another image: shares b.conf's and big's contents at other paths. */
const O0: Member[] = [
  { name: 'data/b-copy', body: C.b },
  { name: 'data/big-copy', body: C.big },
  { name: 'data/own', body: C.q },
];

describe('wasteReport', () => {
  let work: string;
  let report: WasteReport;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-waste-'));
    await writeLayout(join(work, 'app'), 'v1', await Promise.all([L0, L1, L2].map(layerTar)));
    await writeLayout(join(work, 'other'), 'v1', [await layerTar(O0)]);
    const store = await Store.open(join(work, 'store'), { create: true });
    await importImage(store, await openImage(join(work, 'app')), 'app:v1');
    await importImage(store, await openImage(join(work, 'app')), 'app:alias');
    await importImage(store, await openImage(join(work, 'other')), 'other:v1');
    report = await wasteReport(store, ['app:v1'], { top: 3 });
  });

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('sizes every layer', () => {
    const [l0, l1, l2] = report.images[0]!.layers;
    expect([l0!.files, l0!.bodyBytes, l0!.entries]).toEqual([9, 7614, 16]);
    expect([l1!.files, l1!.bodyBytes, l1!.whiteouts, l1!.opaqueDirs]).toEqual([4, 1244, 1, 1]);
    expect([l2!.files, l2!.bodyBytes, l2!.whiteouts, l2!.opaqueDirs]).toEqual([4, 124, 1, 0]);
    expect(l0!.tarBytes % 512).toBe(0);
    expect(report.images[0]!.totals).toMatchObject({ files: 17, bodyBytes: 8982, visibleFiles: 8, visibleBytes: 1412 });
  });

  it('counts bytes hidden by overwrites, whiteouts and opaque dirs', () => {
    const [l0, l1, l2] = report.images[0]!.layers;
    // a.conf 100 + bin/tool 1000 + srv/big 5000 overwritten; b.conf 200 (whiteout),
    // opt/old/x 300 + opt/y 50 (opaque), var/cache/c1 400 + c2 500 (whited-out dir) deleted
    expect(l0!.hidden).toEqual({ files: 8, bytes: 7550, overwritten: { files: 3, bytes: 6100 }, deleted: { files: 5, bytes: 1450 } });
    expect(l1!.hidden.files).toBe(0);
    expect(l2!.hidden).toEqual({ files: 1, bytes: 20, overwritten: { files: 1, bytes: 20 }, deleted: { files: 0, bytes: 0 } });
    expect(report.images[0]!.totals.hidden).toMatchObject({ files: 9, bytes: 7570 });
  });

  it('finds duplicated contents across paths and layers', () => {
    const d = report.images[0]!.duplicates;
    expect([d.groups, d.files, d.wastedBytes]).toEqual([2, 3, 1128]);
    expect(d.top[0]).toMatchObject({ digest: sha(C.tool), size: 1000, wastedBytes: 1000, copies: [{ path: 'bin/tool', layer: 0 }, { path: 'bin/tool', layer: 1 }] });
    expect(d.top[1]!.copies).toEqual([
      { path: 'usr/share/dup1', layer: 0 },
      { path: 'usr/share/dup2', layer: 1 },
      { path: 'tmp/dup3', layer: 2 },
    ]);
    expect(report.images[0]!.dedup).toEqual({ bodyBytes: 8982, uniqueContents: 14, uniqueBytes: 7854, savedBytes: 1128 });
  });

  it('reports contents shared with other images, leaving aliases out', () => {
    expect(report.images[0]!.shared).toEqual({ layers: 0, contents: 2, bytes: 5200, images: [{ ref: 'other:v1', contents: 2, bytes: 5200 }] });
  });

  it('reports the store-wide savings', () => {
    expect(report.store).toMatchObject({ images: 3, layers: 4, layerBodyBytes: 14215, uniqueContents: 15, uniqueBytes: 7887, savedBytes: 6328 });
    expect(report.store.storedBytes).toBeGreaterThan(0);
  });

  it('lists the largest files with their layer', () => {
    expect(report.images[0]!.largest.map((f) => [f.path, f.size, f.layer, f.hidden])).toEqual([
      ['srv/big', 5000, 0, true],
      ['bin/tool', 1000, 0, true],
      ['bin/tool', 1000, 1, false],
    ]);
  });

  it('refuses an unknown ref', async () => {
    const store = await Store.open(join(work, 'store'));
    await expect(wasteReport(store, ['nope:v1'])).rejects.toMatchObject({ code: 'FERRY_ERR_REF_NOT_FOUND' });
  });
});

describe('hiddenEntries', () => {
  const scan = (paths: [string, string, number][]): LayerScan => ({
    diffId: `sha256:${'0'.repeat(64)}`,
    tarBytes: 0,
    entries: paths.map(([p, type, size]) => ({ ...classifyEntry(p, type), size, digest: size > 0 ? `sha256:${'1'.repeat(64)}` : undefined })),
  });

  it('merges directories, replaces a directory by a file, honours a root opaque marker', () => {
    const lower = scan([['a/', '5', 0], ['a/f', '0', 5], ['d/', '5', 0], ['d/g', '0', 7], ['keep', '0', 1]]);
    const mid = scan([['a/', '5', 0], ['d', '2', 0]]);
    expect(hiddenEntries([lower, mid])).toEqual([[undefined, undefined, 'overwritten', 'deleted', undefined], [undefined, undefined]]);
    const top = scan([['.wh..wh..opq', '0', 0], ['new', '0', 3]]);
    expect(hiddenEntries([lower, top])[0]).toEqual(['deleted', 'deleted', 'deleted', 'deleted', 'deleted']);
  });

  it('leaves the root and aufs metadata alone', () => {
    expect(classifyEntry('./', '5')).toEqual({ path: '', kind: 'dir' });
    expect(classifyEntry('/x/.wh..wh.plnk', '5').kind).toBe('other');
    expect(classifyEntry('x/.wh.y', '0')).toEqual({ path: 'x/.wh.y', kind: 'whiteout', target: 'x/y' });
  });
});
