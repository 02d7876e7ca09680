/**
 * Suffix array construction by induced sorting (SA-IS: Nong, Zhang and Chan, "Two Efficient
 * Algorithms for Linear Time Suffix Array Construction", 2009), after the compact formulation of
 * the AtCoder Library's `sa_is`. Each position's character and S/L type share one number (`c*2+S`,
 * 16 bits at the top level) so the random accesses of induced sorting touch one small array, and
 * LMS names live in the upper half of the suffix array as in Yuta Mori's sais. Linear time; memory
 * about 6 bytes per input byte at the top level (the 4-byte array and the 2-byte types) plus the
 * LMS positions and the recursion on at most half as many symbols. The bsdiff encoder sorts its
 * reference with it (suffix-index.ts).
 */

/** A text over the integer alphabet 0..upper. */
type Text = Uint8Array | Int32Array;

/** Characters and types: 16 bits suffice for bytes at the top level. */
type Typed = Uint16Array | Int32Array;

/**
 * The suffix array of `text`: the start offsets of its suffixes in lexicographic order, a suffix
 * that is a prefix of another sorting first. Inputs must be shorter than 2^30 bytes.
 */
export function suffixArray(text: Uint8Array): Int32Array {
  return sais(text, 255);
}

/** Sorts a short text by comparing suffixes directly. */
function naive(s: Text): Int32Array {
  const n = s.length;
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => {
    while (a < n && b < n) {
      if (s[a] !== s[b]) return s[a]! - s[b]!;
      a++;
      b++;
    }
    return a === n ? -1 : 1;
  });
  return Int32Array.from(idx);
}

/** `c*2 + 1` for S-type positions (smaller than the suffix after them), `c*2` for L-type; reuses an Int32Array input (the recursion's). */
function classify(s: Text): Typed {
  const n = s.length;
  const t = s instanceof Int32Array ? s : new Uint16Array(n);
  t[n - 1] = s[n - 1]! * 2; // the last suffix is L-type: the empty suffix after it is smaller
  for (let i = n - 2; i >= 0; i--) {
    const c = s[i]!;
    const next = t[i + 1]!;
    const nc = next >> 1;
    t[i] = c * 2 + (c < nc || (c === nc && (next & 1) === 1) ? 1 : 0);
  }
  return t;
}

/** Bucket boundaries: `sumL[c]` is where bucket c starts, `sumS[c]` where its S-type part starts. */
function buckets(t: Typed, upper: number): { sumL: Int32Array; sumS: Int32Array } {
  const sumL = new Int32Array(upper + 2);
  const sumS = new Int32Array(upper + 2);
  for (let i = 0; i < t.length; i++) {
    const v = t[i]!;
    if ((v & 1) === 0) sumS[v >> 1]!++;
    else sumL[(v >> 1) + 1]!++;
  }
  for (let c = 0; c <= upper; c++) {
    sumS[c]! += sumL[c]!;
    sumL[c + 1]! += sumS[c]!;
  }
  return { sumL, sumS };
}

function isLms(t: Typed, p: number): boolean {
  return p > 0 && (t[p]! & 1) === 1 && (t[p - 1]! & 1) === 0;
}

/** Induced sorting from the given (seed or sorted) LMS positions into `sa`. */
function induce(t: Typed, sumL: Int32Array, sumS: Int32Array, lms: Int32Array, sa: Int32Array): void {
  const n = t.length;
  sa.fill(-1);
  const buf = Int32Array.from(sumS);
  for (let i = 0; i < lms.length; i++) {
    const d = lms[i]!;
    sa[buf[t[d]! >> 1]!++] = d;
  }
  buf.set(sumL);
  sa[buf[t[n - 1]! >> 1]!++] = n - 1;
  for (let i = 0; i < n; i++) {
    const v = sa[i]! - 1;
    if (v < 0) continue;
    const c = t[v]!;
    if ((c & 1) === 0) sa[buf[c >> 1]!++] = v;
  }
  buf.set(sumL);
  for (let i = n - 1; i >= 0; i--) {
    const v = sa[i]! - 1;
    if (v < 0) continue;
    const c = t[v]!;
    if ((c & 1) === 1) sa[--buf[(c >> 1) + 1]!] = v;
  }
}

/** Length from LMS position p to the next LMS position (or the end). */
function lmsLength(t: Typed, p: number): number {
  let j = p + 1;
  while (j < t.length && !isLms(t, j)) j++;
  return j - p;
}

/** True when the LMS substrings at l and r (each through the next LMS position, inclusive) are equal. */
function sameLms(t: Typed, l: number, lenL: number, r: number, lenR: number): boolean {
  if (lenL !== lenR) return false;
  const n = t.length;
  for (let k = 0; k <= lenL; k++) {
    if (l + k >= n || r + k >= n || t[l + k] !== t[r + k]) return false;
  }
  return true;
}

/** Names the induced-sorted LMS substrings, sorts the reduced text, and returns the LMS positions in suffix order. */
function sortLms(t: Typed, sa: Int32Array, lms: Int32Array): Int32Array {
  const n = t.length;
  const m = lms.length;
  let k = 0;
  for (let i = 0; i < n; i++) if (isLms(t, sa[i]!)) sa[k++] = sa[i]!;
  sa.fill(-1, m);
  let name = 0;
  let prev = -1;
  let prevLen = 0;
  for (let i = 0; i < m; i++) {
    const p = sa[i]!;
    const len = lmsLength(t, p);
    if (prev < 0 || !sameLms(t, prev, prevLen, p, len)) name++;
    sa[m + (p >> 1)] = name - 1; // LMS positions are at least 2 apart, so p >> 1 is unique
    prev = p;
    prevLen = len;
  }
  const reduced = new Int32Array(m);
  for (let i = m, j = 0; i < n; i++) if (sa[i]! >= 0) reduced[j++] = sa[i]!;
  let order: Int32Array;
  if (name === m) {
    order = new Int32Array(m); // every LMS substring is distinct: its name is its rank
    for (let i = 0; i < m; i++) order[reduced[i]!] = i;
  } else {
    order = sais(reduced, name - 1);
  }
  for (let i = 0; i < m; i++) order[i] = lms[order[i]!]!;
  return order;
}

function sais(s: Text, upper: number): Int32Array {
  if (s.length < 24) return naive(s);
  const t = classify(s);
  const { sumL, sumS } = buckets(t, upper);
  let m = 0;
  for (let i = 1; i < t.length; i++) if (isLms(t, i)) m++;
  const lms = new Int32Array(m);
  for (let i = 1, k = 0; i < t.length; i++) if (isLms(t, i)) lms[k++] = i;
  const sa = new Int32Array(t.length);
  induce(t, sumL, sumS, lms, sa);
  if (m > 0) induce(t, sumL, sumS, sortLms(t, sa, lms), sa);
  return sa;
}
