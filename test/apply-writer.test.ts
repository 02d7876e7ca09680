/**
 * The layer writer (apply-writer.ts) runs on the rebuild's own thread by default or on a thread
 * of its own (ApplyOptions.writerThread): both give the publisher's image bit for bit and a store
 * fsck finds clean, and a missing stored content is the same one code either way.
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyBundle, fsck, loadBaseline, openBundle, type Store } from '@ferry/core';
import { cloneDevice, makeApplyFixture, type ApplyFixture } from './helpers/apply-fixture.js';
import { remove, verifyExport } from '@ferry/test-support';

let fx: ApplyFixture;

beforeAll(async () => {
  fx = await makeApplyFixture('apply-writer');
}, 300_000);

afterAll(async () => {
  await fx?.bundle.dispose();
  if (fx) await remove(fx.work);
});

async function expectApplied(store: Store, label: string): Promise<void> {
  expect((await store.listRefs()).find((r) => r.ref === 'app:v2')?.manifest, label).toBe(fx.v2.manifestDigest);
  await verifyExport(store, 'app:v2', fx.v2, fx.work);
  expect((await fsck(store)).problems, label).toEqual([]);
}

describe.each([false, true])('the layer writer (writerThread %s)', (writerThread) => {
  it('rebuilds the publisher image bit for bit', async () => {
    const store = await cloneDevice(fx, `writer-${writerThread}`);
    await applyBundle(store, await openBundle(fx.ferry), { trust: fx.trust, writerThread });
    await expectApplied(store, `writerThread ${writerThread}`);
  }, 300_000);

  it('a stored content the layer reuses gone from the store: FERRY_ERR_BASELINE_MISSING, no image', async () => {
    const store = await cloneDevice(fx, `writer-missing-${writerThread}`);
    const table = await loadBaseline(fx.pub, fx.header.baseline);
    const gone = table.map((e) => e.digest).filter((d) => d !== undefined);
    for (const d of gone) await rm(store.contentPath(d!), { force: true });
    await expect(applyBundle(store, await openBundle(fx.ferry), { trust: fx.trust, writerThread })).rejects.toMatchObject({ code: 'FERRY_ERR_BASELINE_MISSING' });
    expect((await store.listRefs()).find((r) => r.ref === 'app:v2')).toBeUndefined();
  }, 300_000);
});
