/**
 * Seeded randomness for the link emulator: a run with the same seed replays the same outages,
 * resets and corrupted byte positions, so a failure seen once can be reproduced.
 */

/** A generator of floats in [0, 1). */
export type Random = () => number;

/** mulberry32: small, fast, and good enough to place outages and bit flips. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed derived from a parent seed and a few integers (one stream per connection and direction). */
export function deriveSeed(seed: number, ...parts: number[]): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
  }
  return h;
}

/** An exponentially distributed duration with the given mean (a Poisson process's gaps). */
export function exponential(random: Random, mean: number): number {
  return -Math.log(1 - random()) * mean;
}

/**
 * Gap to the next event of a Bernoulli process with probability `p` per trial (at least 1):
 * the number of bytes until the next corrupted one.
 */
export function geometricGap(random: Random, p: number): number {
  if (p >= 1) return 1;
  return Math.floor(Math.log(1 - random()) / Math.log(1 - p)) + 1;
}
