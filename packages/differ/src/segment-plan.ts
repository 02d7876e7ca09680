/**
 * Planning a segmented patch (docs/format.md section 5.4): a body whose best reference is too
 * large for one patch-from frame is cut into equal segments, each patched against a window of the
 * reference that obeys a single patch's bounds (window at most the reference cap, window plus
 * segment at most PATCH_SPAN_MAX), so the device's memory is that of one patch.
 *
 * Each window is anchored on real matches: fingerprints sampled across the segment are looked up
 * in a sparse index of the reference, each hit votes for the shift between segment and reference,
 * and the window is centred on the shift most votes agree on (proportional placement when too few
 * hit). Windows are kept in non-decreasing order, which lets the applier read the reference in one
 * pass. Everything here is a pure function of the bytes: bundles stay deterministic.
 */
import { PATCH_SPAN_MAX, SEGMENTS_MAX, type Segment } from '@ferry/core';

/** Fingerprinted bytes. */
const FP_BYTES = 32;
/** The reference is indexed at every STRIDE-th position; a sample tries STRIDE alignments. */
const STRIDE = 64;
/** Fingerprints sampled per segment. */
const SAMPLES = 512;
/** Votes are counted in buckets of this many bytes of shift. */
const BUCKET = 64 * 1024;
/** Fewer agreeing votes than this: proportional placement. */
const MIN_VOTES = 4;
/** Segments are at least this large (but the last), so a body of up to SEGMENTED_MAX_BODY fits SEGMENTS_MAX segments. */
const SEGMENT_MIN = 1 << 20;
/** Largest body cut into segments. */
export const SEGMENTED_MAX_BODY = SEGMENTS_MAX * SEGMENT_MIN;
/** A segment is at most this share of its window when the reference is larger than a window (slack for shifts). */
const SEGMENT_SHARE = 0.75;

/** Where one segment of the target lies and which reference window it is patched against. */
export interface SegmentWindow {
  /** The segment: target bytes [start, start+size). */
  start: number;
  size: number;
  /** The window: reference bytes [offset, offset+length). */
  offset: number;
  length: number;
}

function fingerprint(b: Uint8Array, at: number): number {
  let h = 0x9e3779b9;
  for (let i = at; i < at + FP_BYTES; i += 4) h = Math.imul(h ^ (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)), 0x85ebca6b) ^ (h >>> 13);
  return h >>> 0;
}

/** Fingerprints of the reference at every STRIDE-th position (the first position wins a repeat). */
function indexReference(ref: Uint8Array): Map<number, number> {
  const m = new Map<number, number>();
  for (let p = 0; p + FP_BYTES <= ref.length; p += STRIDE) {
    const h = fingerprint(ref, p);
    if (!m.has(h)) m.set(h, p);
  }
  return m;
}

/** The shift (reference position minus target position) most sampled fingerprints agree on, or undefined. */
function votedShift(index: Map<number, number>, target: Uint8Array, start: number, size: number): number | undefined {
  const shifts: number[] = [];
  const step = Math.max(STRIDE, Math.floor(size / SAMPLES));
  for (let t = start; t + STRIDE + FP_BYTES <= start + size; t += step) {
    for (let o = 0; o < STRIDE; o++) {
      const r = index.get(fingerprint(target, t + o));
      if (r !== undefined) {
        shifts.push(r - (t + o));
        break;
      }
    }
  }
  const buckets = new Map<number, number[]>();
  for (const s of shifts) {
    const k = Math.floor(s / BUCKET);
    const list = buckets.get(k);
    if (list) list.push(s);
    else buckets.set(k, [s]);
  }
  let best: number[] | undefined;
  // most votes wins; a tie goes to the smallest shift (buckets in shift order, a later one must beat it)
  for (const [, list] of [...buckets].sort((x, y) => x[0] - y[0])) if (!best || list.length > best.length) best = list;
  if (!best || best.length < MIN_VOTES) return undefined;
  best.sort((a, b) => a - b);
  return best[best.length >> 1];
}

/**
 * What placing segments needs of a reference (referencePlan): its length, the window and segment
 * sizes, and its sparse index (none when the reference fits a window). Kept instead of the
 * reference, so a patch worker need not hold the reference and the target at once.
 */
export interface ReferencePlan {
  refLength: number;
  targetLength: number;
  /** Every window's length. */
  length: number;
  /** Every segment's size (the last may be smaller). */
  size: number;
  index: Map<number, number> | undefined;
}

/**
 * The first half of segment planning: sizes for a target of `targetLength` bytes against `ref`,
 * windows of at most `maxWindow` bytes, and the reference's index. Every window plus its segment
 * fits PATCH_SPAN_MAX.
 */
export function referencePlan(ref: Uint8Array, targetLength: number, maxWindow: number): ReferencePlan {
  const length = Math.min(maxWindow, ref.length, PATCH_SPAN_MAX >> 1);
  // a reference that fits a window is used whole by every segment: segments as large as the span allows
  const maxSegment = ref.length <= length ? PATCH_SPAN_MAX - length : Math.min(PATCH_SPAN_MAX - length, Math.max(SEGMENT_MIN, Math.floor(length * SEGMENT_SHARE * (targetLength / ref.length))));
  const count = Math.ceil(targetLength / maxSegment);
  if (count > SEGMENTS_MAX) throw new RangeError(`a ${targetLength}-byte body needs ${count} segments, over ${SEGMENTS_MAX}`);
  const size = Math.ceil(targetLength / count);
  return { refLength: ref.length, targetLength, length, size, index: ref.length <= length ? undefined : indexReference(ref) };
}

/**
 * The second half: cuts `target` (the planned length) into segments and places each one's window
 * in the reference; window offsets never decrease.
 */
export function placeSegments(plan: ReferencePlan, target: Uint8Array): SegmentWindow[] {
  const { refLength, length, size, index } = plan;
  if (target.length !== plan.targetLength) throw new RangeError(`a ${target.length}-byte target, planned for ${plan.targetLength}`);
  const out: SegmentWindow[] = [];
  let last = 0;
  for (let start = 0; start < target.length; start += size) {
    const n = Math.min(size, target.length - start);
    let offset = 0;
    if (index) {
      const shift = votedShift(index, target, start, n) ?? Math.round((start + n / 2) * (refLength / target.length)) - (start + n / 2);
      offset = Math.round(start + n / 2 + shift - length / 2);
      offset = Math.max(last, Math.min(Math.max(offset, 0), refLength - length));
    }
    last = offset;
    out.push({ start, size: n, offset, length });
  }
  return out;
}

/** The segment table of planned windows and their frames (frames in segment order). */
export function segmentTable(windows: readonly SegmentWindow[], frames: readonly Uint8Array[]): Segment[] {
  return windows.map((w, i) => ({ offset: w.offset, length: w.length, size: w.size, frame: frames[i]!.length }));
}
