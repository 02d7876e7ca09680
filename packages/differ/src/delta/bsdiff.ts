/**
 * bsdiff encoder (Colin Percival, "Naive differences of executable code", 2003): a suffix-array
 * diff whose output is raw, uncompressed control, diff and extra bytes, in the delta format that
 * core's bspatch.ts defines and decodes. ferry carries it as payload body kind 5 (core payload.ts)
 * and leaves compression to the payload frame: the diff bytes (target minus reference, mostly
 * zeros where code only moved) compress far better when one zstd stream sees every file of a layer
 * together (DESIGN.md section 5, "Encoding cost"). Publisher-only (DESIGN.md section 3). The
 * encoder is deterministic.
 */
import { BSDIFF_BLOCK, VARINT_MAX_BYTES, writeUvarint, zigzagEncode } from '@ferry/core';
import { SuffixIndex, type Match } from './suffix-index.js';

/**
 * Largest reference the differ sorts for bsdiff; above it the differ offers only zstd patch-from.
 * Suffix sorting takes about 0.3 s of CPU per MiB of reference on a small machine and about 10
 * bytes of memory per reference byte: a 16 MiB reference diffs in about 5 s within 320 MB.
 */
export const BSDIFF_MAX_REFERENCE = 16 * 1024 * 1024;

/** Matches longer than this that do not beat the current alignment are skipped by halves (see scan). */
const SKIP_MATCH = 64;

/**
 * Longest backward extension of a match. Without a bound, periodic inputs make every new match
 * reach back to the previous one and the scan quadratic; real edits never extend this far back.
 */
const BACK_MAX = 16 * 1024;

/** A canonical triple list: for each, where the add run starts in the reference, its length and the extra length. */
interface Triples {
  from: number[];
  add: number[];
  extra: number[];
}

/** Growable output buffer with varint writers. */
class ByteWriter {
  private buf: Uint8Array;
  length = 0;

  constructor(capacity: number) {
    this.buf = new Uint8Array(Math.max(capacity, 64));
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  /** Reserves n bytes and returns the buffer and the offset to write them at. */
  take(n: number): { buf: Uint8Array; at: number } {
    this.reserve(n);
    const at = this.length;
    this.length += n;
    return { buf: this.buf, at };
  }

  uvarint(v: number): void {
    this.reserve(VARINT_MAX_BYTES);
    this.length = writeUvarint(this.buf, this.length, v);
  }

  zvarint(v: number): void {
    this.uvarint(zigzagEncode(v));
  }

  /** The written bytes, in a buffer of their own (a worker posts it without the spare capacity). */
  finish(): Uint8Array {
    return this.buf.length === this.length ? this.buf : this.buf.slice(0, this.length);
  }
}

/**
 * The bsdiff delta that turns `ref` into `target` (format in this file's header). Any sizes work;
 * the differ keeps references under BSDIFF_MAX_REFERENCE because suffix sorting is the slow part.
 */
export function bsdiff(ref: Uint8Array, target: Uint8Array): Uint8Array {
  return serialize(ref, target, scan(ref, target, new SuffixIndex(ref)));
}

/** How far the previous match extends forwards with more than half its bytes equal. */
function forwardLength(ref: Uint8Array, target: Uint8Array, lastScan: number, lastPos: number, scan: number): number {
  let s = 0;
  let best = 0;
  let lenF = 0;
  for (let i = 0; lastScan + i < scan && lastPos + i < ref.length; ) {
    if (ref[lastPos + i] === target[lastScan + i]) s++;
    i++;
    if (s * 2 - i > best * 2 - lenF) {
      best = s;
      lenF = i;
    }
  }
  return lenF;
}

/** How far the next match extends backwards with more than half its bytes equal. */
function backwardLength(ref: Uint8Array, target: Uint8Array, lastScan: number, scan: number, pos: number): number {
  let s = 0;
  let best = 0;
  let lenB = 0;
  for (let i = 1; scan >= lastScan + i && pos >= i && i <= BACK_MAX; i++) {
    if (ref[pos - i] === target[scan - i]) s++;
    if (s * 2 - i > best * 2 - lenB) {
      best = s;
      lenB = i;
    }
  }
  return lenB;
}

/** Where to cut when the forward and backward extensions overlap: returns how many overlap bytes go forwards. */
function overlapSplit(ref: Uint8Array, target: Uint8Array, fStart: number, fPos: number, bStart: number, bPos: number, overlap: number): number {
  let s = 0;
  let best = 0;
  let lens = 0;
  for (let i = 0; i < overlap; i++) {
    if (target[fStart + i] === ref[fPos + i]) s++;
    if (target[bStart + i] === ref[bPos + i]) s--;
    if (s > best) {
      best = s;
      lens = i + 1;
    }
  }
  return lens;
}

/**
 * How the stretch of target from the previous match (at lastScan, reference lastPos) to the new one
 * (at `at`, reference `pos`) divides: the previous match extended forwards by lenF, the new one
 * backwards by lenB, and extra bytes between them.
 */
function extensions(ref: Uint8Array, target: Uint8Array, lastScan: number, lastPos: number, at: number, pos: number): { lenF: number; lenB: number } {
  let lenF = forwardLength(ref, target, lastScan, lastPos, at);
  let lenB = at < target.length ? backwardLength(ref, target, lastScan, at, pos) : 0;
  if (lastScan + lenF > at - lenB) {
    const overlap = lastScan + lenF - (at - lenB);
    const lens = overlapSplit(ref, target, lastScan + lenF - overlap, lastPos + lenF - overlap, at - lenB, pos - lenB, overlap);
    lenF += lens - overlap;
    lenB -= lens;
  }
  return { lenF, lenB };
}

/** The bsdiff scan: matches found by suffix search, extended both ways while more than half the bytes agree. */
function scan(ref: Uint8Array, target: Uint8Array, index: SuffixIndex): Triples {
  const t: Triples = { from: [], add: [], extra: [] };
  const m: Match = { pos: 0, len: 0 };
  let at = 0, len = 0, pos = 0, lastScan = 0, lastPos = 0, lastOffset = 0;
  while (at < target.length) {
    let oldScore = 0;
    let scsc = (at += len);
    while (at < target.length) {
      index.search(target, at, m);
      len = m.len;
      pos = m.pos;
      for (; scsc < at + len; scsc++) if (scsc + lastOffset < ref.length && ref[scsc + lastOffset] === target[scsc]) oldScore++;
      // a match clearly better than continuing the previous alignment starts a new triple
      if ((len === oldScore && len !== 0) || len > oldScore + 8) break;
      // slide past one byte, or past half of a long match the current alignment nearly covers:
      // bounds the work on long repetitive runs (bsdiff's quadratic case) at no real cost in size
      const step = len > SKIP_MATCH ? len >> 1 : 1;
      for (const end = at + step; at < end; at++) if (at + lastOffset < ref.length && ref[at + lastOffset] === target[at]) oldScore--;
    }
    if (len !== oldScore || at === target.length) {
      const { lenF, lenB } = extensions(ref, target, lastScan, lastPos, at, pos);
      const extra = at - lenB - (lastScan + lenF);
      if (lenF + extra > 0) {
        t.from.push(lastPos);
        t.add.push(lenF);
        t.extra.push(extra);
      }
      lastScan = at - lenB;
      lastPos = pos - lenB;
      lastOffset = pos - at;
    }
  }
  return t;
}

/** Cuts triples into blocks of at most BSDIFF_BLOCK output bytes and writes them. */
class BlockEncoder {
  private readonly seek: number[] = [];
  private readonly from: number[] = [];
  private readonly add: number[] = [];
  private readonly extra: number[] = [];
  private used = 0;
  private refPos = 0;
  private start = 0;

  constructor(
    private readonly ref: Uint8Array,
    private readonly target: Uint8Array,
    private readonly w: ByteWriter,
  ) {}

  /** One triple; a triple that crosses a block boundary is split (a split add run continues with seek 0). */
  push(from: number, add: number, extra: number): void {
    while (add + extra > 0) {
      if (this.used === BSDIFF_BLOCK) this.flush();
      const space = BSDIFF_BLOCK - this.used;
      const a = Math.min(add, space);
      const e = Math.min(extra, space - a);
      this.seek.push(from - this.refPos);
      this.from.push(from);
      this.add.push(a);
      this.extra.push(e);
      this.refPos = from + a;
      from += a;
      add -= a;
      extra -= e;
      this.used += a + e;
    }
  }

  /** Writes the pending block: its control triples, then its diff bytes, then its extra bytes. */
  flush(): void {
    const n = this.seek.length;
    if (n === 0) return;
    const { ref, target, w } = this;
    w.uvarint(n);
    for (let i = 0; i < n; i++) {
      w.zvarint(this.seek[i]!);
      w.uvarint(this.add[i]!);
      w.uvarint(this.extra[i]!);
    }
    for (let i = 0, at = this.start; i < n; i++) {
      const a = this.add[i]!;
      const f = this.from[i]!;
      const { buf, at: o } = w.take(a);
      for (let k = 0; k < a; k++) buf[o + k] = target[at + k]! - ref[f + k]!;
      at += a + this.extra[i]!;
    }
    for (let i = 0, at = this.start; i < n; i++) {
      at += this.add[i]!;
      const e = this.extra[i]!;
      const { buf, at: o } = w.take(e);
      buf.set(target.subarray(at, at + e), o);
      at += e;
    }
    this.start += this.used;
    this.used = 0;
    for (const a of [this.seek, this.from, this.add, this.extra]) a.length = 0;
  }
}

function serialize(ref: Uint8Array, target: Uint8Array, t: Triples): Uint8Array {
  const w = new ByteWriter(target.length + t.add.length * 8 + 16);
  const enc = new BlockEncoder(ref, target, w);
  for (let i = 0; i < t.add.length; i++) enc.push(t.from[i]!, t.add[i]!, t.extra[i]!);
  enc.flush();
  return w.finish();
}
