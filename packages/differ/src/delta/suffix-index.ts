/**
 * Longest-match search over a reference for the bsdiff scan (bsdiff.ts): the reference's suffix
 * array (suffix-array.ts) plus a table of the suffix array range for every two-byte prefix, so a
 * search is a binary search within one small range rather than the whole array (each step of it
 * is a cache miss on a large reference).
 */
import { suffixArray } from './suffix-array.js';

/** A search result: a reference offset and the length of the match there. */
export interface Match {
  pos: number;
  len: number;
}

/**
 * Longest match a search reports. Bounds the cost of a search on long repetitive runs, where
 * thousands of suffixes share long prefixes; the bsdiff scan extends matches beyond it anyway.
 */
export const MATCH_MAX = 4096;

/** Length of the common prefix of ref[p..] and target[at..], at most `want`, known to be at least `from`. */
function common(ref: Uint8Array, p: number, target: Uint8Array, at: number, from: number, want: number): number {
  const lim = Math.min(ref.length - p, want);
  let k = from;
  while (k < lim && ref[p + k] === target[at + k]) k++;
  return k;
}

/** A sorted reference, searchable for the longest match of any target position. */
export class SuffixIndex {
  private readonly sa: Int32Array;
  /** For a two-byte prefix k: suffix array range [lo[k], hi[k]) of the suffixes starting with it; lo -1 when none. */
  private readonly lo = new Int32Array(65536).fill(-1);
  private readonly hi = new Int32Array(65536);
  /** For a byte b: some reference offset holding b, -1 when none. */
  private readonly one = new Int32Array(256).fill(-1);

  constructor(private readonly ref: Uint8Array) {
    this.sa = ref.length > 0 ? suffixArray(ref) : new Int32Array(0);
    for (let i = 0; i < this.sa.length; i++) {
      const p = this.sa[i]!;
      if (this.one[ref[p]!] === -1) this.one[ref[p]!] = p;
      if (p + 1 >= ref.length) continue;
      const k = (ref[p]! << 8) | ref[p + 1]!;
      if (this.lo[k] === -1) this.lo[k] = i;
      this.hi[k] = i + 1;
    }
  }

  /**
   * The longest match for target[at..] (at < target.length) among the reference suffixes, up to
   * MATCH_MAX bytes: a binary search for the target's place among the sorted suffixes ends between
   * two neighbours, and the longer match of the two wins (the later one on a tie). A match that
   * cannot be beaten (MATCH_MAX bytes, or to the target's end) ends the search at once. The result
   * is written into `m` (no allocation per call).
   */
  search(target: Uint8Array, at: number, m: Match): void {
    const { sa, ref } = this;
    const k = at + 1 < target.length ? (target[at]! << 8) | target[at + 1]! : -1;
    if (k < 0 || this.lo[k] === -1) {
      const p = this.one[target[at]!]!;
      m.pos = p < 0 ? 0 : p;
      m.len = p < 0 ? 0 : 1;
      return;
    }
    const want = Math.min(target.length - at, MATCH_MAX);
    let st = this.lo[k]!;
    let en = this.hi[k]! - 1;
    let lenSt = common(ref, sa[st]!, target, at, 2, want);
    let lenEn = common(ref, sa[en]!, target, at, 2, want);
    while (en - st >= 2 && lenSt < want && lenEn < want) {
      const x = (st + en) >>> 1;
      const p = sa[x]!;
      // every suffix between st and en shares min(lenSt, lenEn) bytes with the target (sorted order)
      const c = common(ref, p, target, at, Math.min(lenSt, lenEn), want);
      // the suffix sorts before the target when it ends first or has the smaller byte where they differ
      if (c < want && (p + c === ref.length || ref[p + c]! < target[at + c]!)) {
        st = x;
        lenSt = c;
      } else {
        en = x;
        lenEn = c;
      }
    }
    m.pos = lenSt > lenEn ? sa[st]! : sa[en]!;
    m.len = Math.max(lenSt, lenEn);
  }
}
