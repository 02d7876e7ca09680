/**
 * Large binary-looking files and their next versions, generated deterministically, for segmented
 * patch tests (docs/format.md section 5.4): a file over PATCH_SPAN_MAX whose new version shifts
 * and edits the old bytes, as a new release of a large shared library does.
 */
import { seededBytes } from './images.js';

/** An old "library" of `size` bytes: seeded 64 KiB blocks with runs of NULs (binary-looking). */
export function largeLibrary(seed: string, size: number): Buffer {
  const blocks: Buffer[] = [];
  for (let at = 0, i = 0; at < size; at += 64 * 1024, i++) {
    const b = seededBytes(`${seed}/${i}`, Math.min(64 * 1024, size - at));
    b.fill(0, 0, Math.min(512, b.length));
    blocks.push(b);
  }
  return Buffer.concat(blocks);
}

/**
 * Its new version: new bytes inserted at the front and in the middle, a stretch deleted further on
 * (every later byte shifts), a few edits.
 */
export function nextLibrary(old: Buffer, seed: string, inserted: number): Buffer {
  const q = Math.floor(old.length / 4);
  const shifted = Buffer.concat([old.subarray(0, q), seededBytes(`${seed}/middle`, inserted >> 1), old.subarray(q, 2 * q), old.subarray(2 * q + (inserted >> 2))]);
  const out = Buffer.concat([seededBytes(`${seed}/front`, inserted), shifted]);
  const edits = seededBytes(`${seed}/edits`, 64);
  for (let i = 0; i < 16; i++) out.writeUInt32LE(edits.readUInt32LE(i * 4), (edits.readUInt32LE(i * 4) * 7919) % (out.length - 4));
  return out;
}
