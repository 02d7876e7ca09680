/**
 * The partial-chunk journal: its durable length is the resume offset; bytes past it are cut off;
 * a missing, short, garbage or special journal, and partial bytes that do not match it, restart
 * the chunk (reported, never trusted, never a crash).
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { digestHex, sha256 } from '@ferry/core';
import { scratchDir } from '@ferry/test-support';
import { PartialChunk, type RestartNote } from '../src/index.js';

const bytes = randomBytes(10_000);
const digest = sha256(bytes);
const hex = digestHex(digest);
let work: { dir: string; remove(): Promise<void> };
let notes: RestartNote[];

beforeEach(async () => {
  work = await scratchDir('partial');
  notes = [];
});
afterEach(() => work.remove());

const openPartial = (): Promise<PartialChunk> => PartialChunk.open(work.dir, digest, bytes.length, (n) => notes.push(n));
const journal = (): string => join(work.dir, `${hex}.journal`);
const data = (): string => join(work.dir, hex);

/** A partial chunk holding the first `n` bytes, checkpointed, closed. */
async function held(n: number): Promise<void> {
  const p = await openPartial();
  await p.append(bytes.subarray(0, n));
  await p.close();
}

describe('PartialChunk', () => {
  it('resumes at its durable length with the bytes it held', async () => {
    await held(4000);
    const p = await openPartial();
    expect(p.offset).toBe(4000);
    await p.append(bytes.subarray(4000));
    expect(p.digestHeld()).toBe(digest);
    await mkdir(join(work.dir, 'chunks'));
    await p.commit(join(work.dir, 'chunks', hex), join(work.dir, 'chunks'));
    expect(await readFile(join(work.dir, 'chunks', hex))).toEqual(bytes);
    await expect(stat(journal())).rejects.toThrow();
    expect(notes).toEqual([]);
  });

  it('cuts off bytes written after the last checkpoint (a kill between checkpoints)', async () => {
    await held(3000);
    await writeFile(data(), bytes.subarray(0, 5000)); // 2000 more bytes reached the file, never journaled
    const p = await openPartial();
    expect(p.offset).toBe(3000);
    expect((await stat(data())).size).toBe(3000);
    await p.close();
    expect(notes).toEqual([]);
  });

  const damage: [string, () => Promise<void>, string][] = [
    ['a truncated journal', () => truncate(journal(), 20), 'journal 20 bytes, not 48'],
    ['an empty journal', () => truncate(journal(), 0), 'journal 0 bytes, not 48'],
    ['a garbage journal', () => writeFile(journal(), randomBytes(48)), 'garbage journal'],
    ['a journal claiming more than the chunk', async () => {
      const j = await readFile(journal());
      j.writeBigUInt64BE(BigInt(bytes.length + 1), 8);
      await writeFile(journal(), j);
    }, 'garbage journal'],
    ['a journal that is a FIFO', async () => {
      await rm(journal());
      execFileSync('mkfifo', [journal()]);
    }, 'journal not a regular file'],
    ['no journal', () => rm(journal()), 'partial bytes without a journal'],
    ['no partial bytes', () => rm(data()), 'journal without partial bytes'],
    ['partial bytes shorter than the journal', () => truncate(data(), 1000), 'partial file shorter than its journal'],
    ['a damaged byte in the partial bytes', async () => {
      const d = await readFile(data());
      d[100] = d[100]! ^ 0x40;
      await writeFile(data(), d);
    }, 'partial bytes do not match their journal'],
  ];

  for (const [what, harm, reason] of damage) {
    it(`restarts the chunk on ${what}`, async () => {
      await held(4000);
      await harm();
      const p = await openPartial();
      expect(p.offset).toBe(0);
      expect(notes.map((n) => n.reason)).toEqual([reason]);
      await p.append(bytes);
      expect(p.digestHeld()).toBe(digest);
      await p.close();
      const again = await openPartial();
      expect(again.offset).toBe(bytes.length);
      await again.discard();
    });
  }

  it('drops the bytes of a refused answer and keeps the rest', async () => {
    const p = await openPartial();
    await p.append(bytes.subarray(0, 2000));
    await p.checkpoint();
    await p.append(randomBytes(3000));
    await p.truncateTo(2000);
    await p.append(bytes.subarray(2000));
    expect(p.digestHeld()).toBe(digest);
    await p.discard();
  });
});
