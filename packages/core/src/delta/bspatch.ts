/**
 * bsdiff deltas (Colin Percival, "Naive differences of executable code", 2003): the format, and
 * its streaming application. The encoder is publisher-only and lives in the differ.
 *
 * Delta format (ferry's own; not BSDIFF40). All integers are LEB128 varints; seeks are zigzag:
 *
 *   delta  = block*                      no blocks at all for an empty target
 *   block  = n  triple{n}  add-bytes  extra-bytes
 *   triple = seek  add  extra
 *
 * Decoding keeps a reference position `pos`, 0 at the start and carried across blocks. For each
 * triple in order: pos += seek (pos must stay within [0, reference length]); output `add` bytes
 * reference[pos + i] + diff[i] (mod 256) taking diff bytes from the block's add-bytes in order, and
 * pos += add; then output `extra` bytes copied from the block's extra-bytes in order.
 *
 * Every triple outputs at least one byte (add + extra >= 1), and a block outputs at most
 * BSDIFF_BLOCK bytes in all. Within a block the control triples, the diff bytes and the extra bytes
 * each sit together, so the payload compressor sees long runs of similar data; the bound lets
 * bspatch stream with one block's diff bytes buffered.
 *
 * Memory is the reference plus one block's control triples and diff bytes (at most BSDIFF_BLOCK)
 * plus one output piece: extra bytes are copied into the output as they arrive. Anything malformed
 * (truncated, a seek outside the reference, more or fewer bytes than `size`, trailing bytes) is
 * FERRY_ERR_BUNDLE_INVALID.
 */
import { FerryError } from '../errors.js';
import { ByteReader } from '../util/byte-reader.js';

/** Most output bytes one block of a bsdiff delta may produce (bounds bspatch's buffer). */
export const BSDIFF_BLOCK = 1024 * 1024;

/** Largest piece bspatch yields. */
export const BSPATCH_PIECE = 64 * 1024;

function bad(msg: string): FerryError {
  return new FerryError('FERRY_ERR_BUNDLE_INVALID', `bsdiff delta is malformed: ${msg}`);
}

/** The delta's reader: every malformation, a cut included, is FERRY_ERR_BUNDLE_INVALID. */
function deltaReader(delta: AsyncIterable<Uint8Array>): ByteReader {
  return new ByteReader(delta, { truncated: (what) => bad(`truncated in ${what}`), badVarint: (reason) => bad(reason) });
}

/** Copies up to n bytes (at least one) of extra bytes into `out`; returns how many. */
async function copyExtra(r: ByteReader, out: Pieces, n: number): Promise<number> {
  const got = await r.readSome(Math.min(n, out.room()));
  if (got.length === 0) throw bad('truncated in the extra bytes');
  out.piece.set(got, out.used);
  out.used += got.length;
  return got.length;
}

/** One block's control triples. */
interface Block {
  seek: number[];
  add: number[];
  extra: number[];
  addTotal: number;
}

async function readControl(r: ByteReader, left: number): Promise<Block> {
  const n = await r.uvarint(BSDIFF_BLOCK);
  if (n < 1) throw bad('a block of no triples');
  const b: Block = { seek: [], add: [], extra: [], addTotal: 0 };
  let total = 0;
  for (let i = 0; i < n; i++) {
    const seek = await r.zvarint();
    const add = await r.uvarint(BSDIFF_BLOCK);
    const extra = await r.uvarint(BSDIFF_BLOCK);
    total += add + extra;
    if (add + extra === 0) throw bad('a triple outputs nothing');
    if (total > BSDIFF_BLOCK) throw bad(`a block outputs more than ${BSDIFF_BLOCK} bytes`);
    if (total > left) throw bad('output runs past the declared size');
    b.seek.push(seek);
    b.add.push(add);
    b.extra.push(extra);
    b.addTotal += add;
  }
  return b;
}

/** The output piece being filled. */
class Pieces {
  piece: Buffer;
  used = 0;

  /** With `reuse` (a scratch's piece), every piece is that buffer, refilled once the consumer asks for the next. */
  constructor(private readonly reuse: Buffer | undefined) {
    this.piece = reuse ?? Buffer.allocUnsafe(BSPATCH_PIECE);
  }

  room(): number {
    return BSPATCH_PIECE - this.used;
  }

  /** Writes ref[pos + i] + diff[d + i] for as many of n bytes as fit; returns how many. */
  add(ref: Uint8Array, pos: number, diff: Uint8Array, d: number, n: number): number {
    const len = Math.min(n, this.room());
    const { piece, used } = this;
    for (let k = 0; k < len; k++) piece[used + k] = ref[pos + k]! + diff[d + k]!;
    this.used += len;
    return len;
  }

  /** The filled part of the piece; unless reused, a fresh piece takes its place (the consumer may keep what it got). */
  take(): Buffer {
    const p = this.piece.subarray(0, this.used);
    if (!this.reuse) this.piece = Buffer.allocUnsafe(BSPATCH_PIECE);
    this.used = 0;
    return p;
  }
}

/**
 * The buffers of bspatch, for a caller that applies many deltas one after the other (a layer
 * rebuild): the output piece, and one block's diff bytes grown (to at most BSDIFF_BLOCK) only
 * when a block needs more. Fresh buffers per piece and per block were up to a MiB of garbage a
 * block, which the collector let pile up in the malloc heap. One scratch serves one bspatch at a
 * time.
 */
export class BspatchScratch {
  readonly piece = Buffer.allocUnsafe(BSPATCH_PIECE);
  private diff = Buffer.alloc(0);
  /** Times the diff buffer was (re)allocated: a test counts reuse. */
  grown = 0;

  /** Reads a block's `n` diff bytes into the kept buffer (valid until the next block). */
  async readDiff(r: ByteReader, n: number): Promise<Buffer> {
    if (n > this.diff.length) {
      this.diff = Buffer.allocUnsafe(Math.min(BSDIFF_BLOCK, Math.max(n, 2 * this.diff.length, BSPATCH_PIECE)));
      this.grown++;
    }
    return r.readInto(this.diff.subarray(0, n), 'the diff bytes');
  }
}

/**
 * Applies a bsdiff delta to `ref`, yielding exactly `size` output bytes in pieces of BSPATCH_PIECE
 * (the last one shorter). The delta is read to its end: a payload's next record follows it.
 * `signal` is checked at every block (at most BSDIFF_BLOCK bytes of output apart). Given a
 * `scratch`, its buffers are used: every piece is its one piece buffer, valid until the next is
 * asked for (for a consumer that copies what it keeps: no garbage per piece or block); without,
 * each piece is the consumer's to keep.
 */
export async function* bspatch(ref: Uint8Array, delta: AsyncIterable<Uint8Array>, size: number, signal?: AbortSignal, scratch?: BspatchScratch): AsyncGenerator<Uint8Array> {
  const r = deltaReader(delta);
  const out = new Pieces(scratch?.piece);
  const diffs = scratch ?? new BspatchScratch();
  let done = 0;
  let pos = 0;
  while (done < size) {
    signal?.throwIfAborted();
    const b = await readControl(r, size - done);
    const diff = await diffs.readDiff(r, b.addTotal);
    for (let i = 0, d = 0; i < b.seek.length; i++) {
      const add = b.add[i]!;
      const extra = b.extra[i]!;
      pos += b.seek[i]!;
      if (pos < 0 || pos + add > ref.length) throw bad(`reference range ${pos}+${add} is outside the ${ref.length}-byte reference`);
      for (let k = 0; k < add; ) {
        k += out.add(ref, pos + k, diff, d + k, add - k);
        if (out.room() === 0) yield out.take();
      }
      for (let k = 0; k < extra; ) {
        k += await copyExtra(r, out, extra - k);
        if (out.room() === 0) yield out.take();
      }
      pos += add;
      d += add;
      done += add + extra;
    }
  }
  if (!(await r.atEnd())) throw bad('bytes after the last block');
  if (out.used > 0) yield out.take();
}
