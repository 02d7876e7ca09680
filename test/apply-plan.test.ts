/**
 * planApply, step one of an apply (DESIGN.md section 6): every check "before any chunk", each
 * refusal with exactly one code, and a plan touches nothing: every file and directory of the
 * store, byte for byte, is the same before and after, whether the plan succeeds or refuses.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestHex, isFerryError, openBundle, planApply, verifyHeader, type PlanOptions, type Store, type VerifiedHeader } from '@ferry/core';
import { CHUNK, cloneDevice, contentSnapshot, frameBase, makeApplyFixture, signVariant, type ApplyFixture } from './helpers/apply-fixture.js';
import { remove } from '@ferry/test-support';

let fx: ApplyFixture;

beforeAll(async () => {
  fx = await makeApplyFixture('apply-plan');
}, 300_000);

afterAll(async () => {
  await fx?.bundle.dispose();
  if (fx) await remove(fx.work);
});

/** Plans on `store` and returns the one error code (or 'planned'), asserting nothing changed. */
async function planCode(store: Store, header: VerifiedHeader, opts: PlanOptions = {}): Promise<string> {
  const before = await contentSnapshot(store.root);
  let code = 'planned';
  try {
    await planApply(store, header, opts);
  } catch (err) {
    code = isFerryError(err) ? err.code : `not a FerryError: ${String(err)}`;
  }
  expect(await contentSnapshot(store.root), `planning (${code}) wrote to the store`).toEqual(before);
  return code;
}

/** A header signed by the fixture key over the fixture payload, with some fields changed. */
async function resigned(name: string, change: { need?: number; layers?: VerifiedHeader['layers'] }): Promise<VerifiedHeader> {
  const source = await openBundle(await signVariant(frameBase(fx), name, change));
  return verifyHeader(source.headerBytes, { trust: fx.trust });
}

describe('planApply', () => {
  it('plans the layers to rebuild and the chunks each needs, writing nothing', async () => {
    const store = await cloneDevice(fx);
    expect(await planCode(store, fx.header)).toBe('planned');
    const plan = await planApply(store, fx.header);
    expect(plan.bundleId).toBe(fx.header.id);
    expect(plan.bundleId).toBe(fx.bundle.signed.id);
    expect(plan.ref).toBe('app:v2');
    expect(plan.layers.map((l) => l.diffId)).toEqual(fx.header.layers.map((l) => l.diffId));
    expect(plan.rebuild.length).toBeGreaterThanOrEqual(2);
    for (const l of plan.layers) {
      const h = fx.header.layers[l.index]!;
      expect(l.present).toBe(await store.hasSkeleton(l.diffId));
      if (l.mode === 'reuse') expect(l.chunks).toEqual([]);
      else {
        // exactly the chunks that hold [start, end)
        const want: number[] = [];
        for (let i = 0; i < fx.header.chunks.length; i++) if (i * CHUNK < h.end && (i + 1) * CHUNK > h.start) want.push(i);
        expect(l.chunks).toEqual(want);
      }
    }
    expect(plan.rebuild.some((l) => l.chunks.length >= 3)).toBe(true);
    expect(plan.chunks).toEqual([...new Set(plan.rebuild.flatMap((l) => l.chunks))].sort((a, b) => a - b));
    expect(plan.payloadBytes).toBe(plan.rebuild.reduce((a, l) => a + l.end - l.start, 0));
  });

  it('refuses an expired header, another channel and a bad ref, each with one code', async () => {
    const store = await cloneDevice(fx);
    expect(await planCode(store, fx.header, { now: fx.expires })).toBe('FERRY_ERR_BUNDLE_EXPIRED');
    expect(await planCode(store, fx.header, { now: fx.expires + 86_400 })).toBe('FERRY_ERR_BUNDLE_EXPIRED');
    expect(await planCode(store, fx.header, { channel: 'beta' })).toBe('FERRY_ERR_BUNDLE_CHANNEL');
    expect(await planCode(store, fx.header, { ref: 'App V2' })).toBe('FERRY_ERR_REF_INVALID');
    expect(await planCode(store, fx.header, { now: fx.expires - 1, channel: 'stable', ref: 'app:other' })).toBe('planned');
  });

  it('refuses a rollback: the channel has this release or a higher one installed', async () => {
    for (const release of [2, 3]) {
      const store = await cloneDevice(fx);
      await store.setChannel('stable', { release, ref: 'app:v1', manifest: fx.header.release.manifest, installed: new Date().toISOString() });
      expect(await planCode(store, fx.header)).toBe('FERRY_ERR_BUNDLE_ROLLBACK');
    }
    const lower = await cloneDevice(fx);
    await lower.setChannel('stable', { release: 1, ref: 'app:v1', manifest: fx.header.release.manifest, installed: new Date().toISOString() });
    expect(await planCode(lower, fx.header)).toBe('planned');
  });

  it('refuses a missing baseline layer, naming it', async () => {
    const store = await cloneDevice(fx);
    const gone = fx.header.baseline.at(-1)!;
    await rm(join(store.root, 'skeletons', digestHex(gone)));
    expect(await planCode(store, fx.header)).toBe('FERRY_ERR_BASELINE_MISSING');
    const err = await planApply(store, fx.header).catch((e: unknown) => e as { details?: { missing?: unknown } });
    expect(err.details?.missing).toEqual([gone]);
  });

  // a real shortage (a small tmpfs) is test/full-disk.test.ts; an absurd claim never reaches the plan
  it('refuses a header claiming absurd room before any plan (header caps)', async () => {
    const err = await resigned('need-huge', { need: Number.MAX_SAFE_INTEGER }).catch((e: unknown) => e);
    expect(isFerryError(err) ? err.code : err).toBe('FERRY_ERR_BUNDLE_INVALID');
  });

  it('refuses a layer plan that is not the target manifest\'s', async () => {
    const store = await cloneDevice(fx);
    const layers = fx.header.layers.map((l, i) => (i === 0 ? { ...l, size: l.size + 512 } : l));
    expect(await planCode(store, await resigned('layers-lie', { layers }))).toBe('FERRY_ERR_BUNDLE_INVALID');
  });
});
