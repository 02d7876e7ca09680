/**
 * Pruning the agent's chunk cache (packages/agent/src/cache-prune.ts, DESIGN.md section 6): a
 * cached header keeps its chunks and partial bytes while it is live (trusted, not expired, its
 * release not installed); a dead header (expired, signed by a key no longer trusted, installed,
 * or not a header at all) is removed with every chunk and partial file no live header names.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pruneCache } from '@ferry/agent';
import { applyBundle, digestHex, openBundle } from '@ferry/core';
import { writeBundleDir } from '@ferry/differ';
import { buildPackages, newKey, remove, trustOf } from '@ferry/test-support';
import { cloneDevice, makeApplyFixture, type ApplyFixture } from './helpers/apply-fixture.js';

let fx: ApplyFixture;
let n = 0;

beforeAll(async () => {
  buildPackages('packages/agent');
  fx = await makeApplyFixture('cache-prune');
}, 120_000);
afterAll(() => remove(fx.work));

/** A cache holding the fixture bundle (header and every chunk), a stray chunk and a stray partial. */
async function filledCache(): Promise<string> {
  const dir = join(fx.work, `cache-${n++}`);
  await writeBundleDir(dir, fx.bundle.signed);
  await writeFile(join(dir, 'chunks', 'f'.repeat(64)), 'stray');
  await mkdir(join(dir, 'partial'), { recursive: true });
  const live = digestHex(fx.header.chunks[0]!);
  await writeFile(join(dir, 'partial', live), 'some bytes');
  await writeFile(join(dir, 'partial', `${'e'.repeat(64)}.journal`), 'orphan journal');
  return dir;
}

const list = async (dir: string, sub: string): Promise<string[]> => (await readdir(join(dir, sub))).sort();

describe('pruneCache', () => {
  it('keeps a live header with its chunks and partial bytes, and drops what no header names', async () => {
    const dir = await filledCache();
    const device = await cloneDevice(fx);
    const r = await pruneCache(dir, device, fx.trust);
    expect(r).toMatchObject({ headers: 0, chunks: 1, partials: 0 });
    expect(await list(dir, 'headers')).toEqual([digestHex(fx.bundle.signed.id)]);
    expect(await list(dir, 'chunks')).toEqual([...new Set(fx.header.chunks.map(digestHex))].sort());
    expect(await list(dir, 'partial')).toEqual([digestHex(fx.header.chunks[0]!)]);
  });

  it.each([
    ['expired', async () => ({ trust: fx.trust, now: fx.expires })],
    ['signed by a key no longer trusted', async () => ({ trust: trustOf(newKey()), now: undefined })],
  ])('drops a header that is %s, with every chunk and partial file', async (_label, args) => {
    const dir = await filledCache();
    const device = await cloneDevice(fx);
    const { trust, now } = await args();
    const r = await pruneCache(dir, device, trust, now);
    expect(r.headers).toBe(1);
    expect(r.chunks).toBe(new Set(fx.header.chunks).size + 1);
    expect(r.partials).toBe(1);
    expect(r.bytes).toBeGreaterThanOrEqual(fx.bundle.signed.payloadSize);
    for (const sub of ['headers', 'chunks', 'partial']) expect(await list(dir, sub), sub).toEqual([]);
  });

  it('drops the header of a release installed on its channel, and a file in headers/ that is not a header', async () => {
    const dir = await filledCache();
    await writeFile(join(dir, 'headers', 'a'.repeat(64)), 'garbage');
    await writeFile(join(dir, 'headers', 'not-a-digest'), 'garbage');
    const device = await cloneDevice(fx);
    expect((await pruneCache(dir, device, fx.trust)).headers).toBe(2);
    await applyBundle(device, await openBundle(fx.ferry), { trust: fx.trust });
    const r = await pruneCache(dir, device, fx.trust);
    expect(r.headers).toBe(1);
    for (const sub of ['headers', 'chunks', 'partial']) expect(await list(dir, sub), sub).toEqual([]);
  });
});
