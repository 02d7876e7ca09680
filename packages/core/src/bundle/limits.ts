/**
 * The applier's memory budget in constants (DESIGN.md section 5: an apply runs in 128 MB RSS,
 * node included). The differ takes its defaults from here, so a bundle made with the defaults is
 * always inside what every applier accepts; an applier refuses anything over them before it
 * decodes a byte (DESIGN.md section 8).
 */

/**
 * Largest baseline content a patch-from or bsdiff body may use as its reference: the applier
 * holds it in memory while the body is decoded. 16 MiB keeps the large single files that patch
 * best (compiler and framework bundles of 9-10 MB) while the whole apply stays under 128 MB.
 */
export const PATCH_REFERENCE_MAX = 16 * 1024 * 1024;

/**
 * Largest zstd window of a payload frame, as a power of two (2^24 = 16 MiB): the payload
 * decoder's window buffer. The differ sizes each frame's window from the bytes it decodes to
 * (payloadWindowLog), so small frames cost small windows; larger frames are capped here.
 */
export const PAYLOAD_WINDOW_LOG_MAX = 24;

/** Smallest window zstd accepts (2^10). */
const WINDOW_LOG_MIN = 10;

/**
 * The window a payload frame that decodes to `decodedBytes` (an upper bound) is written with: the
 * whole frame when it fits, else PAYLOAD_WINDOW_LOG_MAX.
 */
export function payloadWindowLog(decodedBytes: number): number {
  const need = Math.ceil(Math.log2(Math.max(decodedBytes, 1)));
  return Math.min(Math.max(need, WINDOW_LOG_MIN), PAYLOAD_WINDOW_LOG_MAX);
}
