/**
 * The patch pool's memory budget (patch-pool.ts), counted by the pool itself (no timing): jobs
 * whose estimates fit the budget run side by side, one over the rest of the budget waits until it
 * can run alone, and a long-path patch (reference over PATCH_ONE_SHOT_REFERENCE) is estimated
 * above the default budget, so it never runs beside another job; nor do two of the largest
 * one-shot patches.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PATCH_ONE_SHOT_REFERENCE, loadBaseline, type Store } from '@ferry/core';
import { PATCH_POOL_BUDGET, PatchPool, patchMemory } from '@ferry/differ';
import { buildPackages, imageOf, newKey, remove, scratch, seededBytes, writeLayout } from '@ferry/test-support';
import { stores, type DifferFixture } from './helpers.js';

const fx: DifferFixture = { work: '', key: newKey(), runs: 0 };
const MB = 1e6;
let store: Store;
let bodies: { digest: `sha256:${string}`; size: number }[];

beforeAll(async () => {
  buildPackages();
  fx.work = await scratch('patch-pool');
  const layout = join(fx.work, 'layout');
  const files = Array.from({ length: 8 }, (_, i) => ({ path: `f${i}`, body: seededBytes(`pool/${i}`, 4096 + i) }));
  await writeLayout(layout, { v1: await imageOf([files], 'pool v1') });
  store = (await stores(fx, layout, ['v1'], [])).pub;
  const image = await store.resolve('app:v1');
  const entries = await loadBaseline(store, image.layers.map((l) => l.diffId));
  bodies = entries.filter((e) => e.digest !== undefined).map((e) => ({ digest: e.digest!, size: e.size }));
  expect(bodies).toHaveLength(8);
});

afterAll(async () => {
  if (fx.work) await remove(fx.work);
});

/** Runs one sketch job per cost on a two-worker pool with `budget`; returns what the pool counted. */
async function runCosts(costs: number[], budget?: number) {
  const pool = new PatchPool(store.root, 19, { size: 2, memoryBudget: budget });
  try {
    await Promise.all(costs.map((cost, i) => pool.run({ kind: 'sketch', body: bodies[i % bodies.length]! }, cost)));
    return pool.stats();
  } finally {
    await pool.close();
  }
}

describe('PatchPool memory budget', () => {
  it('runs jobs that fit the budget side by side', async () => {
    const s = await runCosts(Array(8).fill(10 * MB), 100 * MB);
    expect(s.started).toBe(8);
    expect(s.peakRunning).toBe(2);
    expect(s.peakInUse).toBe(20 * MB);
  });

  it('never lets the running estimates pass the budget, and runs a job over it alone', async () => {
    const s = await runCosts([60 * MB, 60 * MB, 30 * MB, 150 * MB, 10 * MB, 50 * MB, 50 * MB, 10 * MB], 100 * MB);
    expect(s.started).toBe(8);
    // the 150 MB job ran by itself: the largest sum is its own estimate, never 150 plus another
    expect(s.peakInUse).toBe(150 * MB);
    const fit = await runCosts([60 * MB, 60 * MB, 30 * MB, 50 * MB, 50 * MB], 100 * MB);
    expect(fit.peakInUse).toBeLessThanOrEqual(100 * MB);
  });

  it('estimates a long-path patch over the default budget, so it runs alone', async () => {
    const long = patchMemory(PATCH_ONE_SHOT_REFERENCE + 1, 1);
    expect(long).toBeGreaterThan(PATCH_POOL_BUDGET);
    const s = await runCosts([long, 20 * MB, long, 5 * MB]);
    expect(s.peakInUse).toBe(long);
  });

  it('runs two of the largest one-shot patches one after the other in a default pool, a small job beside either', async () => {
    // a reference of PATCH_ONE_SHOT_REFERENCE and a 4 MB target: ~103 MB each (the old 256 MB
    // default ran two side by side, dep-bump's peak)
    const big = patchMemory(PATCH_ONE_SHOT_REFERENCE, 4 * MB);
    expect(2 * big).toBeGreaterThan(PATCH_POOL_BUDGET);
    const s = await runCosts([big, big, 5 * MB, big]);
    expect(s.started).toBe(4);
    expect(s.peakInUse).toBe(big + 5 * MB);
    expect(s.peakRunning).toBe(2);
  });
});
