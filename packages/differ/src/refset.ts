/**
 * Choosing a reference set (DESIGN.md section 5, "Matching"; docs/format.md section 5.3): from the
 * candidate bodies (the unit's baseline files, each member's same-path or renamed file, and the
 * unit's bodies this layer already carried), greedily take the one that holds the most target
 * fingerprints not yet held, until the byte cap, or until what a candidate adds no longer pays
 * for the bytes the device must load and the publisher must index (about 1 held fingerprint per
 * 4 KiB loaded). The classic greedy for budgeted coverage.
 */

/** A candidate body. */
export interface Candidate {
  /** A unique, stable number (a baseline entry index, or past the table for bodies of the target). */
  index: number;
  size: number;
  sketch: Uint32Array;
  /** A structural match of a member (same or renamed path): taken when it fits even without fingerprints (small files have few). */
  prior: boolean;
  /** Positions in the target sketch this candidate holds, when already known (SketchIndex). */
  hits?: Int32Array | undefined;
}

/** The chosen set. */
export interface ReferenceChoice<C extends Candidate = Candidate> {
  /** The chosen candidates in set order: the best-covering body last, nearest the target in the patch window. */
  set: C[];
  bytes: number;
  /** Target fingerprints covered, and their total. */
  covered: number;
  total: number;
}

/** Below this many fingerprints a structural match is taken on trust (its sketch says too little). */
const FEW_FINGERPRINTS = 8;
/** A candidate must cover at least 1 fingerprint per this many of its bytes to be loaded. */
const BYTES_PER_FINGERPRINT = 4096;

/** Positions in the sorted `target` of the fingerprints the sorted `sketch` shares with it. */
export function hitsOf(target: Uint32Array, sketch: Uint32Array): Int32Array {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < target.length && j < sketch.length) {
    const x = target[i]!;
    const y = sketch[j]!;
    if (x === y) {
      out.push(i);
      i++;
      j++;
    } else if (x < y) i++;
    else j++;
  }
  return Int32Array.from(out);
}

/**
 * An inverted index over many sketches (fingerprint -> candidate ids), so the candidates sharing
 * content with a target are found without comparing it with each: two typed arrays sorted by
 * fingerprint (8 bytes a fingerprint, whatever the number of candidates).
 */
export class SketchIndex {
  private readonly prints: Uint32Array;
  private readonly ids: Int32Array;
  /** One more than the largest id. */
  private readonly idCount: number;

  /** `entries`: candidate ids (0 <= id < 2^21) and their sketches. */
  constructor(entries: Iterable<{ id: number; sketch: Uint32Array }>) {
    const list = [...entries];
    this.idCount = list.reduce((a, e) => Math.max(a, e.id + 1), 0);
    const keys = new Float64Array(list.reduce((a, e) => a + e.sketch.length, 0));
    let n = 0;
    // fingerprint * 2^21 + id is exact in a double (53 bits): one numeric sort orders both
    for (const e of list) for (const fp of e.sketch) keys[n++] = fp * 2097152 + e.id;
    keys.sort();
    this.prints = new Uint32Array(n);
    this.ids = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const fp = Math.floor(keys[i]! / 2097152);
      this.prints[i] = fp;
      this.ids[i] = keys[i]! - fp * 2097152;
    }
  }

  /** For each candidate sharing fingerprints with `target` (and accepted by `eligible`), the positions it holds. */
  hits(target: Uint32Array, eligible: (id: number) => boolean): Map<number, Int32Array> {
    // two passes over the postings: count per candidate, then fill exactly sized arrays
    const counts = new Int32Array(this.idCount);
    this.scan(target, eligible, (id) => counts[id]!++);
    const arrays: (Int32Array | undefined)[] = [];
    const out = new Map<number, Int32Array>();
    counts.forEach((n, id) => {
      if (n === 0) return;
      arrays[id] = new Int32Array(n);
      out.set(id, arrays[id]);
    });
    counts.fill(0);
    this.scan(target, eligible, (id, t) => {
      arrays[id]![counts[id]!++] = t;
    });
    return out;
  }

  private scan(target: Uint32Array, eligible: (id: number) => boolean, visit: (id: number, t: number) => void): void {
    let lo = 0;
    for (let t = 0; t < target.length; t++) {
      const fp = target[t]!;
      lo = this.lowerBound(fp, lo);
      for (let i = lo; i < this.prints.length && this.prints[i] === fp; i++) {
        const id = this.ids[i]!;
        if (eligible(id)) visit(id, t);
      }
    }
  }

  /** First position at or after `from` whose fingerprint is >= fp (targets are sorted, so searches only move forward). */
  private lowerBound(fp: number, from: number): number {
    let lo = from;
    let hi = this.prints.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.prints[mid]! < fp) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

interface Scored<C extends Candidate> {
  c: C;
  hits: Int32Array;
  /** Held fingerprints not yet covered, as of the last count (only ever falls). */
  gain: number;
}

function gainOf(hits: Int32Array, covered: Uint8Array): number {
  let g = 0;
  for (const h of hits) if (covered[h] === 0) g++;
  return g;
}

/** Orders candidates best first: more gain, then fewer bytes, then the lower index. */
function compare(a: Scored<Candidate>, b: Scored<Candidate>): number {
  return b.gain - a.gain || a.c.size - b.c.size || a.c.index - b.c.index;
}

/** A binary max-heap of candidates by `compare`. */
class Heap<T extends Scored<Candidate>> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  push(x: T): void {
    const a = this.items;
    a.push(x);
    for (let i = a.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (compare(a[i]!, a[p]!) >= 0) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  peek(): T | undefined {
    return this.items[0];
  }

  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && compare(a[l]!, a[m]!) < 0) m = l;
        if (r < a.length && compare(a[r]!, a[m]!) < 0) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Picks a set for a target whose (union) sketch is `target`, within `cap` bytes. Lazy greedy:
 * gains only fall as coverage grows, so a candidate whose recount still beats every other's last
 * count is the best. A candidate that no longer fits the cap, or whose gain no longer pays for its
 * size, never will again and is dropped. Deterministic: ties go to the smaller, then the
 * lower-numbered, candidate.
 */
export function chooseReferenceSet<C extends Candidate>(target: Uint32Array, candidates: readonly C[], cap: number): ReferenceChoice<C> {
  const covered = new Uint8Array(target.length);
  const heap = new Heap<Scored<C>>();
  for (const c of candidates) {
    if (c.size <= 0 || c.size > cap) continue;
    const hits = c.hits ?? hitsOf(target, c.sketch);
    if (hits.length > 0) heap.push({ c, hits, gain: hits.length });
  }
  const taken: C[] = [];
  let bytes = 0;
  let count = 0;
  while (heap.size > 0) {
    const s = heap.pop()!;
    if (bytes + s.c.size > cap) continue;
    s.gain = gainOf(s.hits, covered);
    if (s.gain === 0 || s.gain * BYTES_PER_FINGERPRINT < s.c.size) continue;
    const next = heap.peek();
    if (next && compare(next, s) < 0) {
      heap.push(s);
      continue;
    }
    for (const h of s.hits) covered[h] = 1;
    count += s.gain;
    bytes += s.c.size;
    taken.push(s.c);
  }
  // structural matches too small to carry fingerprints still help their own member
  for (const c of candidates) {
    if (!c.prior || taken.includes(c) || c.size <= 0 || bytes + c.size > cap || c.sketch.length >= FEW_FINGERPRINTS) continue;
    taken.push(c);
    bytes += c.size;
  }
  return { set: taken.reverse(), bytes, covered: count, total: target.length };
}
