/**
 * Full disks (STYLE.md: bad input leaves state as it was): a store on a tiny tmpfs runs out of
 * space during an import and during an apply; each fails with a stable code, and the store keeps
 * its refs, passes fsck, and works again once there is room.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store, applyBundle, fsck, gc, generateKeyPair, importImage, isFerryError, openBundle, openImage, parsePrivateKey, parsePublicKey, rolePolicy } from '@ferry/core';
import { createBundle, writeFerryFile } from '@ferry/differ';
import { writeImagePair } from '@ferry/imagegen';
import { toolsOrSkip, treeChanges, treeSnapshot } from '@ferry/test-support';

const isRoot = process.getuid?.() === 0;
const tools = toolsOrSkip('mount', 'umount', 'fallocate');

/** Runs a tool quietly: fallocate's "No space left on device" is the expected outcome, not noise for the log. */
function quiet(tool: string, args: string[]): void {
  execFileSync(tool, args, { stdio: 'pipe' });
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return isFerryError(err) ? err.code : `not a FerryError: ${String(err)}`;
  }
  return 'no error';
}

describe.skipIf(!isRoot || !tools)('full disk (root: mounts a tmpfs)', () => {
  const { mount, umount, fallocate } = tools ?? { mount: '', umount: '', fallocate: '' };
  let work: string;
  let small: string;
  let layout: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-full-'));
    layout = join(work, 'oci');
    await writeImagePair(layout, { tags: ['v1', 'v2'], targetBytes: 8 * 1024 * 1024, layerCompression: 'none' });
    small = join(work, 'small');
    await mkdir(small);
    quiet(mount, ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', small]);
  });

  afterAll(async () => {
    try {
      quiet(umount, [small]);
    } catch {
      // not mounted
    }
    await rm(work, { recursive: true, force: true });
  });

  it('an import that fills the disk fails with FERRY_ERR_IO and leaves the store as it was', async () => {
    const store = await Store.open(join(small, 'store'), { create: true });
    const code = await codeOf(importImage(store, await openImage(layout, { ref: 'v1' }), 'app:v1'));
    expect(code).toBe('FERRY_ERR_IO');
    expect(await store.listRefs()).toEqual([]);
    const report = await fsck(store);
    expect(report.problems).toEqual([]);
    // gc frees the partial contents; the lock was released, so it runs
    await gc(store);
  });

  it('an apply with too little room is refused before it writes (FERRY_ERR_DISK_FULL)', async () => {
    const pub = await Store.open(join(work, 'pub'), { create: true });
    await importImage(pub, await openImage(layout, { ref: 'v1' }), 'app:v1');
    await importImage(pub, await openImage(layout, { ref: 'v2' }), 'app:v2');
    const key = parsePrivateKey(generateKeyPair().privatePem);
    const b = await createBundle(pub, { from: ['app:v1'], to: 'app:v2', channel: 'c', release: 1, expires: Math.floor(Date.now() / 1000) + 600, releaseKeys: [key], headerKeys: [key] });
    const file = join(work, 'b.ferry');
    await writeFerryFile(file, b.signed);
    await b.dispose();
    // a device store on a disk that holds v1 but has no room left for the update
    quiet(umount, [small]);
    quiet(mount, ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', small]);
    const dev = await Store.open(join(small, 'dev'), { create: true });
    await importImage(dev, await openImage(layout, { ref: 'v1' }), 'app:v1');
    const filler = join(small, 'filler');
    try {
      quiet(fallocate, ['-l', '1m', filler]);
      for (let i = 0; i < 64; i++) quiet(fallocate, ['-o', String((i + 1) * 1024 * 1024), '-l', '1m', filler]);
    } catch {
      // the disk is full now: that is the point
    }
    const trust = { release: rolePolicy([key.publicKey]), header: rolePolicy([parsePublicKey(key.publicKey.key.export({ format: 'pem', type: 'spki' }))]) };
    const before = await dev.listRefs();
    const tree = await treeSnapshot(dev.root);
    const code = await codeOf(applyBundle(dev, await openBundle(file), { trust }));
    // the room check refuses before the applier writes anything: not an ENOSPC met half-way
    expect(code).toBe('FERRY_ERR_DISK_FULL');
    expect(treeChanges(tree, await treeSnapshot(dev.root))).toEqual({ added: [], removed: [], changed: [] });
    expect(await dev.listRefs()).toEqual(before);
    expect(await dev.getChannel('c')).toBeUndefined();
    expect((await fsck(dev)).problems).toEqual([]);
    // room again: the same bundle applies
    await rm(filler, { force: true });
    const r = await applyBundle(dev, await openBundle(file), { trust });
    expect(r.manifestDigest).toBe((await pub.resolve('app:v2')).manifestDigest);
  });
});
