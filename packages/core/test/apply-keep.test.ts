/**
 * The slab of stashed members (apply-keep.ts): bounded by KEEP_BYTES, each body taken once, the
 * slab reused from its start only when every body in it was taken.
 */
import { describe, expect, it } from 'vitest';
import { KEEP_BYTES, KeptBodies } from '../src/bundle/apply-keep.js';

function filled(k: KeptBodies, hex: string, size: number, byte: number): Buffer | undefined {
  const b = k.reserve(size);
  if (!b) return undefined;
  b.fill(byte);
  k.keep(hex, b);
  return b;
}

describe('KeptBodies', () => {
  it('keeps bodies up to KEEP_BYTES, hands each out once, with its size only', () => {
    const k = new KeptBodies();
    expect(filled(k, 'a', KEEP_BYTES / 2, 1)).toBeDefined();
    expect(filled(k, 'b', KEEP_BYTES / 2, 2)).toBeDefined();
    expect(k.reserve(1)).toBeUndefined();
    expect(k.take('a', KEEP_BYTES / 2 + 1)).toBeUndefined();
    expect(k.take('a', KEEP_BYTES / 2)?.every((x) => x === 1)).toBe(true);
    expect(k.take('a', KEEP_BYTES / 2)).toBeUndefined();
    // 'b' still held: the slab is not reused under it
    expect(k.reserve(1)).toBeUndefined();
    expect(k.take('b', KEEP_BYTES / 2)?.every((x) => x === 2)).toBe(true);
    expect(k.size).toBe(0);
    expect(filled(k, 'c', KEEP_BYTES, 3)).toBeDefined();
    expect(k.take('c', KEEP_BYTES)?.every((x) => x === 3)).toBe(true);
  });

  it('a digest kept twice keeps its first body', () => {
    const k = new KeptBodies();
    filled(k, 'd', 10, 4);
    filled(k, 'd', 10, 5);
    expect(k.take('d', 10)?.every((x) => x === 4)).toBe(true);
    expect(k.take('d', 10)).toBeUndefined();
  });
});
