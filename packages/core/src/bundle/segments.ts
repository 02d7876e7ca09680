/**
 * Segmented patches (docs/format.md section 5.4, format version 3): a body too large for one
 * patch-from frame (its reference plus itself over PATCH_SPAN_MAX, or its reference over the
 * reference cap) is cut into segments, each a patch-from frame against a window (offset, length)
 * of one baseline body. Each window plus its segment obeys the bounds of a single patch, so the
 * applier's memory is that of one patch whatever the body's size. Differ and applier share the
 * segment table codec and its checks, which run before a byte of any frame is decoded.
 */
import { FerryError } from '../errors.js';
import { PATCH_SPAN_MAX } from '../util/zstd.js';

/** Most segments one body may have (a 16-byte record each). */
export const SEGMENTS_MAX = 1024;

/** Bytes of one record of a segment table. */
const RECORD = 16;

/** One segment: a patch-from frame of `frame` bytes decoding to `size` bytes against reference bytes [offset, offset+length). */
export interface Segment {
  offset: number;
  length: number;
  size: number;
  frame: number;
}

function bad(msg: string): FerryError {
  return new FerryError('FERRY_ERR_BUNDLE_INVALID', `payload is malformed: ${msg}`);
}

function over(msg: string): FerryError {
  return new FerryError('FERRY_ERR_LIMIT_EXCEEDED', msg);
}

/** Packs a segment table: per segment offset, length, size, frame as 4-byte little-endian integers. */
export function packSegments(segments: readonly Segment[]): Uint8Array {
  const out = Buffer.alloc(segments.length * RECORD);
  segments.forEach((s, i) => {
    out.writeUInt32LE(s.offset, i * RECORD);
    out.writeUInt32LE(s.length, i * RECORD + 4);
    out.writeUInt32LE(s.size, i * RECORD + 8);
    out.writeUInt32LE(s.frame, i * RECORD + 12);
  });
  return out;
}

/**
 * Unpacks what packSegments wrote: an empty or ragged table is FERRY_ERR_BUNDLE_INVALID, one of
 * more than SEGMENTS_MAX segments FERRY_ERR_LIMIT_EXCEEDED, both before anything is allocated.
 */
export function unpackSegments(bytes: Uint8Array): Segment[] {
  if (bytes.length === 0 || bytes.length % RECORD !== 0) throw bad('a segment table is not a list of 16-byte records');
  const n = bytes.length / RECORD;
  if (n > SEGMENTS_MAX) throw over(`a segmented patch has ${n} segments, over the ${SEGMENTS_MAX} limit`);
  const v = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Segment[] = [];
  for (let i = 0; i < n; i++) {
    const at = i * RECORD;
    out.push({ offset: v.readUInt32LE(at), length: v.readUInt32LE(at + 4), size: v.readUInt32LE(at + 8), frame: v.readUInt32LE(at + 12) });
  }
  return out;
}

/** Largest frame accepted for a segment of `size` bytes (as for a single patch: 1/256 plus 1 KiB over). */
export function segmentFrameMax(size: number): number {
  return size + (size >> 8) + 1024;
}

/** What checkSegments checks a table against. */
export interface SegmentBounds {
  /** Bytes of the named baseline body. */
  referenceSize: number;
  /** The body's size (its tar header's). */
  bodySize: number;
  /** The bytes of frames the op declares. */
  frameBytes: number;
  /** Largest window (the patch reference cap in force). */
  maxReference: number;
}

/**
 * Checks a segment table before anything is read: windows non-empty, inside the reference and in
 * non-decreasing offset order (one pass over the stored reference serves them all), segments
 * non-empty and summing to the body's size, frames summing to the op's frame bytes
 * (FERRY_ERR_BUNDLE_INVALID); each window within the reference cap, window plus segment within
 * PATCH_SPAN_MAX and each frame within segmentFrameMax (FERRY_ERR_LIMIT_EXCEEDED).
 */
export function checkSegments(segments: readonly Segment[], b: SegmentBounds): void {
  let size = 0;
  let frames = 0;
  let last = 0;
  for (const [i, s] of segments.entries()) {
    if (s.length === 0 || s.size === 0 || s.frame === 0) throw bad(`segment ${i} is empty`);
    if (s.offset + s.length > b.referenceSize) throw bad(`segment ${i}'s window [${s.offset}, ${s.offset + s.length}) is outside its ${b.referenceSize}-byte reference`);
    if (s.offset < last) throw bad(`segment ${i}'s window starts before the previous one's`);
    last = s.offset;
    if (s.length > b.maxReference) throw over(`segment ${i}'s window is ${s.length} bytes, over the ${b.maxReference}-byte reference cap`);
    if (s.length + s.size > PATCH_SPAN_MAX) throw over(`segment ${i} spans ${s.length + s.size} bytes, over the ${PATCH_SPAN_MAX}-byte patch span`);
    if (s.frame > segmentFrameMax(s.size)) throw over(`segment ${i}'s frame is ${s.frame} bytes, over the cap for ${s.size} bytes`);
    size += s.size;
    frames += s.frame;
  }
  if (size !== b.bodySize) throw bad(`segments add up to ${size} bytes, the body is ${b.bodySize}`);
  if (frames !== b.frameBytes) throw bad(`segment frames add up to ${frames} bytes, the op declares ${b.frameBytes}`);
}
