/**
 * A segmented patch at the size the issue is about (docs/format.md section 5.4): a 34 MiB file
 * whose old version is 33 MiB (together over PATCH_SPAN_MAX, the old one over the 16 MiB reference
 * cap), bundled with the default caps and applied by a child process on a 64 MB heap, which
 * reports its peak RSS; the same file sent as a literal (format v1 matching) is applied the same
 * way as the baseline. The segmented apply may cost at most one window, one segment's output and
 * its frame more than the literal one (the bounds of a single patch), and gives the publisher's
 * image bit for bit. Slow (level 19, the default: at level 9 zstd's long-distance
 * matching misses matches 16 MiB back, so the test would not show the real encoder):
 * FERRY_SLOW_TESTS=1.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PATCH_SPAN_MAX, Store, readOps, payloadRange, openBundle, verifyHeader } from '@ferry/core';
import { createBundle, writeFerryFile } from '@ferry/differ';
import { ROOT, buildPackages, createStore, expected, imageOf, importTags, largeLibrary, newKey, nextLibrary, remove, scratch, trustOf, verifyExport, writeLayout, type TarEntry } from '@ferry/test-support';

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL('./helpers/apply-bounded-child.mjs', import.meta.url));
const MiB = 1024 * 1024;
/** What a segmented body may add to an apply's peak RSS: a 16 MiB window, a 12 MiB segment, its frame and zstd's context. */
const SEGMENTED_EXTRA_MAX = 40e6;

let work: string;

beforeAll(async () => {
  buildPackages();
  work = await scratch('segmented-apply');
});

afterAll(async () => {
  if (work) await remove(work);
});

describe.skipIf(!process.env.FERRY_SLOW_TESTS)('a segmented patch over PATCH_SPAN_MAX', () => {
  it("bundles with the default caps and applies on a 64 MB heap within one patch's memory of the literal apply, bit for bit", async () => {
    const old = largeLibrary('large', 33 * MiB);
    const now = nextLibrary(old, 'large', MiB);
    expect(old.length + now.length).toBeGreaterThan(PATCH_SPAN_MAX);
    const dirs = (): TarEntry[] => [{ path: 'usr/', type: 'directory' }, { path: 'usr/lib/', type: 'directory' }];
    const layout = join(work, 'layout');
    await writeLayout(layout, { v1: await imageOf([[...dirs(), { path: 'usr/lib/libbig.so.72.1', body: old }]], 'big v1'), v2: await imageOf([[...dirs(), { path: 'usr/lib/libbig.so.76.1', body: now }]], 'big v2') });
    const pub = await createStore(join(work, 'pub'));
    await importTags(pub, layout, ['v1', 'v2']);
    const devDir = join(work, 'dev');
    await importTags(await createStore(devDir), layout, ['v1']);
    const literalDir = join(work, 'dev-literal');
    await importTags(await createStore(literalDir), layout, ['v1']);
    const key = newKey();
    const opts = { from: ['app:v1'], to: 'app:v2', channel: 'stable', release: 1, expires: 4_000_000_000, releaseKeys: [key], headerKeys: [key], created: 1_750_000_000 };
    const b = await createBundle(pub, opts);
    const literal = await createBundle(pub, { ...opts, referenceSets: false });
    try {
      const path = join(work, 'big.ferry');
      await writeFerryFile(path, b.signed);
      const h = verifyHeader(b.signed.envelope, { trust: trustOf(key) });
      expect(h.version).toBe(3);
      const kinds: string[] = [];
      const chunks = (await openBundle(path)).chunks(h);
      for (const l of h.layers.filter((x) => x.mode === 'rebuild')) {
        for await (const op of readOps(payloadRange(h, chunks, l.start, l.end), 4 * l.size + MiB)) {
          if (op.op !== 'entry') continue;
          kinds.push(op.body.kind);
          if ('data' in op.body) for await (const _ of op.body.data) { /* drained in order */ }
        }
      }
      expect(kinds).toContain('segmented');
      console.log(`segmented (34 MiB): payload ${b.signed.payloadSize} bytes for a ${now.length}-byte file`);
      expect(b.signed.payloadSize).toBeLessThan(now.length / 4);
      const keyFile = join(work, 'key.pub');
      await writeFile(keyFile, key.publicKey.key.export({ format: 'pem', type: 'spki' }));
      const literalPath = join(work, 'literal.ferry');
      await writeFerryFile(literalPath, literal.signed);
      expect(literal.stats.bodies.literal.bytes).toBe(now.length);
      const apply = async (dir: string, bundle: string): Promise<{ code: string; maxRss: number }> => {
        const { stdout } = await run(process.execPath, ['--max-old-space-size=64', CHILD, dir, bundle, keyFile], { cwd: ROOT });
        return JSON.parse(stdout) as { code: string; maxRss: number };
      };
      const r = await apply(devDir, path);
      const base = await apply(literalDir, literalPath);
      console.log(`segmented (34 MiB): apply peak RSS ${(r.maxRss / 1e6).toFixed(1)} MB, the same file as a literal ${(base.maxRss / 1e6).toFixed(1)} MB`);
      expect([r.code, base.code]).toEqual(['applied', 'applied']);
      expect(r.maxRss).toBeLessThan(base.maxRss + SEGMENTED_EXTRA_MAX);
      await verifyExport(await Store.open(devDir), 'app:v2', await expected(pub, 'app:v2'), work);
    } finally {
      await Promise.all([b.dispose(), literal.dispose()]);
    }
  }, 900_000);
});
