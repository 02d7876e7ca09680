/**
 * Segmented patches (docs/format.md section 5.4): a large file whose old version is too large for
 * one patch (the reference cap, or reference plus file over PATCH_SPAN_MAX) travels as segments,
 * each patched against a window of the old version. Window placement is checked on its own
 * (anchored on real matches, not proportional); whole bundles round-trip through a device bit for
 * bit and are deterministic. The quick cases use a small reference cap (1 MiB) so a few-MiB file
 * is segmented; the > 32 MiB file of the issue, applied on a small heap, is in
 * test/segmented-apply.test.ts (FERRY_SLOW_TESTS=1).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { FerryError, PATCH_SPAN_MAX, applyBundle, openBundle, sha256, verifyHeader, zstdCompress } from '@ferry/core';
import { createBundle, placeSegments, referencePlan, writeFerryFile } from '@ferry/differ';
import { buildPackages, imageOf, largeLibrary, newKey, nextLibrary, remove, scratch, seededBytes, writeLayout, type TarEntry } from '@ferry/test-support';
import { trustOf } from '@ferry/test-support';
import { bundleOptions, decodeRefs, roundTrip, stores, type DifferFixture } from './helpers.js';

const fx: DifferFixture = { work: '', key: newKey(), runs: 0 };
const MiB = 1024 * 1024;

/** The windows of `target` against `ref`, planned as a patch worker does. */
function planWindows(ref: Uint8Array, target: Uint8Array, maxWindow: number) {
  return placeSegments(referencePlan(ref, target.length, maxWindow), target);
}

beforeAll(async () => {
  buildPackages();
  fx.work = await scratch('segmented');
});

afterAll(async () => {
  if (fx.work) await remove(fx.work);
});

describe('segment windows', () => {
  it("are planned the same from the reference's plan alone (the worker drops the reference before reading the target)", () => {
    const ref = largeLibrary('halves', 6 * MiB);
    const target = Buffer.concat([seededBytes('halves/front', MiB), ref]);
    const intact = planWindows(ref, target, 2 * MiB);
    const plan = referencePlan(ref, target.length, 2 * MiB);
    ref.fill(0);
    expect(placeSegments(plan, target)).toEqual(intact);
    expect(() => placeSegments(plan, target.subarray(1))).toThrow(RangeError);
  });

  it('follow a shift of the content (an insertion at the front), where proportional placement would miss', () => {
    const ref = largeLibrary('shift', 6 * MiB);
    const inserted = 2 * MiB;
    const target = Buffer.concat([seededBytes('shift/front', inserted), ref]);
    const windows = planWindows(ref, target, 2 * MiB);
    expect(windows.length).toBeGreaterThan(2);
    let last = 0;
    for (const w of windows) {
      expect(w.length).toBeLessThanOrEqual(2 * MiB);
      expect(w.length + w.size).toBeLessThanOrEqual(PATCH_SPAN_MAX);
      expect(w.offset).toBeGreaterThanOrEqual(last);
      last = w.offset;
      // every segment made of old bytes finds those old bytes inside its window
      const from = w.start - inserted;
      if (from >= 0) {
        expect(w.offset, `segment at ${w.start}`).toBeLessThanOrEqual(from);
        expect(w.offset + w.length, `segment at ${w.start}`).toBeGreaterThanOrEqual(from + w.size);
      }
    }
    expect(windows.reduce((a, w) => a + w.size, 0)).toBe(target.length);
  });

  it('use the whole reference when it fits a window, with segments as large as the span allows', () => {
    const ref = largeLibrary('small', 2 * MiB);
    const target = Buffer.concat([ref, ref, largeLibrary('more', 34 * MiB)]);
    const windows = planWindows(ref, target, 16 * MiB);
    for (const w of windows) expect([w.offset, w.length]).toEqual([0, ref.length]);
    expect(windows.length).toBe(Math.ceil(target.length / (PATCH_SPAN_MAX - ref.length)));
  });
});

/** Bundles a one-layer image pair v1 -> v2 with `lib` changed from `old` to `now`; returns what the device needs. */
async function pair(name: string, old: Buffer, now: Buffer, maxPatchReference?: number) {
  const layout = join(fx.work, name);
  const lib = 'usr/lib/x86_64-linux-gnu/libbig.so';
  const tree = (body: Buffer, v: string): TarEntry[] => [{ path: 'usr/', type: 'directory' }, { path: 'usr/lib/', type: 'directory' }, { path: 'usr/lib/x86_64-linux-gnu/', type: 'directory' }, { path: `${lib}.${v}`, body }];
  await writeLayout(layout, { v1: await imageOf([tree(old, '72.1')], `${name} v1`), v2: await imageOf([tree(now, '76.1')], `${name} v2`) });
  const { pub, dev } = await stores(fx, layout, ['v1', 'v2'], ['v1']);
  const opts = bundleOptions(fx, ['app:v1'], 'app:v2', maxPatchReference ? { maxPatchReference } : {});
  return { pub, dev, opts, lib: `${lib}.76.1` };
}

describe('segmented patches in a bundle', () => {
  it('a file whose old version is over the reference cap: segmented, smaller than the literal, rebuilt bit for bit, deterministic', async () => {
    const old = largeLibrary('quick', 4 * MiB);
    const now = nextLibrary(old, 'quick', 300 * 1024);
    const { pub, dev, opts, lib } = await pair('quick', old, now, MiB);
    const a = await createBundle(pub, opts);
    const b = await createBundle(pub, opts);
    try {
      const refs = await decodeRefs(fx, pub, a);
      expect(refs.find((r) => r.path === lib)?.kind).toBe('segmented');
      console.log(`segmented (quick): ${now.length} bytes of file, payload ${a.signed.payloadSize} bytes`);
      // the file is incompressible: only the old version's bytes can make it small
      expect(a.signed.payloadSize).toBeLessThan(now.length / 4);
      expect(Buffer.compare(a.signed.envelope, b.signed.envelope)).toBe(0);
      // an applier that reads only versions 1 and 2 refuses it before fetching a chunk
      expect(verifyHeader(a.signed.envelope, { trust: trustOf(fx.key) }).version).toBe(3);
      await roundTrip(fx, pub, dev, a);
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
    }
  });

  it('a damaged old version on the device: FERRY_ERR_BASELINE_MISSING naming it, never a wrong image', async () => {
    const old = largeLibrary('damaged', 3 * MiB);
    const now = nextLibrary(old, 'damaged', 100 * 1024);
    const { pub, dev, opts } = await pair('damaged', old, now, MiB);
    const a = await createBundle(pub, opts);
    try {
      // the same size, one byte changed, stored as a valid frame: only the digest check catches it
      const bad = Buffer.from(old);
      bad[bad.length - 1]! ^= 1;
      await writeFile(dev.contentPath(sha256(old)), zstdCompress(bad));
      const path = join(fx.work, 'damaged.ferry');
      await writeFerryFile(path, a.signed);
      const err = await applyBundle(dev, await openBundle(path), { trust: trustOf(fx.key) }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(FerryError);
      expect((err as FerryError).code).toBe('FERRY_ERR_BASELINE_MISSING');
      expect((err as FerryError).details?.digest).toBe(sha256(old));
    } finally {
      await a.dispose();
    }
  });
});
