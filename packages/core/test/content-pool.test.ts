/**
 * A content writer thread that dies mid-batch (store/content-pool.ts): the batch's writes fail
 * with a code instead of waiting forever, and the next batch runs on a fresh worker.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededBytes } from '@ferry/test-support';
import { Store, fsck, sha256 } from '../src/index.js';
import { contentPool } from '../src/store/content-pool.js';
import { ContentBatch } from '../src/store/contents.js';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-pool-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

/** Puts `n` distinct bodies; returns the first error a put threw, if any. */
async function putMany(batch: ContentBatch, seed: string, n: number, onPut?: (i: number) => void): Promise<unknown> {
  for (let i = 0; i < n; i++) {
    const body = seededBytes(`${seed}-${i}`, 256 * 1024);
    try {
      await batch.put(once(body), body.length);
    } catch (err) {
      return err;
    }
    onPut?.(i);
  }
  return undefined;
}

describe('content writer threads', () => {
  it('a worker terminated mid-batch fails the batch with FERRY_ERR_INTERNAL; the next batch works', async () => {
    const store = await Store.open(join(work, 'store'), { create: true });
    const batch = new ContentBatch(store);
    const victim = contentPool().threads[0]!;
    const putError = await putMany(batch, 'doomed', 64, (i) => {
      if (i === 8) void victim.terminate();
    });
    // the put that saw the failure, or else the flush, reports it: one code, no hang
    const err = putError ?? (await batch.flush().then(() => undefined, (e: unknown) => e));
    expect(err).toMatchObject({ code: 'FERRY_ERR_INTERNAL' });
    expect(contentPool().threads).not.toContain(victim);

    const next = new ContentBatch(store);
    expect(await putMany(next, 'after', 16)).toBeUndefined();
    await next.flush();
    for (let i = 0; i < 16; i++) expect(await store.hasContent(sha256(seededBytes(`after-${i}`, 256 * 1024)))).toBe(true);
    // what the dead batch left are temp files at most (gc removes them), never a bad content
    expect((await fsck(store)).problems).toEqual([]);
  });
});
