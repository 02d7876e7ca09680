/**
 * Buffers of a patch job that are larger than the C heap should keep. glibc serves a request
 * under its mmap threshold from the thread's arena, which keeps freed space resident, and raises
 * that threshold (up to 32 MiB on 64-bit) to the size of each mapped chunk it frees: after one
 * 30 MB body buffer was freed, every later buffer under 30 MB came from the arena and stayed
 * there. A buffer mapped over that maximum is always mapped and unmapped on free, and freeing it
 * never raises the threshold; pages past `size` are never touched, so cost no RSS.
 */

/** Over glibc's largest dynamic mmap threshold (DEFAULT_MMAP_THRESHOLD_MAX, 32 MiB on 64-bit). */
const ALWAYS_MAPPED = 32 * 1024 * 1024 + 4096;

/** An uninitialized buffer of `size` bytes, mapped on its own (see above), freed once collected. */
export function largeBuffer(size: number): Buffer {
  return Buffer.allocUnsafeSlow(Math.max(size, ALWAYS_MAPPED)).subarray(0, size);
}
