/**
 * The applier's delta buffers (bundle/apply-delta.ts): one arena holds a delta's patch bytes, its
 * reference (and the reference parts' frames while they are read) and its output. These tests
 * decode real patch-from deltas against a real store, in sequences whose sizes grow
 * and shrink, so any overlap of the arena's regions would corrupt an output; and check that a
 * span over the cap is refused before a byte of the patch is read.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FerryError, PATCH_SPAN_MAX, Store, sha256, zstdPatchEncode, type Digest } from '../src/index.js';
import { ContentBatch } from '../src/store/contents.js';
import { DeltaArena, DeltaDecoder, type PatchReference } from '../src/bundle/apply-delta.js';
import { seededBytes, seededText } from '@ferry/test-support';

let work: string;
let store: Store;

/** A reference body, and a target that edits it (insertions, a deletion, a changed tail). */
function pair(name: string, size: number): { ref: Buffer; target: Buffer } {
  const ref = Buffer.from(seededText(`${name}-ref`, size));
  const cut = Math.floor(size / 3);
  const target = Buffer.concat([ref.subarray(0, cut), Buffer.from(seededText(`${name}-new`, 5_000)), ref.subarray(cut + 2_000, size - 1_000), Buffer.from(seededBytes(`${name}-tail`, 3_000))]);
  return { ref, target };
}

/** Sizes that grow and shrink, with two-part references among them. */
const SIZES = [40_000, 1_500_000, 200_000, 3_000_000, 50_000];
const pairs = SIZES.map((s, i) => pair(`p${i}`, s));

async function* pieces(b: Uint8Array, n = 65_536): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += n) yield b.subarray(i, i + n);
}

function refOf(...parts: Buffer[]): PatchReference {
  return { parts: parts.map((p) => ({ digest: sha256(p) as Digest, size: p.length })), size: parts.reduce((a, p) => a + p.length, 0) };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-delta-'));
  store = await Store.open(join(work, 'store'), { create: true });
  const batch = new ContentBatch(store);
  for (const { ref } of pairs) await batch.put(pieces(ref), ref.length);
  await batch.flush();
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('DeltaDecoder', () => {
  it('decodes patch-from deltas of growing and shrinking spans in one arena, each output exact', async () => {
    const d = new DeltaDecoder(store);
    try {
      for (const [i, { ref, target }] of pairs.entries()) {
        // every other delta takes a two-part reference (the previous body first)
        const parts = i % 2 === 1 ? [pairs[i - 1]!.ref, ref] : [ref];
        const patch = zstdPatchEncode(Buffer.concat(parts), target, 3);
        const got = await d.patch(refOf(...parts), pieces(patch), patch.length, target.length, async (out) => Buffer.from(out));
        expect(sha256(got)).toBe(sha256(target));
      }
    } finally {
      d.close();
    }
  });

  it('refuses a span over PATCH_SPAN_MAX before reading a byte of the patch: FERRY_ERR_LIMIT_EXCEEDED', async () => {
    const d = new DeltaDecoder(store);
    let pulled = 0;
    async function* data(): AsyncGenerator<Uint8Array> {
      pulled++;
      yield new Uint8Array(16);
    }
    const ref = refOf(pairs[3]!.ref);
    const err = await d.patch(ref, data(), 16, PATCH_SPAN_MAX - ref.size + 1, async () => 0).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).code).toBe('FERRY_ERR_LIMIT_EXCEEDED');
    expect(pulled).toBe(0);
    d.close();
  });
});

describe('the arena between layers', () => {
  it('a layer that starts soon after the previous one dropped its arena reuses it: one reservation per apply, not one per layer', () => {
    const first = new DeltaArena();
    const buffer = first.slice(0, 16).buffer;
    first.drop();
    const second = new DeltaArena();
    expect(second.slice(8, 16).buffer).toBe(buffer);
    // while the second holds it, a third layer's arena is a new one (never shared)
    expect(new DeltaArena().slice(0, 16).buffer).not.toBe(buffer);
    second.drop();
  });
});
