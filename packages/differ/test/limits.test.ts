/**
 * The caps a bundle is made with, which bound the applier's memory (core's bundle/limits.ts): the
 * payload frame's window (2^23 by default, at most 2^24, what every applier accepts) and the
 * reference cap (16 MiB). Checked on the bytes of the frames a bundle holds, not on options.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PATCH_REFERENCE_MAX, PAYLOAD_WINDOW_LOG_DEFAULT, PAYLOAD_WINDOW_LOG_MAX, verifyHeader } from '@ferry/core';
import { bundleLimits, createBundle } from '@ferry/differ';
import { buildPackages, errorCode, imageOf, newKey, remove, scratch, seededBytes, trustOf, writeLayout, zstdFrameWindow } from '@ferry/test-support';
import { bundleOptions, roundTrip, stores, type DifferFixture } from './helpers.js';

const fx: DifferFixture = { work: '', key: newKey(), runs: 0 };
const MiB = 1024 * 1024;

beforeAll(async () => {
  buildPackages();
  fx.work = await scratch('limits');
});

afterAll(async () => {
  if (fx.work) await remove(fx.work);
});

describe('bundleLimits', () => {
  it('defaults to a 16 MiB reference cap and a 2^23 payload window', () => {
    expect(PAYLOAD_WINDOW_LOG_DEFAULT).toBe(23);
    expect(bundleLimits({})).toEqual({ maxPatchReference: 16 * MiB, payloadWindowLog: 23 });
    expect(bundleLimits({ maxPatchReference: MiB, payloadWindowLog: PAYLOAD_WINDOW_LOG_MAX })).toEqual({ maxPatchReference: MiB, payloadWindowLog: 24 });
  });

  it('refuses caps an applier would not accept: FERRY_ERR_USAGE', () => {
    for (const bad of [{ payloadWindowLog: 25 }, { payloadWindowLog: 9 }, { payloadWindowLog: 23.5 }, { maxPatchReference: 0 }, { maxPatchReference: PATCH_REFERENCE_MAX + 1 }]) {
      expect(errorCode(() => bundleLimits(bad))).toBe('FERRY_ERR_USAGE');
    }
  });
});

describe('payload frame window', () => {
  let pub: Awaited<ReturnType<typeof stores>>['pub'];
  let dev: Awaited<ReturnType<typeof stores>>['dev'];

  beforeAll(async () => {
    // one layer over 8 MiB, so its frame's window is the cap rather than the frame's own size
    const layout = join(fx.work, 'big');
    const big = [{ path: 'data/', type: 'directory' as const }, { path: 'data/blob.bin', body: seededBytes('limits/blob', 9 * MiB) }];
    await writeLayout(layout, { v2: await imageOf([big], 'limits v2') });
    ({ pub, dev } = await stores(fx, layout, ['v2'], []));
  });

  /** The window the first rebuilt layer's frame declares. */
  async function frameWindow(b: Awaited<ReturnType<typeof createBundle>>): Promise<number> {
    const h = verifyHeader(b.signed.envelope, { trust: trustOf(fx.key) });
    const l = h.layers.find((x) => x.mode === 'rebuild')!;
    expect(l.size).toBeGreaterThan(9 * MiB);
    return zstdFrameWindow((await readFile(b.signed.payloadFile)).subarray(l.start, l.end));
  }

  it('a frame over 8 MiB is written with a 2^23 window by default, and the bundle applies', async () => {
    const b = await createBundle(pub, bundleOptions(fx, [], 'app:v2', { level: 1 }));
    try {
      expect(await frameWindow(b)).toBe(2 ** 23);
      await roundTrip(fx, pub, dev, b);
    } finally {
      await b.dispose();
    }
  }, 120_000);

  it('payloadWindowLog 24 writes the same frame with a window of its whole content (under 2^24)', async () => {
    const b = await createBundle(pub, bundleOptions(fx, [], 'app:v2', { level: 1, payloadWindowLog: 24 }));
    try {
      // single-segment: the window is the content size the frame declares, over 2^23
      const w = await frameWindow(b);
      expect(w).toBeGreaterThan(2 ** 23);
      expect(w).toBeLessThan(2 ** 24);
    } finally {
      await b.dispose();
    }
  }, 120_000);

  it('payloadWindowLog over what appliers accept: FERRY_ERR_USAGE before any work', async () => {
    const err = await createBundle(pub, bundleOptions(fx, [], 'app:v2', { payloadWindowLog: 25 })).then(() => undefined, (e: unknown) => e as { code?: string });
    expect(err?.code).toBe('FERRY_ERR_USAGE');
  });
});
