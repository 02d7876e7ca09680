/**
 * Choosing a reference set (DESIGN.md section 5, "Matching"; docs/format.md section 5.3): from the
 * candidate baseline bodies (the unit's files, each member's same-path or renamed file), greedily
 * take the one that covers the most target fingerprints not yet covered, until the byte cap, or
 * until what a candidate adds no longer pays for the bytes the device must load and the publisher
 * must index (about 1 covered byte per 64 loaded). A classic greedy for budgeted coverage.
 */
import { shared } from './sketch.js';

/** A candidate body. */
export interface Candidate {
  /** Baseline entry index. */
  index: number;
  size: number;
  sketch: Uint32Array;
  /** A structural match of a member (same or renamed path): taken when it fits even without fingerprints (small files have few). */
  prior: boolean;
}

/** The chosen set. */
export interface ReferenceChoice {
  /** Entry indexes in set order: the best-covering body last, nearest the target in the patch window. */
  set: number[];
  bytes: number;
  /** Target fingerprints covered, and their total. */
  covered: number;
  total: number;
}

/** Below this many fingerprints a structural match is taken on trust (its sketch says too little). */
const FEW_FINGERPRINTS = 8;
/** A candidate must cover at least 1 fingerprint per this many of its bytes to be loaded. */
const BYTES_PER_FINGERPRINT = 4096;

interface Scored {
  c: Candidate;
  /** Positions in the target sketch this candidate holds. */
  hits: Int32Array;
  gain: number;
}

function hitsOf(target: Uint32Array, sketch: Uint32Array): Int32Array {
  const out = new Int32Array(shared(target, sketch));
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < target.length && j < sketch.length) {
    const x = target[i]!;
    const y = sketch[j]!;
    if (x === y) {
      out[n++] = i;
      i++;
      j++;
    } else if (x < y) i++;
    else j++;
  }
  return out;
}

function gainOf(s: Scored, covered: Uint8Array): number {
  let g = 0;
  for (const h of s.hits) if (covered[h] === 0) g++;
  return g;
}

/**
 * Picks a set for a target whose (union) sketch is `target`, within `cap` bytes. Deterministic:
 * ties go to the smaller, then the earlier, entry.
 */
export function chooseReferenceSet(target: Uint32Array, candidates: readonly Candidate[], cap: number): ReferenceChoice {
  const covered = new Uint8Array(target.length);
  const pool: Scored[] = candidates.filter((c) => c.size > 0 && c.size <= cap).map((c) => {
    const hits = hitsOf(target, c.sketch);
    return { c, hits, gain: hits.length };
  });
  const taken: Candidate[] = [];
  let bytes = 0;
  let count = 0;
  for (;;) {
    let best: Scored | undefined;
    for (const s of pool) {
      if (s.gain === 0 || bytes + s.c.size > cap) continue;
      s.gain = gainOf(s, covered);
      if (!best || s.gain > best.gain || (s.gain === best.gain && (s.c.size < best.c.size || (s.c.size === best.c.size && s.c.index < best.c.index)))) best = s;
    }
    if (!best || best.gain === 0 || best.gain * BYTES_PER_FINGERPRINT < best.c.size) break;
    for (const h of best.hits) covered[h] = 1;
    count += best.gain;
    bytes += best.c.size;
    taken.push(best.c);
    best.gain = 0;
  }
  // structural matches too small to carry fingerprints still help their own member
  for (const c of candidates) {
    if (!c.prior || taken.includes(c) || c.size <= 0 || bytes + c.size > cap || c.sketch.length >= FEW_FINGERPRINTS) continue;
    taken.push(c);
    bytes += c.size;
  }
  return { set: taken.reverse().map((c) => c.index), bytes, covered: count, total: target.length };
}
