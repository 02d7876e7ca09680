/**
 * Streaming application of a bsdiff delta (format in bsdiff.ts). Memory is the reference plus one
 * block's control triples and diff bytes (at most BSDIFF_BLOCK) plus one output piece: extra bytes
 * are copied into the output as they arrive. Anything malformed (truncated, a seek outside the reference, more or
 * fewer bytes than `size`, trailing bytes) is FERRY_ERR_BUNDLE_INVALID.
 */
import { FerryError } from '../errors.js';
import { BSDIFF_BLOCK } from './bsdiff.js';

/** Largest piece bspatch yields. */
export const BSPATCH_PIECE = 64 * 1024;

function bad(msg: string): FerryError {
  return new FerryError('FERRY_ERR_BUNDLE_INVALID', `bsdiff delta is malformed: ${msg}`);
}

/** Pull reader over the delta's chunks. */
class DeltaReader {
  private readonly it: AsyncIterator<Uint8Array>;
  private buf: Uint8Array = new Uint8Array(0);
  private off = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** Makes at least one unread byte available; false at the end of the delta. */
  private async fill(): Promise<boolean> {
    while (this.off >= this.buf.length) {
      const r = await this.it.next();
      if (r.done) return false;
      this.buf = r.value;
      this.off = 0;
    }
    return true;
  }

  async uvarint(): Promise<number> {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.off >= this.buf.length && !(await this.fill())) throw bad('truncated in a control triple');
      const b = this.buf[this.off++]!;
      v += (b & 0x7f) * mul;
      if (v > Number.MAX_SAFE_INTEGER) throw bad('varint is too large');
      if (b < 0x80) return v;
      mul *= 0x80;
    }
    throw bad('varint is too long');
  }

  async zvarint(): Promise<number> {
    const v = await this.uvarint();
    return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
  }

  /** Exactly n bytes, copied into one buffer. */
  async bytes(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    for (let got = 0; got < n; ) {
      if (!(await this.fill())) throw bad('truncated in the diff bytes');
      const take = Math.min(n - got, this.buf.length - this.off);
      out.set(this.buf.subarray(this.off, this.off + take), got);
      this.off += take;
      got += take;
    }
    return out;
  }

  /** Copies up to n bytes (at least one) into `out`; returns how many. */
  async copyInto(out: Pieces, n: number): Promise<number> {
    if (!(await this.fill())) throw bad('truncated in the extra bytes');
    const take = Math.min(n, this.buf.length - this.off, out.room());
    out.piece.set(this.buf.subarray(this.off, this.off + take), out.used);
    out.used += take;
    this.off += take;
    return take;
  }

  /** Throws unless the delta is used up. */
  async end(): Promise<void> {
    if (await this.fill()) throw bad('bytes after the last block');
  }
}

/** One block's control triples. */
interface Block {
  seek: number[];
  add: number[];
  extra: number[];
  addTotal: number;
}

async function readControl(r: DeltaReader, left: number): Promise<Block> {
  const n = await r.uvarint();
  if (n < 1 || n > BSDIFF_BLOCK) throw bad(`block of ${n} triples`);
  const b: Block = { seek: [], add: [], extra: [], addTotal: 0 };
  let total = 0;
  for (let i = 0; i < n; i++) {
    const seek = await r.zvarint();
    const add = await r.uvarint();
    const extra = await r.uvarint();
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
  piece = Buffer.allocUnsafe(BSPATCH_PIECE);
  used = 0;

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

  /** The filled part of the piece; a fresh piece takes its place (consumers may keep what they get). */
  take(): Buffer {
    const p = this.piece.subarray(0, this.used);
    this.piece = Buffer.allocUnsafe(BSPATCH_PIECE);
    this.used = 0;
    return p;
  }
}

/**
 * Applies a bsdiff delta to `ref`, yielding exactly `size` output bytes in pieces of BSPATCH_PIECE
 * (the last one shorter). The delta is read to its end: a payload's next record follows it.
 * `signal` is checked at every block (at most BSDIFF_BLOCK bytes of output apart).
 */
export async function* bspatch(ref: Uint8Array, delta: AsyncIterable<Uint8Array>, size: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const r = new DeltaReader(delta);
  const out = new Pieces();
  let done = 0;
  let pos = 0;
  while (done < size) {
    signal?.throwIfAborted();
    const b = await readControl(r, size - done);
    const diff = await r.bytes(b.addTotal);
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
        k += await r.copyInto(out, extra - k);
        if (out.room() === 0) yield out.take();
      }
      pos += add;
      d += add;
      done += add + extra;
    }
  }
  await r.end();
  if (out.used > 0) yield out.take();
}
