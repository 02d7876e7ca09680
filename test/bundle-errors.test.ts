/**
 * createBundle at its module boundary (DESIGN.md section 8, STYLE.md "Errors"): a disk that fills
 * while the payload is written gives FERRY_ERR_IO (not a plain Error), a temp directory that
 * cannot be made ends the patch workers (the process exits by itself), and an abort stops it with
 * FERRY_ERR_ABORTED; each leaves no temp payload behind. Uses the built packages (the patch
 * workers load dist/patch-worker.js; `npm test` builds first).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store, generateKeyPair, importImage, openImage, parsePrivateKey } from '@ferry/core';
import { createBundle, type BundleOptions } from '@ferry/differ';
import { writeImagePair } from '@ferry/imagegen';

const isRoot = process.getuid?.() === 0;
const CHILD = fileURLToPath(new URL('./helpers/bundle-child.mjs', import.meta.url));

let work: string;
let pub: Store;
const key = parsePrivateKey(generateKeyPair().privatePem);

function opts(more: Partial<BundleOptions> = {}): BundleOptions {
  return { from: ['app:v1'], to: 'app:v2', channel: 'stable', release: 1, expires: 4_000_000_000, releaseKeys: [key], headerKeys: [key], level: 3, ...more };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-bundle-errors-'));
  const layout = join(work, 'oci');
  await writeImagePair(layout, { targetBytes: 6 * 1024 * 1024, tags: ['v1', 'v2'], platform: 'linux/amd64' });
  pub = await Store.open(join(work, 'pub'), { create: true });
  for (const tag of ['v1', 'v2']) await importImage(pub, await openImage(layout, { ref: tag, platform: { os: 'linux', architecture: 'amd64' } }), `app:${tag}`);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('createBundle failures', () => {
  it('a temp directory that cannot be made is FERRY_ERR_IO, and the patch workers end with it', async () => {
    // in a child: if a worker outlived the failure, the child would never exit by itself
    const child = spawn(process.execPath, [CHILD, pub.root, '/nonexistent/ferry-test'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('exit', (c, s) => r([c, s])));
    clearTimeout(timer);
    expect(out.trim()).toBe('FERRY_ERR_IO');
    expect(signal, 'the child did not exit by itself: a patch worker kept it alive').toBeNull();
    expect(code).toBe(0);
  });

  it('an abort stops it with FERRY_ERR_ABORTED and removes its temp payload', async () => {
    const dir = join(work, 'abort-tmp');
    await mkdir(dir);
    const controller = new AbortController();
    let phases = 0;
    const abortAtSecondLayer = (): void => void (++phases === 2 && controller.abort());
    await expect(createBundle(pub, opts({ workDir: dir, signal: controller.signal, onProgress: abortAtSecondLayer }))).rejects.toMatchObject({ code: 'FERRY_ERR_ABORTED' });
    expect(await readdir(dir)).toEqual([]);
    // an already aborted signal: nothing starts
    await expect(createBundle(pub, opts({ workDir: dir, signal: AbortSignal.abort() }))).rejects.toMatchObject({ code: 'FERRY_ERR_ABORTED' });
    expect(await readdir(dir)).toEqual([]);
  });

  describe.skipIf(!isRoot)('on a full disk (a tmpfs mounted by the test, as root)', () => {
    let small: string;
    beforeAll(async () => {
      small = join(work, 'small');
      await mkdir(small);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', small]);
    });
    afterAll(() => {
      execFileSync('umount', [small]);
    });

    it('ENOSPC while the payload is written is FERRY_ERR_IO naming ENOSPC, and the temp payload goes', async () => {
      await expect(createBundle(pub, opts({ workDir: small }))).rejects.toMatchObject({ code: 'FERRY_ERR_IO', details: { errno: 'ENOSPC' } });
      expect(await readdir(small)).toEqual([]);
    });
  });
});
