/**
 * Seeded pseudo-random numbers. Everything imagegen produces is a pure function of its seeds, so
 * the same options always give byte-identical images on any machine (no Math.random, no clock).
 */

/**
 * Derives a 32-bit seed from any list of parts (FNV-1a over the joined text, then a murmur3
 * finaliser so that nearby inputs give unrelated seeds). Used to give every file body, edit and
 * name its own independent stream.
 */
export function hashSeed(...parts: ReadonlyArray<string | number>): number {
  const text = parts.join('\u001f');
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

// Typed-array word writes are only byte-identical across machines on little-endian hosts.
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

const skewTables = new Map<number, Float64Array>();

/** `(i / 4096) ** power` for 12-bit i: Math.pow per pick was the hot spot of text generation. */
function skewTable(power: number): Float64Array {
  let t = skewTables.get(power);
  if (!t) {
    t = Float64Array.from({ length: 4096 }, (_, i) => Math.pow(i / 4096, power));
    skewTables.set(power, t);
  }
  return t;
}

/** A small, fast seeded generator (mulberry32) with the helpers the generators need. */
export class Rng {
  // An Int32Array cell, not a number field: a number field outside the small-integer range is
  // boxed on every write, which made next() several times slower.
  private readonly state = new Int32Array(1);

  constructor(seed: number) {
    this.state[0] = seed | 0;
  }

  /** A fresh generator whose stream depends only on this seed and `parts`, not on call order. */
  static derive(seed: number, ...parts: ReadonlyArray<string | number>): Rng {
    return new Rng(hashSeed(seed, ...parts));
  }

  /** Next unsigned 32-bit value. */
  next(): number {
    const st = this.state;
    let t = (st[0] = (st[0]! + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform float in [0, 1). */
  float(): number {
    return this.next() / 4294967296;
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** A uniformly chosen element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.float() * items.length)];
    if (item === undefined) throw new RangeError('pick from an empty array');
    return item;
  }

  /** An element chosen with a Zipf-like bias towards the front (a few items are very common). */
  skewed<T>(items: readonly T[], power = 2.5): T {
    const item = items[Math.floor(skewTable(power)[this.next() >>> 20]! * items.length)];
    if (item === undefined) throw new RangeError('pick from an empty array');
    return item;
  }

  /** Standard normal deviate (Box-Muller). */
  normal(): number {
    const u = 1 - this.float();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.float());
  }

  /** A log-normal size around `median`, clamped to [min, max], as an integer. */
  size(median: number, min: number, max: number, spread = 0.9): number {
    const v = median * Math.exp(spread * this.normal());
    return Math.round(Math.min(max, Math.max(min, v)));
  }

  /** Fills `out` with random bytes (four per step). */
  fill(out: Uint8Array): void {
    const words = out.length >>> 2;
    if (LITTLE_ENDIAN && (out.byteOffset & 3) === 0) {
      const view = new Uint32Array(out.buffer, out.byteOffset, words);
      for (let i = 0; i < words; i++) view[i] = this.next();
    } else {
      for (let i = 0; i < words; i++) {
        const v = this.next();
        const o = i << 2;
        out[o] = v;
        out[o + 1] = v >>> 8;
        out[o + 2] = v >>> 16;
        out[o + 3] = v >>> 24;
      }
    }
    for (let i = words << 2; i < out.length; i++) out[i] = this.next() & 0xff;
  }

  /** `n` lowercase hex digits. */
  hex(n: number): string {
    let s = '';
    while (s.length < n) s += this.next().toString(16).padStart(8, '0');
    return s.slice(0, n);
  }
}
