/**
 * The layer writer reads each stored content the layer reuses with its size bounded before it
 * reads: the file must be a regular file no larger than a zstd frame of the content's size can be
 * (contentFrameMax), and it is read up to its size only. A content grown past that bound, or a
 * FIFO in its place, is FERRY_ERR_OBJECT_CORRUPT at once (for the whole-content reader too, which
 * shares the opener); a good one hashes into the layer.
 * A stashed group member that fits the writer's slab (KEEP_BYTES) is taken from memory by its
 * entry, not read back from its temp file; a larger one is read from the file.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { Store, sha256, type Digest } from '../src/index.js';
import { KEEP_BYTES } from '../src/bundle/apply-keep.js';
import { ContentBatch } from '../src/store/contents.js';
import { contentFrameMax } from '../src/store/content-open.js';
import { openLayerSink } from '../src/bundle/apply-sink.js';
import { writerContextsCreated } from '../src/bundle/apply-writer.js';
import { seededText } from '@ferry/test-support';

let work: string;
let store: Store;
const bodies = [seededText('kept', 300_000), seededText('grown', 40_000), seededText('fifo', 1_000)];
const digests: Digest[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-writer-read-'));
  store = await Store.open(join(work, 'store'), { create: true });
  await mkdir(join(store.root, 'pending'), { recursive: true });
  const batch = new ContentBatch(store);
  for (const b of bodies) digests.push(await batch.put((async function* () { yield b; })(), b.length));
  await batch.flush();
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function readInto(digest: Digest, size: number): Promise<{ code?: string; digest?: Digest }> {
  const out = openLayerSink(store, join(store.root, 'pending'));
  try {
    await out.content(digest, size);
    return { digest: (await out.finish()).digest };
  } catch (err) {
    return { code: (err as { code?: string }).code };
  } finally {
    await out.close();
  }
}

describe('the layer writer reading a stored content', () => {
  it('hashes a good content (larger than its read buffer) into the layer', async () => {
    expect(await readInto(digests[0]!, bodies[0]!.length)).toEqual({ digest: sha256(bodies[0]!) });
  });

  it('refuses a content file grown past a frame of its size, unread: FERRY_ERR_OBJECT_CORRUPT', async () => {
    // a zstd skippable frame after the content's frame decodes to nothing: read, it would pass
    const skip = Buffer.alloc(8 + contentFrameMax(bodies[1]!.length));
    skip.writeUInt32LE(0x184d2a50, 0);
    skip.writeUInt32LE(skip.length - 8, 4);
    appendFileSync(store.contentPath(digests[1]!), skip);
    expect(await readInto(digests[1]!, bodies[1]!.length)).toEqual({ code: 'FERRY_ERR_OBJECT_CORRUPT' });
  });

  it('refuses a FIFO in a content\'s place without waiting for a writer: FERRY_ERR_OBJECT_CORRUPT', async () => {
    const path = store.contentPath(digests[2]!);
    await rm(path);
    expect(spawnSync('mkfifo', [path]).status).toBe(0);
    expect(await readInto(digests[2]!, bodies[2]!.length)).toEqual({ code: 'FERRY_ERR_OBJECT_CORRUPT' });
    // the whole-content reader (delta references, the differ's workers) opens it the same way; in a
    // child with a time limit, since an open that waits for a writer would block this thread
    const dist = new URL('../dist/index.js', import.meta.url).href;
    const script = `const { Store, readContentInto } = await import(${JSON.stringify(dist)});
      const store = await Store.open(${JSON.stringify(store.root)});
      try { readContentInto(store, ${JSON.stringify(digests[2])}, Buffer.alloc(${bodies[2]!.length}), (n) => Buffer.alloc(n)); console.log('read'); }
      catch (err) { console.log(err.code); }`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect([child.signal, child.stdout.trim()], child.stderr).toEqual([null, 'FERRY_ERR_OBJECT_CORRUPT']);
  });
});

describe('stashed members kept in memory', () => {
  it('an entry takes a member that fits the slab from memory (its temp file gone), a larger one from its file', async () => {
    const dir = join(store.root, 'pending');
    const small = seededText('member-small', 30_000);
    const large = seededText('member-large', KEEP_BYTES + 1);
    const out = openLayerSink(store, dir);
    try {
      const ds = await out.stash(small.length, [small]);
      const dl = await out.stash(large.length, [large]);
      // the small member's temp file removed: only the kept copy can give its bytes
      await rm(out.stagedPath(ds)!);
      await out.content(ds, small.length);
      await out.content(dl, large.length);
      const want = createHash('sha256').update(small).update(large).digest('hex');
      expect(await out.finish()).toEqual({ digest: `sha256:${want}`, size: small.length + large.length });
    } finally {
      await out.close();
    }
    const again = openLayerSink(store, dir);
    try {
      const dl = await again.stash(large.length, [large]);
      await rm(again.stagedPath(dl)!);
      // over the slab: not kept, so its entry reads the (removed) file
      await expect(again.content(dl, large.length)).rejects.toMatchObject({ code: 'FERRY_ERR_BASELINE_MISSING' });
    } finally {
      await again.close();
    }
  });

  it('layers written one after the other share one pair of zstd contexts', async () => {
    const created = writerContextsCreated();
    const dir = join(store.root, 'pending');
    for (const seed of ['ctx-a', 'ctx-b', 'ctx-c']) {
      const out = openLayerSink(store, dir);
      try {
        const body = seededText(seed, 200_000);
        await out.content(digests[0]!, bodies[0]!.length);
        const d = await out.body(body.length, [body]);
        await out.flush();
        await out.content(d, body.length);
        const h = createHash('sha256').update(bodies[0]!).update(body).update(body);
        expect((await out.finish()).digest).toBe(`sha256:${h.digest('hex')}`);
      } finally {
        await out.close();
      }
    }
    expect(writerContextsCreated() - created).toBeLessThanOrEqual(1);
  });
});
