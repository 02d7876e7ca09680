/**
 * zstdPatchEncode reuses one compression context per thread for every patch (one-shot and long
 * path): its frames must be exactly those of a fresh context, whatever ran on it before, and
 * decode to their targets.
 */
import binding from 'zstd-napi/binding.js';
import { describe, expect, it } from 'vitest';
import { PATCH_ONE_SHOT_REFERENCE, zstdPatchDecode, zstdPatchEncode } from '../src/index.js';
import { seededBytes, seededText } from '@ferry/test-support';

/** A target that is mostly its reference, edited and shuffled, plus some new bytes. */
function edited(ref: Buffer, seed: string): Buffer {
  const half = ref.length >> 1;
  return Buffer.concat([ref.subarray(half, half + 200_000), seededText(seed, 30_000), ref.subarray(1000, 150_000), seededBytes(seed, 5_000)]);
}

/** The frame a context that never compressed anything before makes (as zstdPatchEncode sets it up). */
function fresh(ref: Buffer, target: Buffer, level: number): Buffer {
  const cctx = new binding.CCtx();
  const out = Buffer.alloc(binding.compressBound(target.length));
  if (ref.length <= PATCH_ONE_SHOT_REFERENCE) return out.subarray(0, cctx.compressUsingDict(out, target, ref, level));
  const windowLog = Math.ceil(Math.log2(ref.length + target.length + 1));
  cctx.setParameter(binding.CParameter.compressionLevel, level);
  cctx.setParameter(binding.CParameter.windowLog, windowLog);
  cctx.setParameter(binding.CParameter.enableLongDistanceMatching, windowLog >= 24 ? 1 : 0);
  cctx.setParameter(binding.CParameter.checksumFlag, 0);
  cctx.setParameter(binding.CParameter.contentSizeFlag, 1);
  cctx.loadDictionary(ref);
  return out.subarray(0, cctx.compress2(out, target));
}

describe('zstdPatchEncode', () => {
  it('gives a fresh context\'s frames on its reused context, long and one-shot patches interleaved', () => {
    const large = Buffer.concat([seededText('large-ref', PATCH_ONE_SHOT_REFERENCE), seededBytes('large-tail', 1 << 20)]);
    const small = seededText('small-ref', 3 << 20);
    const tiny = seededBytes('tiny-ref', 64 << 10);
    const cases = [
      { ref: large, target: edited(large, 'a'), level: 3 },
      { ref: small, target: edited(small, 'b'), level: 19 },
      { ref: large.subarray(0, PATCH_ONE_SHOT_REFERENCE + 1000), target: edited(large, 'c'), level: 5 },
      { ref: tiny, target: Buffer.concat([tiny, seededText('d', 10_000)]), level: 19 },
    ];
    const expected = cases.map((c) => fresh(c.ref, c.target, c.level));
    // twice round: the second pass runs each case after the others left their state behind
    for (let pass = 0; pass < 2; pass++) {
      for (const [i, c] of cases.entries()) {
        const frame = zstdPatchEncode(c.ref, c.target, c.level);
        expect(frame.equals(expected[i]!), `case ${i} pass ${pass}`).toBe(true);
        expect(Buffer.from(zstdPatchDecode(frame, c.ref, c.target.length)).equals(c.target)).toBe(true);
      }
    }
  });
});
