/**
 * Whole-body reads of stored contents for the patch workers, without per-piece garbage.
 *
 * `Store.openContent` streams a body in fresh 128 KiB pieces read through a fresh read-stream
 * chunk each; in a worker that sketches thousands of bodies, that garbage waited for the collector
 * in the thread's malloc arena, and glibc kept the arena's high-water mark resident for the rest of
 * the bundle (~35-55 MB per worker in `/proc/PID/smaps`). Here core's readContentInto reads the
 * compressed file into a buffer reused per slot and decodes it in one call into the caller's buffer.
 */
import { readContentInto, type Digest, type Store } from '@ferry/core';
import { largeBuffer } from './large-buffer.js';

/** A body named by digest, with its size. */
export interface BodyRef {
  digest: Digest;
  size: number;
}

/** Largest compressed buffer a slot keeps between reads (larger ones are dropped with the read). */
const PACKED_KEEP = 1024 * 1024;
/** Compressed bytes, one reused buffer per slot (reads in one slot never overlap). */
const packed: Buffer[] = [Buffer.alloc(0), Buffer.alloc(0)];

function frameBuffer(slot: 0 | 1, n: number): Buffer {
  if (packed[slot]!.length >= n) return packed[slot]!.subarray(0, n);
  if (n > PACKED_KEEP) return largeBuffer(n);
  return (packed[slot] = Buffer.allocUnsafeSlow(n));
}

/**
 * Decodes the stored body into `out` (exactly `body.size` bytes). With `verify` the body is
 * re-hashed. Missing: FERRY_ERR_OBJECT_MISSING; corrupt, another size or another digest:
 * FERRY_ERR_OBJECT_CORRUPT.
 */
export async function readBodyInto(store: Store, body: BodyRef, out: Uint8Array, slot: 0 | 1, verify = true): Promise<void> {
  readContentInto(store, body.digest, out, (n) => frameBuffer(slot, n), verify);
}

/**
 * Copies bytes [`from`, `from + out.length`) of the stored body into `out`. A stored body is one
 * zstd frame, so the whole body is decoded into a buffer of the read's own, dropped on return:
 * a caller that holds only a range between reads (a segmented job's window and segment while
 * it patches) pays for the whole body only during the read. Not re-hashed: the caller has
 * verified the body once whole; errors as readBodyInto.
 */
export async function readBodyRange(store: Store, body: BodyRef, from: number, out: Uint8Array, slot: 0 | 1): Promise<void> {
  if (from < 0 || from + out.length > body.size) throw new RangeError(`bytes [${from}, ${from + out.length}) of a ${body.size}-byte body`);
  const whole = largeBuffer(body.size);
  await readBodyInto(store, body, whole, slot, false);
  out.set(whole.subarray(from, from + out.length));
}
