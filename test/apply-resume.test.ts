/**
 * rebuildLayer and gc across waits and crashes (DESIGN.md section 6: "the store lock is held while
 * writing, never across a network wait; gc keeps the layers of an uncommitted apply; restart after
 * a crash redoes at most the unfinished layer"):
 *   - while a rebuild waits for a chunk, another process takes the store lock, removes the ref of
 *     the baseline image and runs gc; the rebuild then completes with the right diff_id, because
 *     gc kept the baseline, the layers already rebuilt and the contents the unfinished layer wrote;
 *   - gc keeps an uncommitted apply's progress and frees it after abandonApply; commit ends it;
 *   - kill -9 of an apply waiting in its last layer: the rerun rebuilds only that layer.
 */
import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { abandonApply, applyBundle, commitApply, fsck, gc, isFerryError, openBundle, pendingDir, planApply, readProgress, rebuildLayer, writePending, type ApplyPlan, type Store } from '@ferry/core';
import { cloneDevice, contentsOf, fixtureSource, holdingSource, makeApplyFixture, type ApplyFixture } from './helpers/apply-fixture.js';
import { ROOT, expected, remove, verifyExport } from '@ferry/test-support';

const run = promisify(execFile);
const GC_CHILD = fileURLToPath(new URL('./helpers/gc-child.mjs', import.meta.url));
const STEPS_CHILD = fileURLToPath(new URL('./helpers/steps-child.mjs', import.meta.url));
/** Lock released after a chunk has been awaited this long (the default is 200 ms). */
const IDLE_MS = 50;

let fx: ApplyFixture;

beforeAll(async () => {
  // single-file references: with reference sets the pair's largest rebuilt layer is 46 KB of
  // payload (12 chunks) whose first op is decoded only after its last chunk was read (seen by
  // tracing the chunks asked for; the frame's first zstd block needs them all), so no content is
  // written before that chunk arrives; these tests need a layer that has written contents while
  // it waits for a chunk
  fx = await makeApplyFixture('apply-resume', { referenceSets: false });
}, 300_000);

afterAll(async () => {
  await fx?.bundle.dispose();
  if (fx) await remove(fx.work);
});

/** The rebuilt layer with the most chunks, and the last of its chunks. */
function longest(plan: ApplyPlan): { layer: ApplyPlan['rebuild'][number]; hold: number } {
  const layer = [...plan.rebuild].sort((a, b) => b.chunks.length - a.chunks.length)[0]!;
  return { layer, hold: layer.chunks.at(-1)! };
}

/** Waits until the rebuild has recorded its progress and let go of the lock (its progress list exists). */
async function waitForPause(store: Store, plan: ApplyPlan): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    const names = await readdir(pendingDir(store, plan.bundleId)).catch(() => [] as string[]);
    if (names.some((n) => n.startsWith('progress-'))) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the rebuild never paused');
}

/**
 * Runs `node script ...args`; `onLine` sees each line it prints and may kill it (SIGKILL). Resolves
 * when it is gone; a child that exits on its own is a failure.
 */
function runChild(args: string[], onLine: (line: string, kill: () => void) => Promise<void>): Promise<void> {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const lines = createInterface({ input: child.stdout });
  let chain = Promise.resolve();
  lines.on('line', (line) => {
    chain = chain.then(() => onLine(line, () => child.kill('SIGKILL')));
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      void chain.then(() => (signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited with ${code ?? signal}: ${stderr}`))), reject);
    });
  });
}

async function expectApplied(store: Store, label: string): Promise<void> {
  expect((await store.listRefs()).find((r) => r.ref === 'app:v2')?.manifest, label).toBe(fx.v2.manifestDigest);
  await verifyExport(store, 'app:v2', fx.v2, fx.work);
  expect((await fsck(store)).problems, label).toEqual([]);
}

describe('a rebuild waiting for a chunk', () => {
  it('lets another process take the lock and run gc, and completes with the right image', async () => {
    const store = await cloneDevice(fx);
    const plan = await planApply(store, fx.header);
    const { chunks } = await fixtureSource(fx);
    const { layer, hold } = longest(plan);
    const held = holdingSource(chunks, hold);
    // the layers before it are rebuilt normally: gc must keep them (no ref names them)
    const before = plan.rebuild.filter((l) => l.index < layer.index);
    for (const l of before) expect((await rebuildLayer(store, plan, l, chunks)).alreadyPresent).toBe(false);
    const rebuilding = rebuildLayer(store, plan, layer, held.source, { idleMs: IDLE_MS });
    rebuilding.catch(() => {});
    await held.asked;
    // another process: ferry rm app:v1, then gc, while the chunk is still held
    const { stdout } = await run(process.execPath, [GC_CHILD, store.root, 'app:v1'], { cwd: ROOT });
    const { report } = JSON.parse(stdout) as { report: Awaited<ReturnType<typeof gc>> };
    expect(report.kept.map((k) => k.bundle)).toEqual([plan.bundleId]);
    expect(report.kept[0]!.layers).toBe(before.length);
    expect(report.kept[0]!.contents).toBeGreaterThan(0);
    expect(report.kept[0]!.baseline).toBe(fx.header.baseline.length);
    // v1's manifest and config went with its ref; its layers stay for the apply
    expect(report.removed.blobs).toBe(2);
    expect(report.removed.skeletons).toBe(0);
    held.release();
    const r = await rebuilding;
    expect(r.alreadyPresent).toBe(false);
    expect(r.waits).toBeGreaterThanOrEqual(1);
    for (const l of plan.rebuild) await rebuildLayer(store, plan, l, chunks);
    await commitApply(store, plan);
    await expectApplied(store, 'after a gc during the wait');
    // nothing of the pending apply is left
    expect((await gc(store)).kept).toEqual([]);
    await expectApplied(store, 'after gc');
  }, 300_000);
});

describe('gc and an uncommitted apply', () => {
  it('keeps the contents an unfinished layer wrote, and frees them after abandonApply', async () => {
    const store = await cloneDevice(fx);
    const plan = await planApply(store, fx.header);
    const { chunks } = await fixtureSource(fx);
    const { layer, hold } = longest(plan);
    const held = holdingSource(chunks, hold);
    const abort = new AbortController();
    const rebuilding = rebuildLayer(store, plan, layer, held.source, { idleMs: IDLE_MS, signal: abort.signal });
    rebuilding.catch(() => {});
    await held.asked;
    await waitForPause(store, plan);
    abort.abort();
    const err = await rebuilding.catch((e: unknown) => e);
    expect(isFerryError(err, 'FERRY_ERR_ABORTED'), String(err)).toBe(true);
    const listed = await readProgress(pendingDir(store, plan.bundleId));
    const v1 = await contentsOf(store, fx.header.baseline);
    const fresh = [...new Set(listed)].filter((d) => !v1.has(d));
    expect(fresh.length).toBeGreaterThan(0);
    const kept = await gc(store);
    expect(kept.kept.map((k) => [k.bundle, k.contents])).toEqual([[plan.bundleId, new Set(listed).size]]);
    expect(kept.removed.contents).toBe(0);
    for (const d of fresh) expect(await store.hasContent(d), d).toBe(true);
    expect(await abandonApply(store, plan.bundleId)).toBe(true);
    const freed = await gc(store);
    expect(freed.kept).toEqual([]);
    expect(freed.removed.contents).toBe(fresh.length);
    for (const d of fresh) expect(await store.hasContent(d), d).toBe(false);
    expect((await fsck(store)).problems).toEqual([]);
  }, 300_000);

  it('keeps rebuilt layers until the apply commits; the commit ends the record', async () => {
    const store = await cloneDevice(fx);
    const plan = await planApply(store, fx.header);
    const { chunks } = await fixtureSource(fx);
    const first = plan.rebuild[0]!;
    await rebuildLayer(store, plan, first, chunks);
    const r = await gc(store);
    expect(r.kept.map((k) => k.layers)).toEqual([1]);
    expect(await store.hasSkeleton(first.diffId)).toBe(true);
    const result = await applyBundle(store, await openBundle(fx.ferry), { trust: fx.trust });
    expect(result.layers.find((l) => l.diffId === first.diffId)?.alreadyPresent).toBe(true);
    expect(await readdir(pendingDir(store, plan.bundleId)).catch(() => 'gone')).toBe('gone');
    expect((await gc(store)).removed).toEqual({ contents: 0, skeletons: 0, blobs: 0, temps: 0 });
    await expectApplied(store, 'committed');
  }, 300_000);

  it('drops a record whose header expired or whose channel installed a release as high', async () => {
    const store = await cloneDevice(fx);
    const plan = await planApply(store, fx.header);
    const base = { bundle: plan.bundleId, ref: 'app:v2', channel: 'stable', release: 2, started: new Date().toISOString(), baseline: fx.header.baseline, layers: plan.layers.map((l) => l.diffId) };
    await writePending(store, { ...base, expires: Math.floor(Date.now() / 1000) - 1 });
    const expired = await gc(store);
    expect(expired.dropped.map((d) => d.bundle)).toEqual([plan.bundleId]);
    expect(expired.dropped[0]!.reason).toMatch(/expired/);
    expect(await readdir(pendingDir(store, plan.bundleId)).catch(() => 'gone')).toBe('gone');
    await writePending(store, { ...base, expires: fx.expires });
    await store.setChannel('stable', { release: 2, ref: 'app:v2', manifest: fx.v2.manifestDigest, installed: new Date().toISOString() });
    const superseded = await gc(store);
    expect(superseded.dropped[0]?.reason).toMatch(/release 2 installed/);
    expect(superseded.kept).toEqual([]);
  }, 300_000);
});

describe('a record a killed process was creating or removing', () => {
  it('is a leftover under a working name that gc removes, never a record-less pending entry', async () => {
    const store = await cloneDevice(fx);
    const plan = await planApply(store, fx.header);
    // a process that is gone: its pid names the working directories it left
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => dead.on('close', r));
    const root = join(store.root, 'pending');
    const staged = join(root, `.tmp-${dead.pid}-aaaa`);
    const removing = join(root, `.tmp-${dead.pid}-bbbb`);
    await mkdir(staged, { recursive: true });
    await writeFile(join(staged, 'apply.json'), '{"bundle":');
    await mkdir(removing, { recursive: true });
    await writeFile(join(removing, 'progress-0123456789abcdef-1-00'), Buffer.alloc(32));
    const base = { bundle: plan.bundleId, ref: 'app:v2', channel: 'stable', release: 2, started: new Date().toISOString(), baseline: fx.header.baseline, layers: plan.layers.map((l) => l.diffId), expires: fx.expires };
    await writePending(store, base);
    expect((await readdir(root)).filter((n) => !n.startsWith('.tmp-'))).toEqual([plan.bundleId.slice(7)]);
    const report = await fsck(store);
    expect(report.problems).toEqual([]);
    expect(report.leftovers.sort()).toEqual([staged, removing].sort());
    expect(report.pending.map((p) => p.bundle)).toEqual([plan.bundleId]);
    const r = await gc(store);
    expect(r.removed.temps).toBe(2);
    expect(r.kept.map((k) => k.bundle)).toEqual([plan.bundleId]);
    expect(await readdir(root)).toEqual([plan.bundleId.slice(7)]);
    await abandonApply(store, plan.bundleId);
    expect(await readdir(root)).toEqual([]);
  }, 300_000);
});

describe('kill -9 of an apply waiting in a layer, then a rerun', () => {
  it('rebuilds only the unfinished layer and those after it, and gives the right image', async () => {
    for (const moment of ['as the chunk is asked for (lock held)', 'after the lock was released for the wait']) {
      const store = await cloneDevice(fx, 'killed');
      const plan = await planApply(store, fx.header);
      const { layer, hold } = longest(plan);
      const done: number[] = [];
      await runChild([STEPS_CHILD, store.root, fx.ferry, fx.keyFile, String(hold), String(moment.startsWith('after') ? IDLE_MS : 600_000)], async (line, kill) => {
        const m = /^layer (\d+)$/.exec(line);
        if (m) done.push(Number(m[1]));
        if (line !== 'holding') return;
        if (moment.startsWith('after')) await waitForPause(store, plan);
        kill();
      });
      expect(done, moment).toEqual(plan.rebuild.filter((l) => l.index < layer.index).map((l) => l.index));
      expect((await fsck(store)).problems, moment).toEqual([]);
      // gc before the rerun keeps what the dead process finished
      const kept = await gc(store);
      expect(kept.kept.map((k) => k.layers), moment).toEqual([done.length]);
      const r = await applyBundle(store, await openBundle(fx.ferry), { trust: fx.trust });
      const redone = r.layers.filter((l) => l.mode === 'rebuild' && !l.alreadyPresent).map((l) => l.diffId);
      expect(redone, moment).toEqual(plan.rebuild.filter((l) => l.index >= layer.index).map((l) => l.diffId));
      await expectApplied(store, moment);
      expect(await expected(store, 'app:v2')).toEqual(fx.v2);
    }
  }, 300_000);
});
