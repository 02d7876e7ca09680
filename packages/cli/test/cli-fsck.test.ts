/** `ferry fsck` on a clean store, then on one with a flipped byte in a content file. */
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureBuilt, ferry, ferryJson, toolsOrSkip } from '@ferry/test-support';
import { FIXTURE_TOOLS, makeFixtures, type Fixtures } from './helpers/images.js';

/** The fixtures need umoci and skopeo; without them every test here is skipped (one line per tool). */
const hasTools = toolsOrSkip(...FIXTURE_TOOLS) !== undefined;

let work: string;
let fx: Fixtures;
let store: string;

beforeAll(async () => {
  if (!hasTools) return;
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'ferry-cli-fsck-'));
  fx = await makeFixtures(work);
  store = join(work, 'store');
  const r = await ferry(['import', `${fx.layout}:v2`, '--ref', 'app:v2'], { store });
  expect(r.code, r.stderr).toBe(0);
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** The largest content file of the store (the 200 kB body). */
async function largestContent(): Promise<{ path: string; hex: string }> {
  let best = { path: '', hex: '', size: -1 };
  for (const fan of await readdir(join(store, 'contents'))) {
    for (const f of await readdir(join(store, 'contents', fan))) {
      const path = join(store, 'contents', fan, f);
      const { size } = await stat(path);
      if (size > best.size) best = { path, hex: f, size };
    }
  }
  return best;
}

it.skipIf(!hasTools)('finds nothing wrong in a fresh store', async () => {
  const r = await ferry(['fsck'], { store });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/^checked 5 contents, 2 skeletons, 2 blobs, 1 ref: no problems$/m);
});

it.skipIf(!hasTools)('names the damaged content and exits 4 after one flipped byte', async () => {
  const victim = await largestContent();
  const bytes = await readFile(victim.path);
  bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
  await writeFile(victim.path, bytes);

  const r = await ferry(['fsck'], { store });
  expect(r.code).toBe(4);
  expect(r.stdout).toContain('1 problem');
  expect(r.stdout).toContain(`content sha256:${victim.hex} (${victim.path})`);

  const { run, json } = await ferryJson<{ ok: boolean; problems: { kind: string; id: string; path: string; problem: string }[] }>(['fsck'], { store });
  expect(run.code).toBe(4);
  expect(json.ok).toBe(false);
  expect(json.problems).toEqual([expect.objectContaining({ kind: 'content', id: `sha256:${victim.hex}`, path: victim.path })]);
  expect(json.problems[0]!.problem).toMatch(/^FERRY_ERR_OBJECT_CORRUPT/);
});

it.skipIf(!hasTools)('refuses to export the damaged image (exit 4) and leaves no file behind', async () => {
  const out = join(work, 'broken.tar');
  const r = await ferry(['export', 'app:v2', '--format', 'docker-archive', '--out', out], { store });
  expect(r.code).toBe(4);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/^ferry: error FERRY_ERR_(DIGEST_MISMATCH|OBJECT_CORRUPT): /);
  expect((await readdir(work)).filter((f) => f.startsWith('.tmp-') || f === 'broken.tar')).toEqual([]);
});
