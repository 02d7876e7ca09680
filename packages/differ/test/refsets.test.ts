/**
 * Reference sets on small crafted trees (DESIGN.md section 5, "Matching"; docs/format.md section
 * 5.3): a package whose main file split into several, a package hoisted to another node_modules
 * level, a version-renamed directory that gained a file, a build variant of a new file, and a
 * soname bump. Each asserts the
 * reference the differ chose, that the bundle is smaller than with single-file references
 * (format version 1's matching), and that it applies to a device bit for bit.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBundle, type ComputedBundle } from '@ferry/differ';
import { seededBytes } from '@ferry/test-support';
import { buildPackages, imageOf, newKey, remove, scratch, writeLayout, type TarEntry } from '@ferry/test-support';
import { bundleOptions, decodeRefs, edited, prose, roundTrip, stores, type DecodedRef, type DifferFixture } from './helpers.js';

const fx: DifferFixture = { work: '', key: newKey(), runs: 0 };

beforeAll(async () => {
  buildPackages();
  fx.work = await scratch('refsets');
});

afterAll(async () => {
  if (fx.work) await remove(fx.work);
});

/** Bundles v1 -> v2 of `v1`/`v2` with reference sets and with single-file references; applies the first. */
async function both(name: string, v1: TarEntry[], v2: TarEntry[]): Promise<{ sets: ComputedBundle; single: ComputedBundle; refs: DecodedRef[] }> {
  const layout = join(fx.work, name);
  await writeLayout(layout, { v1: await imageOf([v1], `${name} v1`), v2: await imageOf([v2], `${name} v2`) });
  const { pub, dev } = await stores(fx, layout, ['v1', 'v2'], ['v1']);
  const sets = await createBundle(pub, bundleOptions(fx, ['app:v1'], 'app:v2'));
  const single = await createBundle(pub, bundleOptions(fx, ['app:v1'], 'app:v2', { referenceSets: false }));
  const refs = await decodeRefs(fx, pub, sets);
  console.log(`${name}: payload ${sets.signed.payloadSize} bytes with reference sets, ${single.signed.payloadSize} with single-file references`);
  await roundTrip(fx, pub, dev, sets);
  return { sets, single, refs };
}

function refOf(refs: DecodedRef[], path: string): DecodedRef {
  const r = refs.find((x) => x.path === path);
  expect(r, `an entry for ${path}`).toBeDefined();
  return r!;
}

const dir = (path: string): TarEntry => ({ path, type: 'directory' });

describe('reference sets', () => {
  it('a package whose main file split into several: the new files are patched against the old main file', async () => {
    const [a, b, c] = [prose('split-a', 90_000), prose('split-b', 90_000), prose('split-c', 90_000)];
    const pkg = 'app/node_modules/widget';
    const v1: TarEntry[] = [dir('app/'), dir('app/node_modules/'), dir(`${pkg}/`), { path: `${pkg}/package.json`, body: '{"name":"widget","version":"1.0.0"}\n' }, dir(`${pkg}/dist/`), { path: `${pkg}/dist/index.js`, body: Buffer.concat([a, b, c]) }];
    const v2: TarEntry[] = [
      ...v1.slice(0, 3),
      { path: `${pkg}/package.json`, body: '{"name":"widget","version":"2.0.0"}\n' },
      dir(`${pkg}/dist/`),
      { path: `${pkg}/dist/b.js`, body: edited(b, 'b') },
      { path: `${pkg}/dist/c.js`, body: edited(c, 'c') },
      { path: `${pkg}/dist/index.js`, body: Buffer.concat([edited(a, 'a'), Buffer.from("module.exports = { ...require('./b'), ...require('./c') };\n")]) },
    ];
    const { sets, single, refs } = await both('split', v1, v2);
    try {
      for (const f of ['b.js', 'c.js', 'index.js']) expect(refOf(refs, `${pkg}/dist/${f}`).reference, f).toContain(`${pkg}/dist/index.js`);
      // single-file references find nothing for b.js and c.js: 180 KB of literals
      expect(sets.signed.payloadSize * 5).toBeLessThan(single.signed.payloadSize);
    } finally {
      await Promise.all([sets.dispose(), single.dispose()]);
    }
  });

  it('a package hoisted to another node_modules level: matched by package name, not by a same-named file elsewhere', async () => {
    const files = ['index.js', 'lib/parse.js', 'lib/format.js'];
    const body = (pkg: string, f: string): Buffer => prose(`${pkg}/${f}`, 40_000);
    const tree = (root: (pkg: string) => string, version: (pkg: string, f: string, b: Buffer) => Buffer): TarEntry[] =>
      ['alpha', 'beta', 'gamma'].flatMap((pkg) => [dir(`${root(pkg)}/`), dir(`${root(pkg)}/lib/`), ...files.map((f) => ({ path: `${root(pkg)}/${f}`, body: version(pkg, f, body(pkg, f)) }))]);
    const nested = (pkg: string): string => (pkg === 'gamma' ? 'app/node_modules/alpha/node_modules/gamma' : `app/node_modules/${pkg}`);
    const v1 = [dir('app/'), dir('app/node_modules/'), ...tree(nested, (_p, _f, b) => b)];
    // v2 hoists gamma to the top level, and every gamma file changed a little
    const v2 = [dir('app/'), dir('app/node_modules/'), ...tree((pkg) => `app/node_modules/${pkg}`, (pkg, f, b) => (pkg === 'gamma' ? edited(b, f) : b))];
    const { sets, single, refs } = await both('hoist', v1, v2);
    try {
      for (const f of files) expect(refOf(refs, `app/node_modules/gamma/${f}`).reference, f).toContain(`app/node_modules/alpha/node_modules/gamma/${f}`);
      expect(sets.signed.payloadSize).toBeLessThan(single.signed.payloadSize);
    } finally {
      await Promise.all([sets.dispose(), single.dispose()]);
    }
  });

  it('a version-renamed directory that gained a file made of its old siblings', async () => {
    const [enc, dec] = [prose('encoder', 60_000), prose('decoder', 60_000)];
    const v1: TarEntry[] = [dir('usr/'), dir('usr/lib/'), dir('usr/lib/python3.11/'), dir('usr/lib/python3.11/json/'), { path: 'usr/lib/python3.11/json/encoder.py', body: enc }, { path: 'usr/lib/python3.11/json/decoder.py', body: dec }];
    const v2: TarEntry[] = [
      dir('usr/'),
      dir('usr/lib/'),
      dir('usr/lib/python3.13/'),
      dir('usr/lib/python3.13/json/'),
      { path: 'usr/lib/python3.13/json/_shared.py', body: Buffer.concat([enc.subarray(20_000, 40_000), dec.subarray(0, 20_000)]) },
      { path: 'usr/lib/python3.13/json/decoder.py', body: edited(dec, 'dec') },
      { path: 'usr/lib/python3.13/json/encoder.py', body: edited(enc, 'enc') },
    ];
    const { sets, single, refs } = await both('rename', v1, v2);
    try {
      expect(refOf(refs, 'usr/lib/python3.13/json/encoder.py').reference).toContain('usr/lib/python3.11/json/encoder.py');
      expect(refOf(refs, 'usr/lib/python3.13/json/decoder.py').reference).toContain('usr/lib/python3.11/json/decoder.py');
      expect(refOf(refs, 'usr/lib/python3.13/json/_shared.py').reference).toEqual(expect.arrayContaining(['usr/lib/python3.11/json/encoder.py', 'usr/lib/python3.11/json/decoder.py']));
      expect(sets.signed.payloadSize * 2).toBeLessThan(single.signed.payloadSize);
    } finally {
      await Promise.all([sets.dispose(), single.dispose()]);
    }
  });

  it('a build variant made of a new file before it in the layer: that body joins the reference (the applier flushes it first)', async () => {
    const pkg = 'app/node_modules/widget';
    const fresh = prose('variant-main', 300_000);
    const v1: TarEntry[] = [dir('app/'), dir('app/node_modules/'), dir(`${pkg}/`), { path: `${pkg}/package.json`, body: '{"name":"widget","version":"1.0.0"}\n' }, dir(`${pkg}/dist/`), { path: `${pkg}/dist/legacy.js`, body: prose('variant-legacy', 50_000) }];
    const v2: TarEntry[] = [
      ...v1.slice(0, 3),
      { path: `${pkg}/package.json`, body: '{"name":"widget","version":"2.0.0"}\n' },
      dir(`${pkg}/dist/`),
      { path: `${pkg}/dist/widget.js`, body: fresh },
      { path: `${pkg}/dist/widget.variant.js`, body: edited(fresh, 'variant') },
    ];
    const { sets, single, refs } = await both('variant', v1, v2);
    try {
      // widget.js is new to the device (a literal, still in the writer's temp file when the variant's group is decoded)
      expect(refOf(refs, `${pkg}/dist/widget.js`).kind).toBe('literal');
      const variant = refOf(refs, `${pkg}/dist/widget.variant.js`);
      expect(variant.kind).toBe('group');
      expect(variant.reference).toContain(`+${pkg}/dist/widget.js`);
      // no size claim: the payload frame's window holds widget.js too, so single-file references
      // cost about the same here; the point is the apply (both() rebuilt the image bit for bit)
      expect(single.signed.payloadSize).toBeGreaterThan(0);
    } finally {
      await Promise.all([sets.dispose(), single.dispose()]);
    }
  });

  it('a soname bump: the library is a delta against its old version, a split-off library against it too', async () => {
    const elf = (seed: string, size: number): Buffer => Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), seededBytes(seed, size - 8)]);
    const lib = elf('libfoo', 200_000);
    const bumped = Buffer.from(lib);
    for (let i = 0; i < 50; i++) bumped[(i * 3989) % bumped.length]! ^= 0x5a;
    const v1: TarEntry[] = [dir('usr/'), dir('usr/lib/'), { path: 'usr/lib/libfoo.so.1.2.3', body: lib, mode: 0o755 }, { path: 'usr/lib/libfoo.so.1', type: 'symlink', linkname: 'libfoo.so.1.2.3' }];
    const v2: TarEntry[] = [
      dir('usr/'),
      dir('usr/lib/'),
      { path: 'usr/lib/libfoo-extra.so.2.0.0', body: Buffer.concat([elf('extra-head', 4_000), lib.subarray(120_000)]), mode: 0o755 },
      { path: 'usr/lib/libfoo.so.1', type: 'symlink', linkname: 'libfoo.so.1.2.4' },
      { path: 'usr/lib/libfoo.so.1.2.4', body: bumped, mode: 0o755 },
    ];
    const { sets, single, refs } = await both('soname', v1, v2);
    try {
      const bump = refOf(refs, 'usr/lib/libfoo.so.1.2.4');
      expect(['patch', 'bsdiff']).toContain(bump.kind);
      expect(bump.reference).toEqual(['usr/lib/libfoo.so.1.2.3']);
      expect(refOf(refs, 'usr/lib/libfoo-extra.so.2.0.0').reference).toContain('usr/lib/libfoo.so.1.2.3');
      // the split-off library (84 KB of incompressible bytes) is a literal with single-file references
      expect(sets.signed.payloadSize * 5).toBeLessThan(single.signed.payloadSize);
    } finally {
      await Promise.all([sets.dispose(), single.dispose()]);
    }
  });
});
