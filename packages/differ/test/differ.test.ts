/**
 * The differ (DESIGN.md section 5): deterministic bundles, whole-layer reuse, a rebuilt layer that
 * only moved mtimes costing next to nothing, copies from whatever image the device holds, the
 * patch-reference cap, and round trips of a release that adds, removes (whiteouts) and edits.
 * Every bundle here is also applied to a device store and the result exported and checked.
 *
 * Uses the built packages: the patch workers load dist/patch-worker.js (see bundle-fixture.ts).
 */
import { execFileSync } from 'node:child_process';
import { readFile, readdir, utimes, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyBundle, loadBaseline, openBundle, verifyHeader } from '@ferry/core';
import { createBundle, writeFerryFile, type BundleOptions, type ComputedBundle } from '@ferry/differ';
import { writeImagePair } from '@ferry/imagegen';
import { BASE_MTIME, buildPackages, createStore, expected, imageOf, newKey, remove, scratch, seededBytes, seededText, toolsOrSkip, trustOf, verifyExport, writeLayout, type TarEntry } from '@ferry/test-support';
import { bundleOptions, decodeRefs, roundTrip, stores, type DifferFixture } from './helpers.js';

/** umoci writes Go archive/tar layers for one test; without it that test is skipped. */
const umociBin = toolsOrSkip('umoci')?.umoci;

const fx: DifferFixture = { work: '', key: newKey(), runs: 0 };
const trust = trustOf(fx.key);

beforeAll(async () => {
  buildPackages();
  fx.work = await scratch('differ');
});

afterAll(async () => {
  if (fx.work) await remove(fx.work);
});

const opts = (from: string[], to: string, more: Partial<BundleOptions> = {}): BundleOptions => bundleOptions(fx, from, to, more);

describe('determinism', () => {
  it('gives byte-identical header envelopes and payloads for the same inputs and created time', async () => {
    const layout = join(fx.work, 'det-layout');
    await writeImagePair(layout, { targetBytes: 2 * 1024 * 1024, tags: ['v1', 'v2'] });
    const { pub, dev } = await stores(fx, layout, ['v1', 'v2'], ['v1']);
    const t0 = performance.now();
    const a = await createBundle(pub, opts(['app:v1'], 'app:v2'));
    const ms = performance.now() - t0;
    const b = await createBundle(pub, opts(['app:v1'], 'app:v2'));
    // a pool of another size schedules patches differently; the bytes must not change
    const c = await createBundle(pub, opts(['app:v1'], 'app:v2', { workers: 3 }));
    try {
      expect(a.stats.bodies.patch.files, 'the pair exercises patches').toBeGreaterThan(0);
      expect(a.stats.bodies.group.files + a.stats.bodies.member.files, 'the pair exercises reference-set groups').toBeGreaterThan(0);
      for (const other of [b, c]) {
        expect(Buffer.from(other.signed.envelope).equals(Buffer.from(a.signed.envelope))).toBe(true);
        expect(other.signed.id).toBe(a.signed.id);
        expect((await readFile(other.signed.payloadFile)).equals(await readFile(a.signed.payloadFile))).toBe(true);
      }
      console.log(`differ determinism: payload ${a.signed.payloadSize} bytes, ${a.signed.chunks.length} chunks, createBundle ${ms.toFixed(0)} ms`);
      await roundTrip(fx, pub, dev, a);
    } finally {
      await Promise.all([a.dispose(), b.dispose(), c.dispose()]);
    }
  });
});

describe('reuse', () => {
  it('reuses a target layer the baseline holds whole, and carries nothing for it', async () => {
    const layout = join(fx.work, 'reuse-layout');
    await writeImagePair(layout, { targetBytes: 1024 * 1024, fileScale: 0.25, tags: ['v1', 'other'] });
    const { pub, dev } = await stores(fx, layout, ['v1', 'other'], ['v1']);
    const v1 = await pub.resolve('app:v1');
    const other = await pub.resolve('app:other');
    const shared = other.layers.filter((l) => v1.layers.some((x) => x.diffId === l.diffId));
    expect(shared.length, 'imagegen other shares v1 base layer').toBeGreaterThan(0);
    const b = await createBundle(pub, opts(['app:v1'], 'app:other'));
    try {
      for (const l of b.layers) {
        const isShared = shared.some((s) => s.diffId === l.diffId);
        expect(l.mode, l.diffId).toBe(isShared ? 'reuse' : 'rebuild');
        if (isShared) expect(l.end - l.start).toBe(0);
      }
      const path = join(fx.work, 'reuse.ferry');
      await writeFerryFile(path, b.signed);
      const r = await applyBundle(dev, await openBundle(path), { trust });
      expect(r.layers.filter((l) => l.mode === 'reuse').every((l) => l.alreadyPresent)).toBe(true);
      await verifyExport(dev, 'app:other', await expected(pub, 'app:other'), fx.work);
    } finally {
      await b.dispose();
    }
  });
});

/** Files of a base layer: text and binary bodies of varied sizes, directories and a symlink. */
function baseFiles(count: number, mtime = BASE_MTIME): TarEntry[] {
  const out: TarEntry[] = [{ path: 'usr/', type: 'directory', mtime }, { path: 'usr/lib/', type: 'directory', mtime }, { path: 'usr/share/', type: 'directory', mtime }];
  for (let i = 0; i < count; i++) {
    const size = 1_000 + ((i * 7919) % 60_000);
    out.push(i % 3 === 0 ? { path: `usr/lib/lib${i}.so.1`, body: seededBytes(`lib${i}`, size), mode: 0o755, mtime } : { path: `usr/share/doc${i % 20}/file${i}.txt`, body: seededText(`doc${i}`, size), mtime });
  }
  out.push({ path: 'usr/lib/libcur.so', type: 'symlink', linkname: 'lib0.so.1', mtime });
  return out;
}

function layerSize(b: ComputedBundle): number {
  return b.layers.filter((l) => l.mode === 'rebuild').reduce((a, l) => a + l.size, 0);
}

describe('a no-op rebuild (same files, new mtimes)', () => {
  it('costs far less than 1% of the layer (tar-stream layer)', async () => {
    const layout = join(fx.work, 'noop-layout');
    const files = baseFiles(300);
    const later = files.map((f) => ({ ...f, mtime: (f.mtime ?? BASE_MTIME) + 86_400 * 30 }));
    await writeLayout(layout, { v1: await imageOf([files], 'noop v1'), v2: await imageOf([later], 'noop v2') });
    const { pub, dev } = await stores(fx, layout, ['v1', 'v2'], ['v1']);
    const b = await createBundle(pub, opts(['app:v1'], 'app:v2'));
    try {
      const size = layerSize(b);
      const ratio = b.signed.payloadSize / size;
      console.log(`no-op rebuild (tar-stream, ${files.length} entries): payload ${b.signed.payloadSize} bytes for a ${size}-byte layer = ${(ratio * 100).toFixed(4)}%`);
      expect(b.layers.map((l) => l.mode)).toEqual(['rebuild']);
      expect(ratio).toBeLessThan(0.01);
      expect(b.stats.literalBytes + b.stats.patchBytes).toBe(0);
      await roundTrip(fx, pub, dev, b);
    } finally {
      await b.dispose();
    }
  });

  it.skipIf(!umociBin)('costs far less than 1% of the layer (umoci repack after touching every file)', async () => {
    const layout = join(fx.work, 'umoci-layout');
    const bundleDir = join(fx.work, 'umoci-bundle');
    const umoci = (...args: string[]): void => void execFileSync(umociBin!, args, { stdio: 'pipe' });
    umoci('init', '--layout', layout);
    umoci('new', '--image', `${layout}:v1`);
    umoci('unpack', '--rootless', '--image', `${layout}:v1`, bundleDir);
    const rootfs = join(bundleDir, 'rootfs');
    for (const f of baseFiles(200)) {
      if (f.type === 'directory') await mkdir(join(rootfs, f.path), { recursive: true });
      else if (f.type !== 'symlink') {
        await mkdir(join(rootfs, f.path, '..'), { recursive: true });
        await writeFile(join(rootfs, f.path), f.body!);
      }
    }
    umoci('repack', '--image', `${layout}:v1`, bundleDir);
    umoci('config', '--image', `${layout}:v1`, '--tag', 'v2');
    await remove(bundleDir);
    umoci('unpack', '--rootless', '--image', `${layout}:v2`, bundleDir);
    const later = new Date((BASE_MTIME + 86_400 * 90) * 1000);
    const touchAll = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await touchAll(p);
        await utimes(p, later, later);
      }
    };
    await touchAll(rootfs);
    umoci('repack', '--image', `${layout}:v2`, bundleDir);
    const { pub, dev } = await stores(fx, layout, ['v1', 'v2'], ['v1']);
    const b = await createBundle(pub, opts(['app:v1'], 'app:v2'));
    try {
      // v2 = v1's layers (reused) + one layer holding every file again with new mtimes
      expect(b.layers.filter((l) => l.mode === 'reuse').length).toBeGreaterThan(0);
      const size = layerSize(b);
      const ratio = b.signed.payloadSize / size;
      console.log(`no-op rebuild (umoci, Go archive/tar): payload ${b.signed.payloadSize} bytes for a ${size}-byte layer = ${(ratio * 100).toFixed(4)}%`);
      expect(ratio).toBeLessThan(0.01);
      expect(b.stats.literalBytes + b.stats.patchBytes).toBe(0);
      await roundTrip(fx, pub, dev, b);
    } finally {
      await b.dispose();
    }
  });
});

describe('cross-image baseline', () => {
  it('copies bodies from another image the device holds (v1 absent)', async () => {
    const layout = join(fx.work, 'cross-layout');
    const shared = Array.from({ length: 6 }, (_, i) => seededBytes(`shared${i}`, 40_000 + i * 1000));
    const v1 = await imageOf([[{ path: 'app/', type: 'directory' }, { path: 'app/old.bin', body: seededBytes('old', 30_000) }]], 'cross v1');
    const v2 = await imageOf([[{ path: 'app/', type: 'directory' }, ...shared.map((body, i) => ({ path: `app/lib/mod${i}.so`, body })), { path: 'app/VERSION', body: '2.0.0\n' }]], 'cross v2');
    const other = await imageOf([[{ path: 'opt/', type: 'directory' }, ...shared.map((body, i) => ({ path: `opt/vendor/m${i}.bin`, body }))]], 'cross other');
    await writeLayout(layout, { v1, v2, other });
    const { pub, dev } = await stores(fx, layout, ['v1', 'v2', 'other'], ['other']);
    const fromOther = await createBundle(pub, opts(['app:other'], 'app:v2'));
    const fromV1 = await createBundle(pub, opts(['app:v1'], 'app:v2'));
    try {
      expect(fromOther.stats.bodies.copy.files).toBe(shared.length);
      expect(fromOther.stats.literalBytes).toBeLessThan(100);
      const ops = await decodeRefs(fx, pub, fromOther);
      expect(ops.filter((o) => o.kind === 'copy')).toHaveLength(shared.length);
      // v1 shares nothing: the same target costs the whole bodies
      expect(fromV1.stats.bodies.copy.files).toBe(0);
      expect(fromOther.signed.payloadSize * 20).toBeLessThan(fromV1.signed.payloadSize);
      console.log(`cross-image: payload ${fromOther.signed.payloadSize} bytes from 'other', ${fromV1.signed.payloadSize} from v1`);
      await roundTrip(fx, pub, dev, fromOther);
    } finally {
      await fromOther.dispose();
      await fromV1.dispose();
    }
  });
});

describe('patch reference cap', () => {
  it('never patches from a reference over maxPatchReference: the body goes literal', async () => {
    const layout = join(fx.work, 'cap-layout');
    const big = seededBytes('big', 300_000);
    const edited = Buffer.from(big);
    for (const at of [1_000, 150_000, 299_000]) edited.write('EDITED', at);
    const small = seededText('small', 20_000);
    const smallEdited = Buffer.concat([small.subarray(0, 10_000), Buffer.from('a new line in the middle\n'), small.subarray(10_000)]);
    const v1 = await imageOf([[{ path: 'data/big.bin', body: big }, { path: 'data/small.txt', body: small }]], 'cap v1');
    const v2 = await imageOf([[{ path: 'data/big.bin', body: edited }, { path: 'data/small.txt', body: smallEdited }]], 'cap v2');
    await writeLayout(layout, { v1, v2 });
    const { pub, dev } = await stores(fx, layout, ['v1', 'v2'], ['v1']);
    const uncapped = await createBundle(pub, opts(['app:v1'], 'app:v2'));
    const capped = await createBundle(pub, opts(['app:v1'], 'app:v2', { maxPatchReference: 100_000 }));
    try {
      const kind = (b: ComputedBundle, path: string): string | undefined => b.stats.top.find((t) => t.path === path)?.kind;
      // a delta (zstd patch-from or bsdiff, whichever is smaller) while the reference is allowed
      expect(['patch', 'bsdiff']).toContain(kind(uncapped, 'data/big.bin'));
      expect(kind(capped, 'data/big.bin')).toBe('literal');
      // the small file stays a delta (its reference set: its old version) under the cap
      expect(kind(capped, 'data/small.txt')).toBe('group');
      expect(capped.stats.literalBytes).toBeGreaterThanOrEqual(big.length);
      const table = await loadBaseline(pub, verifyHeader(capped.signed.envelope, { trust }).baseline);
      const refs = (await decodeRefs(fx, pub, capped)).filter((o) => o.kind === 'patch' || o.kind === 'bsdiff' || o.kind === 'group');
      expect(refs.length).toBeGreaterThan(0);
      for (const op of refs) expect((op.set ?? [op.index!]).reduce((a, i) => a + table[i]!.size, 0)).toBeLessThanOrEqual(100_000);
      // a device whose cap is below the reference refuses the uncapped bundle, changing nothing
      const path = join(fx.work, 'uncapped.ferry');
      await writeFerryFile(path, uncapped.signed);
      const err = await applyBundle(dev, await openBundle(path), { trust, maxPatchReference: 100_000 }).catch((e: unknown) => e as { code: string });
      expect((err as { code: string }).code).toBe('FERRY_ERR_LIMIT_EXCEEDED');
      expect((await dev.listRefs()).map((r) => r.ref)).toEqual(['app:v1']);
      // and applies the capped one with that cap
      const cpath = join(fx.work, 'capped.ferry');
      await writeFerryFile(cpath, capped.signed);
      await applyBundle(dev, await openBundle(cpath), { trust, maxPatchReference: 100_000 });
      await verifyExport(dev, 'app:v2', await expected(pub, 'app:v2'), fx.work);
    } finally {
      await uncapped.dispose();
      await capped.dispose();
    }
  });
});

describe('round trips', () => {
  it('rebuilds a release that adds, removes (whiteouts, opaque dir) and edits files', async () => {
    const layout = join(fx.work, 'rt-layout');
    const conf = seededText('conf', 5_000);
    const base: TarEntry[] = [
      { path: 'etc/', type: 'directory' },
      { path: 'etc/app.conf', body: conf },
      { path: 'etc/remove-me', body: 'old\n' },
      { path: 'srv/', type: 'directory' },
      { path: 'srv/plugins/', type: 'directory' },
      ...Array.from({ length: 5 }, (_, i) => ({ path: `srv/plugins/p${i}.js`, body: seededText(`plugin${i}`, 3_000) })),
      { path: 'bin/', type: 'directory' },
      { path: 'bin/app', body: seededBytes('app', 80_000), mode: 0o755 },
      { path: 'bin/app-link', type: 'symlink', linkname: 'app' },
    ];
    const appEdited = Buffer.from(seededBytes('app', 80_000));
    appEdited.write('version 2', 40_000);
    const top: TarEntry[] = [
      { path: 'etc/', type: 'directory' },
      { path: 'etc/app.conf', body: Buffer.concat([conf, Buffer.from('new_option = 1\n')]) },
      { path: 'etc/.wh.remove-me' },
      { path: 'srv/plugins/', type: 'directory' },
      { path: 'srv/plugins/.wh..wh..opq' },
      { path: 'srv/plugins/p9.js', body: seededText('plugin9', 3_000) },
      { path: 'bin/', type: 'directory' },
      { path: 'bin/app', body: appEdited, mode: 0o755 },
      { path: 'bin/new-tool', body: seededBytes('tool', 12_000), mode: 0o755 },
      { path: 'var/', type: 'directory' },
      { path: 'var/empty', body: '' },
    ];
    const v1 = await imageOf([base], 'rt v1');
    const v2 = await imageOf([base, top], 'rt v2');
    await writeLayout(layout, { v1, v2 });
    const { pub, dev } = await stores(fx, layout, ['v1', 'v2'], ['v1']);
    const b = await createBundle(pub, opts(['app:v1'], 'app:v2'));
    try {
      expect(b.layers.map((l) => l.mode)).toEqual(['reuse', 'rebuild']);
      expect(b.stats.bodies.patch.files + b.stats.bodies.same.files + b.stats.bodies.copy.files).toBeGreaterThan(0);
      await roundTrip(fx, pub, dev, b);
    } finally {
      await b.dispose();
    }
  });

  it('rebuilds an imagegen release (rebuilt base, app changes, whiteouts) from an empty baseline and from v1', async () => {
    const layout = join(fx.work, 'ig-layout');
    await writeImagePair(layout, { targetBytes: 1024 * 1024, fileScale: 0.25, tags: ['v1', 'v2'] });
    const { pub, dev } = await stores(fx, layout, ['v1', 'v2'], ['v1']);
    const empty = await createStore(join(fx.work, `dev-empty-${fx.runs++}`));
    const fromV1 = await createBundle(pub, opts(['app:v1'], 'app:v2'));
    const fromNothing = await createBundle(pub, opts([], 'app:v2'));
    try {
      expect(fromNothing.layers.every((l) => l.mode === 'rebuild')).toBe(true);
      expect(fromNothing.stats.bodies.copy.files + fromNothing.stats.bodies.same.files + fromNothing.stats.bodies.patch.files).toBe(0);
      expect(fromV1.signed.payloadSize).toBeLessThan(fromNothing.signed.payloadSize);
      const size = layerSize(fromV1);
      console.log(`imagegen release: payload ${fromV1.signed.payloadSize} bytes from v1 (${((fromV1.signed.payloadSize / size) * 100).toFixed(2)}% of ${size} rebuilt bytes), ${fromNothing.signed.payloadSize} from nothing`);
      await roundTrip(fx, pub, dev, fromV1);
      await roundTrip(fx, pub, empty, fromNothing);
    } finally {
      await fromV1.dispose();
      await fromNothing.dispose();
    }
  });
});
