import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READ_PIECE, readPieces } from '@ferry/core';
import { seededBytes } from '@ferry/test-support';

const fds = (): number => readdirSync('/proc/self/fd').length;

describe('readPieces', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-pieces-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('yields a file in pieces of one reused buffer and closes it, also when stopped early', async () => {
    const data = seededBytes('pieces', 5 * READ_PIECE + 123);
    const path = join(dir, 'f');
    await writeFile(path, data);
    const before = fds();
    const buffers = new Set<ArrayBufferLike>();
    const copies: Buffer[] = [];
    for await (const p of readPieces(path)) {
      expect(p.length).toBeLessThanOrEqual(READ_PIECE);
      buffers.add(p.buffer);
      copies.push(Buffer.from(p));
    }
    expect(Buffer.compare(Buffer.concat(copies), data)).toBe(0);
    expect(copies.length).toBe(6);
    expect(buffers.size).toBe(1);
    for await (const _ of readPieces(path)) break;
    expect(fds()).toBe(before);
    await expect(readPieces(join(dir, 'missing')).next()).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
