/**
 * A delta job's stages (patch-worker.ts `delta`: zstd patch-from, bsdiff, level-19 compression of
 * the bsdiff delta) each hold native memory that is freed only when collected; the worker collects
 * between the stages of a large job, so the job peaks at its largest stage, not at their sum.
 * Counted in a child process (helpers/delta-memory-child.mjs), never timed. Slow (level 19 on a few
 * MiB, twice, and a suffix sort): runs with FERRY_SLOW_TESTS=1, as CI does.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadBaseline } from '@ferry/core';
import { buildPackages, imageOf, newKey, remove, scratch, seededBytes, writeLayout } from '@ferry/test-support';
import { stores, type DifferFixture } from './helpers.js';

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL('./helpers/delta-memory-child.mjs', import.meta.url));
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SLOW = process.env.FERRY_SLOW_TESTS === '1';
const MiB = 1024 * 1024;

const fx: DifferFixture = { work: '', key: newKey(), runs: 0 };

afterAll(async () => {
  if (fx.work) await remove(fx.work);
});

/** A 6 MiB binary body and a new build of it (a few spans rewritten), stored; their digests and sizes. */
async function bodies(): Promise<{ root: string; ref: [string, number]; target: [string, number] }> {
  buildPackages();
  fx.work = await scratch('delta-memory');
  const old = seededBytes('delta-memory/old', 6 * MiB);
  const next = Buffer.from(old);
  for (let i = 0; i < 16; i++) seededBytes(`delta-memory/edit${i}`, 4096).copy(next, i * 384 * 1024 + 1000);
  const layout = join(fx.work, 'layout');
  await writeLayout(layout, { v1: await imageOf([[{ path: 'bin/tool', body: old }]], 'v1'), v2: await imageOf([[{ path: 'bin/tool', body: next }]], 'v2') });
  const store = (await stores(fx, layout, ['v1', 'v2'], [])).pub;
  const body = async (tag: string): Promise<[string, number]> => {
    const image = await store.resolve(`app:${tag}`);
    const e = (await loadBaseline(store, image.layers.map((l) => l.diffId))).find((x) => x.digest !== undefined)!;
    return [e.digest!, e.size];
  };
  return { root: store.root, ref: await body('v1'), target: await body('v2') };
}

describe('delta job memory', () => {
  it.skipIf(!SLOW)('peaks at its largest stage: the patch context and the suffix arrays are collected before the next stage', async () => {
    const b = await bodies();
    const { stdout } = await run(process.execPath, [CHILD, b.root, ...b.ref.map(String), ...b.target.map(String)], { cwd: ROOT });
    const r = JSON.parse(stdout.trim()) as { peak: number; kind: string };
    expect(r.kind).not.toBe('literal');
    // measured 2026-12-03: 259.9 MB before (the patch tables, the suffix arrays and the
    // compression tables all alive at once), 109.0 MB now (the largest stage)
    expect(r.peak).toBeLessThan(160e6);
  }, 600_000);
});
