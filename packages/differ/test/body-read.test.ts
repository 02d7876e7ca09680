/**
 * readBodyInto and readBodyRange (body-read.ts): the patch workers' reads of stored contents. Real store,
 * real files: a body decodes into the caller's buffer exactly; missing, damaged, oversized,
 * wrong-size and wrong-digest contents are refused with one code each.
 */
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store, sha256, zstdCompress } from '@ferry/core';
import { rejectionCode as code } from '@ferry/test-support';
import { readBodyInto, readBodyRange } from '../src/body-read.js';
import { prose } from './helpers.js';

let root: string;
let store: Store;

/** Writes `body` as the store writes a content: zstd at the store's level, named by digest. */
async function put(body: Buffer, stored: Uint8Array = zstdCompress(body)): Promise<{ digest: ReturnType<typeof sha256>; size: number }> {
  const digest = sha256(body);
  const path = store.contentPath(digest);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, stored);
  return { digest, size: body.length };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ferry-body-read-'));
  store = await Store.open(join(root, 'store'), { create: true });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('readBodyInto', () => {
  it('decodes a body into the given buffer, in both slots, small and over the kept buffer size', async () => {
    for (const size of [0, 1000, 3 * 1024 * 1024]) {
      const body = prose(`body-${size}`, size);
      const ref = await put(body);
      for (const slot of [0, 1] as const) {
        const out = Buffer.alloc(size + 8, 0xaa);
        await readBodyInto(store, ref, out.subarray(0, size), slot);
        expect(out.subarray(0, size).equals(body)).toBe(true);
        expect(out.subarray(size).every((b) => b === 0xaa)).toBe(true);
      }
    }
  });

  it('refuses a missing content with FERRY_ERR_OBJECT_MISSING', async () => {
    const body = prose('never stored', 500);
    expect(await code(readBodyInto(store, { digest: sha256(body), size: body.length }, Buffer.alloc(body.length), 0))).toBe('FERRY_ERR_OBJECT_MISSING');
  });

  it('refuses a damaged, truncated, oversized, wrong-size or wrong-digest content with FERRY_ERR_OBJECT_CORRUPT', async () => {
    const body = prose('damaged', 200_000);
    const ref = await put(body);
    const path = store.contentPath(ref.digest);
    const good = zstdCompress(body);
    // garbage where a frame should be
    await writeFile(path, Buffer.from('not a zstd frame at all'));
    expect(await code(readBodyInto(store, ref, Buffer.alloc(body.length), 0))).toBe('FERRY_ERR_OBJECT_CORRUPT');
    // truncated frame
    await writeFile(path, good);
    await truncate(path, good.length - 10);
    expect(await code(readBodyInto(store, ref, Buffer.alloc(body.length), 0))).toBe('FERRY_ERR_OBJECT_CORRUPT');
    // a file larger than any frame of the body's size could be: refused before it is read
    await writeFile(path, Buffer.concat([good, Buffer.alloc(body.length)]));
    expect(await code(readBodyInto(store, ref, Buffer.alloc(body.length), 0))).toBe('FERRY_ERR_OBJECT_CORRUPT');
    // a frame of another body (wrong size, then same size but another digest)
    await writeFile(path, zstdCompress(body.subarray(1)));
    expect(await code(readBodyInto(store, ref, Buffer.alloc(body.length), 0))).toBe('FERRY_ERR_OBJECT_CORRUPT');
    const other = Buffer.from(body);
    other[100] ^= 1;
    await writeFile(path, zstdCompress(other));
    expect(await code(readBodyInto(store, ref, Buffer.alloc(body.length), 0))).toBe('FERRY_ERR_OBJECT_CORRUPT');
    // unverified, the same bytes are returned as they are (the sketch's read)
    const out = Buffer.alloc(body.length);
    await readBodyInto(store, ref, out, 0, false);
    expect(out.equals(other)).toBe(true);
  });

  it('refuses a directory where the content file should be', async () => {
    const body = prose('a directory', 300);
    const digest = sha256(body);
    await mkdir(store.contentPath(digest), { recursive: true });
    expect(await code(readBodyInto(store, { digest, size: body.length }, Buffer.alloc(body.length), 1))).toBe('FERRY_ERR_OBJECT_CORRUPT');
  });
});

describe('readBodyRange', () => {
  it('copies exactly the asked bytes of a body, at its start, middle and end, and leaves the rest of the buffer alone', async () => {
    const body = prose('ranged', 3 * 1024 * 1024);
    const ref = await put(body);
    for (const [from, n] of [[0, 1000], [1_234_567, 700_000], [body.length - 5000, 5000], [0, body.length]] as const) {
      const out = Buffer.alloc(n + 8, 0xaa);
      await readBodyRange(store, ref, from, out.subarray(0, n), 1);
      expect(out.subarray(0, n).equals(body.subarray(from, from + n))).toBe(true);
      expect(out.subarray(n).every((b) => b === 0xaa)).toBe(true);
    }
  });

  it('refuses a range outside the body, and a missing or damaged body as readBodyInto does', async () => {
    const body = prose('ranged-bad', 100_000);
    const ref = await put(body);
    await expect(readBodyRange(store, ref, body.length - 10, Buffer.alloc(11), 0)).rejects.toThrow(RangeError);
    await expect(readBodyRange(store, ref, -1, Buffer.alloc(1), 0)).rejects.toThrow(RangeError);
    expect(await code(readBodyRange(store, { digest: sha256(prose('absent', 10)), size: 10 }, 0, Buffer.alloc(10), 0))).toBe('FERRY_ERR_OBJECT_MISSING');
    await writeFile(store.contentPath(ref.digest), zstdCompress(body.subarray(1)));
    expect(await code(readBodyRange(store, ref, 0, Buffer.alloc(10), 0))).toBe('FERRY_ERR_OBJECT_CORRUPT');
  });
});
