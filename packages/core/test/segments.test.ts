/**
 * The segment table of a segmented patch (docs/format.md section 5.4): its codec and the checks
 * the applier runs before reading a byte. Each bad table is refused with exactly one code.
 */
import { describe, expect, it } from 'vitest';
import { FerryError, PATCH_SPAN_MAX, SEGMENTS_MAX, checkSegments, packSegments, segmentFrameMax, unpackSegments, type Segment, type SegmentBounds } from '@ferry/core';

const MiB = 1024 * 1024;
const good: Segment[] = [
  { offset: 0, length: 16 * MiB, size: 10 * MiB, frame: 1000 },
  { offset: 8 * MiB, length: 16 * MiB, size: 10 * MiB, frame: 2000 },
  { offset: 14 * MiB, length: 16 * MiB, size: 10 * MiB + 5, frame: 3000 },
];
const bounds: SegmentBounds = { referenceSize: 30 * MiB, bodySize: 30 * MiB + 5, frameBytes: 6000, maxReference: 16 * MiB };

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(FerryError);
    return (err as FerryError).code;
  }
  return undefined;
}

describe('segment tables', () => {
  it('round-trip through their codec and pass the checks when they fit', () => {
    expect(unpackSegments(packSegments(good))).toEqual(good);
    expect(code(() => checkSegments(good, bounds))).toBeUndefined();
  });

  it('refuses empty, ragged and over-long tables before allocating', () => {
    expect(code(() => unpackSegments(new Uint8Array(0)))).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(code(() => unpackSegments(new Uint8Array(17)))).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(code(() => unpackSegments(new Uint8Array(16 * (SEGMENTS_MAX + 1))))).toBe('FERRY_ERR_LIMIT_EXCEEDED');
    expect(unpackSegments(new Uint8Array(16 * SEGMENTS_MAX))).toHaveLength(SEGMENTS_MAX);
  });

  it('refuses each violation with one code', () => {
    const one = (change: Partial<Segment>, more: Partial<SegmentBounds> = {}): string | undefined => code(() => checkSegments([{ ...good[0]!, ...change }, ...good.slice(1)], { ...bounds, ...more }));
    expect(one({ offset: 20 * MiB })).toBe('FERRY_ERR_BUNDLE_INVALID'); // window past the reference's end (and past the next window)
    expect(code(() => checkSegments([good[0]!, good[1]!, { ...good[2]!, offset: 15 * MiB }], bounds))).toBe('FERRY_ERR_BUNDLE_INVALID'); // window past the reference's end
    expect(code(() => checkSegments([good[1]!, good[0]!, good[2]!], bounds))).toBe('FERRY_ERR_BUNDLE_INVALID'); // windows out of order
    expect(one({ length: 0 })).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(one({ size: 0 }, { bodySize: 20 * MiB + 5 })).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(one({ size: 10 * MiB - 1 })).toBe('FERRY_ERR_BUNDLE_INVALID'); // segments short of the body
    expect(one({ frame: 999 })).toBe('FERRY_ERR_BUNDLE_INVALID'); // frames short of the op's bytes
    expect(one({}, { maxReference: 16 * MiB - 1 })).toBe('FERRY_ERR_LIMIT_EXCEEDED'); // a window over the device's cap
    expect(one({ size: 17 * MiB }, { bodySize: 37 * MiB + 5 })).toBe('FERRY_ERR_LIMIT_EXCEEDED'); // window + segment over the span
    expect(16 * MiB + 17 * MiB).toBeGreaterThan(PATCH_SPAN_MAX);
    expect(one({ frame: segmentFrameMax(10 * MiB) + 1 }, { frameBytes: segmentFrameMax(10 * MiB) + 1 + 5000 })).toBe('FERRY_ERR_LIMIT_EXCEEDED');
  });
});
