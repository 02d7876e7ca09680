/**
 * The batched content reader of exports (store/content-reader.ts): many contents read by a worker
 * in one job come back byte for byte, and a content that is missing or damaged fails with its own
 * code and digest while the others of its batch still arrive; a file that cannot hold the content's
 * frame (a FIFO, one too large) is refused before it is read.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejectionCode, seededBytes } from '@ferry/test-support';
import { Store, sha256, zstdCompress, type Digest } from '../src/index.js';
import { ContentBatch } from '../src/store/contents.js';
import { ContentReader } from '../src/store/content-reader.js';

let work: string;
let store: Store;
const bodies = Array.from({ length: 300 }, (_, i) => seededBytes(`reader-${i}`, 100 + i * 37));
const digests: Digest[] = bodies.map((b) => sha256(b));

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-reader-'));
  store = await Store.open(join(work, 'store'), { create: true });
  const batch = new ContentBatch(store);
  for (const b of bodies) await batch.put((async function* () { yield b; })(), b.length);
  await batch.flush();
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Replaces content `i` for the duration of `fn`. */
async function withContent(i: number, bytes: Buffer | undefined, fn: () => Promise<void>): Promise<void> {
  const path = store.contentPath(digests[i]!);
  const original = await readFile(path);
  if (bytes) await writeFile(path, bytes);
  else await rm(path);
  try {
    await fn();
  } finally {
    await writeFile(path, original);
  }
}

describe('ContentReader', () => {
  it('reads a batch of contents byte for byte', async () => {
    const reader = new ContentReader(store);
    const got = await Promise.all(bodies.map((b, i) => reader.load(digests[i]!, b.length)));
    for (const [i, b] of got.entries()) expect(Buffer.from(b).equals(bodies[i]!)).toBe(true);
  });

  it('a missing content is FERRY_ERR_OBJECT_MISSING; the rest of its batch arrives', async () => {
    await withContent(5, undefined, async () => {
      const reader = new ContentReader(store);
      const loads = bodies.map((b, i) => reader.load(digests[i]!, b.length));
      expect(await rejectionCode(loads[5]!)).toBe('FERRY_ERR_OBJECT_MISSING');
      for (const i of [0, 4, 6, 299]) expect(Buffer.from(await loads[i]!).equals(bodies[i]!)).toBe(true);
    });
  });

  it('a damaged frame is FERRY_ERR_OBJECT_CORRUPT naming the content', async () => {
    const z = zstdCompress(bodies[9]!);
    z[z.length - 6]! ^= 0xff;
    await withContent(9, z, async () => {
      const reader = new ContentReader(store);
      const loads = bodies.map((b, i) => reader.load(digests[i]!, b.length));
      const err = await loads[9]!.catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'FERRY_ERR_OBJECT_CORRUPT', details: { digest: digests[9] } });
      expect(Buffer.from(await loads[10]!).equals(bodies[10]!)).toBe(true);
    });
  });

  it('with verify, a content whose bytes are another body is FERRY_ERR_OBJECT_CORRUPT; without, it is returned as stored', async () => {
    const other = seededBytes('other', bodies[3]!.length);
    await withContent(3, zstdCompress(other), async () => {
      expect(await rejectionCode(new ContentReader(store, { verify: true }).load(digests[3]!, other.length))).toBe('FERRY_ERR_OBJECT_CORRUPT');
      expect(Buffer.from(await new ContentReader(store).load(digests[3]!, other.length)).equals(other)).toBe(true);
    });
  });

  it('a FIFO or a file larger than a frame of its size in a content\'s place is FERRY_ERR_OBJECT_CORRUPT, unread and without waiting', async () => {
    const path = store.contentPath(digests[11]!);
    const original = await readFile(path);
    try {
      await writeFile(path, Buffer.concat([original, Buffer.alloc(bodies[11]!.length + 2048)]));
      expect(await rejectionCode(new ContentReader(store).load(digests[11]!, bodies[11]!.length))).toBe('FERRY_ERR_OBJECT_CORRUPT');
      await rm(path);
      expect(spawnSync('mkfifo', [path]).status).toBe(0);
      const reader = new ContentReader(store);
      const loads = [11, 12].map((i) => reader.load(digests[i]!, bodies[i]!.length));
      expect(await rejectionCode(loads[0]!)).toBe('FERRY_ERR_OBJECT_CORRUPT');
      expect(Buffer.from(await loads[1]!).equals(bodies[12]!)).toBe(true);
    } finally {
      await rm(path, { force: true });
      await writeFile(path, original);
    }
  });
});
