/**
 * A failed export or fsck closes every file it opened (STYLE.md "I/O": close what you open on
 * every path). The prefetching reassembly reads a skeleton ahead of the bodies it writes out; when
 * a body turns out corrupt, the skeleton file must still be closed. Counted in /proc/self/fd.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store, exportDockerArchive, exportOci, fsck, importImage, openImage } from '../src/index.js';
import { Writable } from 'node:stream';
import { buildImage, buildLayer, digestOf, flipByte, ociLayout, rejectionCode, seededText, writeFiles, type FileSpec } from '@ferry/test-support';

/** More entries than the read-ahead window (64), so the skeleton is still being read when a body fails. */
const files: FileSpec[] = Array.from({ length: 300 }, (_, i) => ({ path: `f/${i}.txt`, body: seededText(`fd-${i}`, 3000 + i) }));
const victim = digestOf(files[3]!.body as Buffer);

let work: string;
let store: Store;

const countFds = (): number => readdirSync('/proc/self/fd').length;

/**
 * Open descriptors once the reads still in flight at a failure (bodies loading ahead) have
 * finished and closed: polls until the count is back to `baseline`, for a bounded number of turns.
 * A leaked descriptor never closes, so the count stays above it.
 */
async function settledFds(baseline: number): Promise<number> {
  let n = countFds();
  for (let i = 0; i < 100 && n > baseline; i++) {
    await sleep(20);
    n = countFds();
  }
  return n;
}

describe.skipIf(!existsSync('/proc/self/fd'))('no file descriptor outlives a failure', () => {
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-fd-'));
    const image = buildImage([await buildLayer(files, 'gzip')], { label: 'fd' });
    await writeFiles(join(work, 'oci'), ociLayout([{ image, tag: 'v1' }]).files);
    store = await Store.open(join(work, 'store'), { create: true });
    await importImage(store, await openImage(join(work, 'oci')), 'app:v1');
    const path = store.contentPath(victim);
    const original = await readFile(path);
    await writeFile(path, flipByte(original, Math.floor(original.length / 2), 0x10));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('a failed OCI export', async () => {
    const before = countFds();
    for (let i = 0; i < 5; i++) expect(await rejectionCode(exportOci(store, 'app:v1', join(work, `out-${i}`)))).toBe('FERRY_ERR_OBJECT_CORRUPT');
    expect(await settledFds(before)).toBe(before);
  });

  it('a failed docker-archive export', async () => {
    const before = countFds();
    const sink = (): Writable => new Writable({ write: (_c, _e, cb) => cb() });
    for (let i = 0; i < 5; i++) expect(await rejectionCode(exportDockerArchive(store, 'app:v1', sink()))).toBe('FERRY_ERR_OBJECT_CORRUPT');
    expect(await settledFds(before)).toBe(before);
  });

  it('a failed fsck', async () => {
    const before = countFds();
    for (let i = 0; i < 5; i++) {
      const report = await fsck(store);
      expect(report.problems).toEqual([expect.objectContaining({ kind: 'content', id: victim })]);
    }
    expect(await settledFds(before)).toBe(before);
  });

  it('a failed fsck and export of a corrupt skeleton', async () => {
    const [layer] = (await store.resolve('app:v1')).layers;
    const path = store.skeletonPath(layer!.diffId);
    const original = await readFile(path);
    await writeFile(path, original.subarray(0, Math.floor(original.length / 2)));
    try {
      const before = countFds();
      for (let i = 0; i < 5; i++) {
        const report = await fsck(store);
        expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'skeleton', id: layer!.diffId }));
        expect(await rejectionCode(exportOci(store, 'app:v1', join(work, `skel-${i}`)))).toBe('FERRY_ERR_ZSTD_CORRUPT'); // the frame is cut
      }
      expect(await settledFds(before)).toBe(before);
    } finally {
      await writeFile(path, original);
    }
  });
});
