/**
 * The payload op codec (docs/format.md section 5). Each rebuilt layer is one zstd frame holding a
 * stream of msgpack records. Ops name baseline entries by index in the baseline table; header
 * indexes are coded as deltas from a cursor so runs of matching entries cost a few bytes.
 *
 *   [0, d, n]            RUN: n entries equal to baseline entries cursor+d ... (+n-1)
 *   [1, hdr, body, pad?] ENTRY
 *        hdr:  int d          header group of baseline entry cursor+d, verbatim
 *              [d, patch]     that header group with a same-length byte patch
 *              bin            literal header group
 *        body: null           no body
 *              true           the body of the header's baseline entry
 *              [0, i]         copy: the body of baseline entry i
 *              [1, k]         the body of the k-th previous entry of this layer
 *              [2, digest]    a content an earlier layer of this bundle produced
 *              [3, size]      literal: `size` bytes follow in bin records of <= 1 MiB
 *              [4, i, size, n] patch: zstd patch-from against baseline entry i's body; n patch
 *                             bytes follow in bin records; output is `size` bytes
 *              [5, i, size, n] bsdiff: a bsdiff delta (delta/bsdiff.ts) against baseline entry i's
 *                             body; n raw delta bytes follow in bin records, compressed only by
 *                             this frame; output is `size` bytes
 *              [6, set, sizes, n] or [6, set, sizes, n, earlier] (v2) GROUP: a zstd patch-from
 *                             frame of n bytes (following in bin records) against the reference
 *                             set `set` (bundle/reference.ts) followed by the bodies of the
 *                             entries `earlier` places before this one, decoding to the member
 *                             bodies of `sizes`; this entry's body is the first member, later
 *                             MEMBER bodies take the others in order
 *              [7, d]         (v2) MEMBER: the next body of the group opened d groups before
 *                             the layer's latest one
 *              [8, i, size, segments, n] (v3) SEGMENTED: `size` bytes as consecutive segments,
 *                             each a patch-from frame against a window of baseline entry i's
 *                             body (bundle/segments.ts); n frame bytes follow in bin records
 *        pad:  bin            the previous body's padding when it is not all zeros
 *   [2, tail]            TAIL: the layer's last bytes (padding, end-of-archive blocks); ends the frame
 *   [3, d, n, patch]     PATCHRUN: n entries equal to baseline entries cursor+d ... except that each
 *                        header group gets the same byte patch, checksums recomputed (a rebuild that
 *                        only moved mtimes costs one record per run)
 *
 *   A patched header [d, patch, 1] also has its checksums recomputed after patching.
 */
import { decodeMultiStream, encode } from '@msgpack/msgpack';
import type { Writable } from 'node:stream';
import { FerryError, toFerryError } from '../errors.js';
import { bytesToDigest, digestToBytes, type Digest } from '../util/digest.js';
import { readUvarint, writeUvarint } from '../util/varint.js';
import { zstdDecode } from '../util/zstd.js';
import { PAYLOAD_WINDOW_LOG_MAX } from './limits.js';
import { msgpackDocuments } from './msgpack-scan.js';
import { packU32, unpackU32 } from './reference.js';
import { packSegments, unpackSegments, type Segment } from './segments.js';
import { SEGMENTED_FORMAT_VERSION } from './header.js';

/** Largest bin record in a payload (body data is cut into parts of at most this). */
export const PAYLOAD_PART = 1024 * 1024;
const LIMITS = { maxStrLength: 0, maxBinLength: 16 * 1024 * 1024, maxArrayLength: 8, maxMapLength: 0, maxExtLength: 0 };
/** Largest record of a payload frame: a bin of LIMITS.maxBinLength, or an op record holding such bins. */
const RECORD_MAX_BYTES = LIMITS.maxBinLength + 64 * 1024;
/** Op records nest 2 deep (`[1, [d, patch], [4, i, size, n]]`); the pre-scan allows one more. */
const SCAN = { maxDepth: 3, maxElements: 1024 };

/** Where an entry's header group comes from. */
export type HeaderSource =
  | { kind: 'base'; index: number }
  /** `fixChecksum`: after patching, every header block's checksum is recomputed (recomputeChecksums). */
  | { kind: 'patched'; index: number; patch: Uint8Array; fixChecksum?: boolean | undefined }
  | { kind: 'literal'; bytes: Uint8Array };

/** Where an entry's body comes from (encoder side: data is whole). */
export type BodySource =
  | { kind: 'none' }
  | { kind: 'same' }
  | { kind: 'copy'; index: number }
  | { kind: 'back'; k: number }
  | { kind: 'digest'; digest: Digest }
  /** Literal: whole `data`, or only `size` (the caller then writes the bytes with OpWriter.part). */
  | { kind: 'literal'; data: Uint8Array }
  | { kind: 'literal'; size: number }
  | { kind: 'patch'; index: number; size: number; patch: Uint8Array }
  | { kind: 'bsdiff'; index: number; size: number; delta: Uint8Array }
  /** Data may be omitted: the caller then writes `n` bytes with OpWriter.part. */
  /** `earlier`: distances back to entries of this layer whose bodies follow the set's in the reference. */
  | { kind: 'group'; set: readonly number[]; earlier?: readonly number[] | undefined; sizes: readonly number[]; n: number; frame?: Uint8Array | undefined }
  /** `d`: groups opened after the one this member belongs to. */
  | { kind: 'member'; d: number }
  /** `frames`: one patch-from frame per segment, in order. */
  | { kind: 'segmented'; index: number; size: number; segments: readonly Segment[]; frames: readonly Uint8Array[] };

/**
 * A decoded op; literal, patch and bsdiff data stream from `data`, which must be consumed in order.
 * The op's own byte fields (header bytes and patches, padding, tail) are the op's to keep.
 */
export type PayloadOp =
  | { op: 'run'; start: number; count: number }
  | { op: 'entry'; header: HeaderSource; body: DecodedBody; pad?: Uint8Array | undefined }
  | { op: 'tail'; bytes: Uint8Array }
  | { op: 'patchrun'; start: number; count: number; patch: Uint8Array };

/**
 * A decoded body source. Each piece `data` yields is a view of the frame's decoded records, valid
 * only until the next piece (or op) is asked for: the consumer copies what it keeps (readOps).
 */
export type DecodedBody =
  | { kind: 'none' }
  | { kind: 'same' }
  | { kind: 'copy'; index: number }
  | { kind: 'back'; k: number }
  | { kind: 'digest'; digest: Digest }
  | { kind: 'literal'; size: number; data: AsyncIterable<Uint8Array> }
  | { kind: 'patch'; index: number; size: number; patchSize: number; data: AsyncIterable<Uint8Array> }
  | { kind: 'bsdiff'; index: number; size: number; deltaSize: number; data: AsyncIterable<Uint8Array> }
  /** `set`: baseline entry indexes (checked against the table by resolveReferenceSet); `sizes[0]` is this entry's body. */
  | { kind: 'group'; set: number[]; earlier: number[]; sizes: number[]; size: number; frameSize: number; data: AsyncIterable<Uint8Array> }
  | { kind: 'member'; d: number }
  /** `segments` checked by checkSegments (segments.ts) before a byte of `data` is decoded. */
  | { kind: 'segmented'; index: number; size: number; segments: Segment[]; frameSize: number; data: AsyncIterable<Uint8Array> };

/** Writes one layer's op records to `out` (a zstd compressing stream piped onwards). */
export class OpWriter {
  private cursor = 0;

  constructor(private readonly out: Writable) {}

  private rec(v: unknown): void {
    this.out.write(encode(v));
  }

  private delta(index: number): number {
    const d = index - this.cursor;
    this.cursor = index + 1;
    return d;
  }

  private parts(data: Uint8Array): void {
    for (let i = 0; i < data.length; i += PAYLOAD_PART) this.rec(data.subarray(i, i + PAYLOAD_PART));
  }

  /**
   * One data record of the entry just written (1 to PAYLOAD_PART bytes), for bodies the caller
   * streams instead of passing whole; the parts must add up to the size the entry declared.
   */
  part(data: Uint8Array): void {
    this.rec(data);
  }

  /** n entries equal to baseline entries start..start+n-1. */
  run(start: number, count: number): void {
    const d = start - this.cursor;
    this.cursor = start + count;
    this.rec([0, d, count]);
  }

  /** n entries equal to baseline entries start..start+n-1 but for one header patch (checksums fixed). */
  patchRun(start: number, count: number, patch: Uint8Array): void {
    const d = start - this.cursor;
    this.cursor = start + count;
    this.rec([3, d, count, patch]);
  }

  /** One entry. */
  entry(header: HeaderSource, body: BodySource, pad?: Uint8Array): void {
    const hdr = header.kind === 'base' ? this.delta(header.index) : header.kind === 'patched' ? (header.fixChecksum ? [this.delta(header.index), header.patch, 1] : [this.delta(header.index), header.patch]) : header.bytes;
    let b: unknown;
    switch (body.kind) {
      case 'none': b = null; break;
      case 'same': b = true; break;
      case 'copy': b = [0, body.index]; break;
      case 'back': b = [1, body.k]; break;
      case 'digest': b = [2, digestToBytes(body.digest)]; break;
      case 'literal': b = [3, 'data' in body ? body.data.length : body.size]; break;
      case 'patch': b = [4, body.index, body.size, body.patch.length]; break;
      case 'bsdiff': b = [5, body.index, body.size, body.delta.length]; break;
      case 'group': b = body.earlier && body.earlier.length > 0 ? [6, packU32(body.set), packU32(body.sizes), body.n, packU32(body.earlier)] : [6, packU32(body.set), packU32(body.sizes), body.n]; break;
      case 'member': b = [7, body.d]; break;
      case 'segmented': b = [8, body.index, body.size, packSegments(body.segments), body.segments.reduce((a, g) => a + g.frame, 0)]; break;
    }
    this.rec(pad && pad.length > 0 ? [1, hdr, b, pad] : [1, hdr, b]);
    if (body.kind === 'literal' && 'data' in body) this.parts(body.data);
    if (body.kind === 'patch') this.parts(body.patch);
    if (body.kind === 'bsdiff') this.parts(body.delta);
    if (body.kind === 'group' && body.frame) this.parts(body.frame);
    if (body.kind === 'segmented') for (const f of body.frames) this.parts(f);
  }

  /** The layer's tail; the last record. */
  tail(bytes: Uint8Array): void {
    this.rec([2, bytes]);
  }
}

function bad(msg: string): FerryError {
  return new FerryError('FERRY_ERR_BUNDLE_INVALID', `payload is malformed: ${msg}`);
}

function int(v: unknown, what: string, min = 0): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw bad(`${what} is not an integer`);
  return v;
}

/**
 * What a failure while reading records means: the decoder's own errors are a malformed payload;
 * an abort, a file system error or a FerryError from the source below pass through as such.
 */
function decodeError(err: unknown): FerryError {
  const e = err as NodeJS.ErrnoException;
  // a record the msgpack scan refuses is a bad payload, like one the decoder refuses
  if (err instanceof FerryError && err.code === 'FERRY_ERR_MSGPACK_INVALID') return bad(err.message);
  if (err instanceof FerryError || e?.name === 'AbortError' || typeof e?.syscall === 'string') return toFerryError(err, 'reading the payload');
  return bad(e?.message ?? String(err));
}

/** Options of {@link readOps}. */
export interface ReadOpsOptions {
  /** Largest zstd window accepted (default PAYLOAD_WINDOW_LOG_MAX): a larger frame is FERRY_ERR_LIMIT_EXCEEDED. */
  windowLogMax?: number | undefined;
  /** Reaches the zstd decoder, which checks it at every piece it decodes. */
  signal?: AbortSignal | undefined;
  /**
   * The header's format version (default: the latest this ferry reads): a body kind introduced by a
   * later version (6 and 7 from 2, 8 from 3; docs/format.md section 5) is FERRY_ERR_BUNDLE_INVALID.
   */
  version?: number | undefined;
}

/** The format version that introduced each body kind (kinds absent here exist from version 1). */
const BODY_SINCE: Readonly<Record<number, number>> = { 6: 2, 7: 2, 8: SEGMENTED_FORMAT_VERSION };

/**
 * Decodes one layer frame (compressed bytes) into ops. Output of the zstd frame is capped at
 * `maxOutput` and its window at `windowLogMax`; every record is shape-checked;
 * literal/patch/bsdiff data arrive through `data`.
 */
export async function* readOps(compressed: AsyncIterable<Uint8Array>, maxOutput: number, options: ReadOpsOptions = {}): AsyncGenerator<PayloadOp> {
  // the decoder's pieces are views of one buffer, and so are the records cut from them: nothing is
  // copied per record (a fresh copy of each data record was most of the applier's malloc heap at
  // its peak, garbage until the collector ran). So a record's bytes are valid until the next pull:
  // data pieces go on as views (DecodedBody), and the op fields a consumer keeps are copied here.
  const decoded = zstdDecode(compressed, maxOutput, { windowLogMax: options.windowLogMax ?? PAYLOAD_WINDOW_LOG_MAX, signal: options.signal, reuseOutput: true });
  const scanned = msgpackDocuments(decoded, SCAN, 'payload frame', RECORD_MAX_BYTES, { views: true });
  const records = decodeMultiStream<undefined>(scanned, LIMITS)[Symbol.asyncIterator]();
  const version = options.version ?? SEGMENTED_FORMAT_VERSION;
  let cursor = 0;
  const next = async (): Promise<unknown> => {
    let r;
    try {
      r = await records.next();
    } catch (err) {
      throw decodeError(err);
    }
    if (r.done) throw bad('frame ended before its tail record');
    return r.value;
  };
  async function* parts(total: number): AsyncGenerator<Uint8Array> {
    let left = total;
    while (left > 0) {
      const p = await next();
      if (!(p instanceof Uint8Array) || p.length === 0 || p.length > left) throw bad('body data record has the wrong size');
      left -= p.length;
      yield p;
    }
  }
  const base = (d: unknown): number => {
    const i = cursor + int(d, 'baseline delta', -cursor);
    cursor = i + 1;
    return i;
  };
  try {
    for (;;) {
      const rec = await next();
      if (!Array.isArray(rec)) throw bad('op record is not an array');
      if (rec[0] === 0) {
        const start = cursor + int(rec[1], 'run delta', -cursor);
        const count = int(rec[2], 'run count', 1);
        cursor = start + count;
        yield { op: 'run', start, count };
      } else if (rec[0] === 1) {
        const h = rec[1];
        const header: HeaderSource = typeof h === 'number' ? { kind: 'base', index: base(h) } : h instanceof Uint8Array ? { kind: 'literal', bytes: own(h) } : Array.isArray(h) && h[1] instanceof Uint8Array && (h[2] === undefined || h[2] === 1) ? { kind: 'patched', index: base(h[0]), patch: own(h[1]), fixChecksum: h[2] === 1 } : (() => { throw bad('header source'); })();
        const pad = rec[3] === undefined ? undefined : rec[3] instanceof Uint8Array ? own(rec[3]) : (() => { throw bad('pad'); })();
        yield { op: 'entry', header, body: decodeBody(rec[2], parts, header, version), pad };
      } else if (rec[0] === 3) {
        const start = cursor + int(rec[1], 'patch run delta', -cursor);
        const count = int(rec[2], 'patch run count', 1);
        if (!(rec[3] instanceof Uint8Array)) throw bad('patch run patch is not binary');
        cursor = start + count;
        yield { op: 'patchrun', start, count, patch: own(rec[3]) };
      } else if (rec[0] === 2) {
        if (!(rec[1] instanceof Uint8Array)) throw bad('tail is not binary');
        yield { op: 'tail', bytes: own(rec[1]) };
        const after = await records.next().catch((err: unknown) => { throw decodeError(err); });
        if (!after.done) throw bad('records after the tail');
        return;
      } else {
        throw bad(`unknown op ${String(rec[0])}`);
      }
    }
  } finally {
    // an early stop (an error, or a consumer that stops reading) closes the decoders and the source
    await records.return?.(undefined);
  }
}

/** A copy of a record's bytes that outlives the record (small: header fields, padding, a tail). */
function own(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes);
}

function decodeBody(b: unknown, parts: (n: number) => AsyncGenerator<Uint8Array>, header: HeaderSource, version: number): DecodedBody {
  if (b === null) return { kind: 'none' };
  if (b === true) {
    if (header.kind === 'literal') throw bad('"same body" with a literal header');
    return { kind: 'same' };
  }
  if (!Array.isArray(b)) throw bad('body source is not an array');
  const since = BODY_SINCE[b[0] as number];
  if (since !== undefined && version < since) throw bad(`body kind ${String(b[0])} in a format version ${version} payload (it exists from version ${since})`);
  switch (b[0]) {
    case 0: return { kind: 'copy', index: int(b[1], 'copy index') };
    case 1: return { kind: 'back', k: int(b[1], 'back distance', 1) };
    case 2:
      if (!(b[1] instanceof Uint8Array) || b[1].length !== 32) throw bad('digest body');
      return { kind: 'digest', digest: bytesToDigest(b[1]) };
    case 3: {
      const size = int(b[1], 'literal size', 1);
      return { kind: 'literal', size, data: parts(size) };
    }
    case 4: {
      const patchSize = int(b[3], 'patch size', 1);
      return { kind: 'patch', index: int(b[1], 'patch index'), size: int(b[2], 'patch output size', 1), patchSize, data: parts(patchSize) };
    }
    case 5: {
      const deltaSize = int(b[3], 'bsdiff delta size', 1);
      return { kind: 'bsdiff', index: int(b[1], 'bsdiff index'), size: int(b[2], 'bsdiff output size', 1), deltaSize, data: parts(deltaSize) };
    }
    case 6: {
      if (!(b[1] instanceof Uint8Array) || !(b[2] instanceof Uint8Array)) throw bad('group set and sizes must be binary');
      const sizes = unpackU32(b[2], 'group sizes');
      if (sizes.some((s) => s === 0)) throw bad('a group member is empty');
      const frameSize = int(b[3], 'group frame size', 1);
      if (b[4] !== undefined && !(b[4] instanceof Uint8Array)) throw bad('group earlier entries must be binary');
      const earlier = b[4] === undefined ? [] : unpackU32(b[4], 'earlier entries');
      if (earlier.some((k) => k === 0)) throw bad('a group names its own entry as earlier');
      return { kind: 'group', set: b[1].length === 0 ? [] : unpackU32(b[1], 'reference set'), earlier, sizes, size: sizes[0]!, frameSize, data: parts(frameSize) };
    }
    case 7:
      return { kind: 'member', d: int(b[1], 'member group distance') };
    case 8: {
      if (!(b[3] instanceof Uint8Array)) throw bad('segment table must be binary');
      const frameSize = int(b[4], 'segmented frame size', 1);
      return { kind: 'segmented', index: int(b[1], 'segmented index'), size: int(b[2], 'segmented output size', 1), segments: unpackSegments(b[3]), frameSize, data: parts(frameSize) };
    }
    default:
      throw bad(`unknown body kind ${String(b[0])}`);
  }
}

/** Encodes a patch writing `to`'s bytes over the given sorted, disjoint [start, end) ranges. */
export function encodePatch(to: Uint8Array, ranges: [number, number][]): Uint8Array {
  const out: number[] = [];
  let last = 0;
  for (const [i, j] of ranges) {
    writeUvarint(out, out.length, i - last);
    writeUvarint(out, out.length, j - i);
    for (let k = i; k < j; k++) out.push(to[k]!);
    last = j;
  }
  return Uint8Array.from(out);
}

/** The [start, end) ranges where two same-length buffers differ, merging gaps under 3 bytes. */
export function diffRanges(from: Uint8Array, to: Uint8Array): [number, number][] {
  const ranges: [number, number][] = [];
  let i = 0;
  while (i < to.length) {
    if (from[i] === to[i]) {
      i++;
      continue;
    }
    let j = i;
    // extend over short equal gaps: a new segment costs ~2 bytes
    while (j < to.length && (from[j] !== to[j] || (j + 1 < to.length && from[j + 1] !== to[j + 1]) || (j + 2 < to.length && from[j + 2] !== to[j + 2]))) j++;
    ranges.push([i, j]);
    i = j;
  }
  return ranges;
}

/** Encodes a same-length byte patch: (skip varint, len varint, bytes)* (util/varint.ts); undefined if lengths differ. */
export function diffBytes(from: Uint8Array, to: Uint8Array): Uint8Array | undefined {
  if (from.length !== to.length) return undefined;
  return encodePatch(to, diffRanges(from, to));
}

/** Applies a patch made by diffBytes; malformed: FERRY_ERR_BUNDLE_INVALID. */
export function patchBytes(from: Uint8Array, patch: Uint8Array): Buffer {
  const out = Buffer.from(from);
  const badVarint = (reason: string): FerryError => bad(`header patch: ${reason}`);
  let p = 0;
  let pos = 0;
  // neither a skip nor a length can exceed the header: that is each varint's cap
  const varint = (): number => {
    const { value, next } = readUvarint(patch, p, badVarint, out.length);
    p = next;
    return value;
  };
  while (p < patch.length) {
    pos += varint();
    const len = varint();
    if (pos + len > out.length || p + len > patch.length) throw bad('header patch runs past the header');
    out.set(patch.subarray(p, p + len), pos);
    p += len;
    pos += len;
  }
  return out;
}
