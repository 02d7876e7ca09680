/**
 * The applier's memory budget in constants (DESIGN.md section 5: an apply runs in 128 MB RSS,
 * node included). The differ takes its defaults from here, so a bundle made with the defaults is
 * always inside what every applier accepts; an applier refuses anything over them before it
 * decodes a byte (DESIGN.md section 8).
 */

/**
 * Largest baseline content a patch-from or bsdiff body may use as its reference: the applier
 * holds it in memory while the body is decoded. 16 MiB keeps the large single files that patch
 * best (compiler and framework bundles of 9-10 MB); it is also the differ's default cap. A lower
 * default was measured and not taken (8 MiB: major-bump's payload +16%, apply RSS within the
 * noise; bench/README.md, "Apply memory, session 6").
 */
export const PATCH_REFERENCE_MAX = 16 * 1024 * 1024;

/**
 * Largest zstd window of a payload frame an applier accepts, as a power of two (2^24 = 16 MiB):
 * the payload decoder's window buffer. The differ sizes each frame's window from the bytes it
 * decodes to (payloadWindowLog), so small frames cost small windows; larger frames are capped at
 * PAYLOAD_WINDOW_LOG_DEFAULT unless the publisher asks for more.
 */
export const PAYLOAD_WINDOW_LOG_MAX = 24;

/**
 * The differ's default cap on a payload frame's window (2^23 = 8 MiB): half the decoder's window
 * buffer of PAYLOAD_WINDOW_LOG_MAX for a few bytes of payload (bench/README.md, "Apply memory,
 * session 6"). Appliers accept up to PAYLOAD_WINDOW_LOG_MAX, so older bundles still apply.
 */
export const PAYLOAD_WINDOW_LOG_DEFAULT = 23;

/** Smallest window zstd accepts (2^10). */
const WINDOW_LOG_MIN = 10;

/**
 * The window a payload frame that decodes to `decodedBytes` (an upper bound) is written with: the
 * whole frame when it fits, else `cap` (default PAYLOAD_WINDOW_LOG_DEFAULT, at most PAYLOAD_WINDOW_LOG_MAX).
 */
export function payloadWindowLog(decodedBytes: number, cap = PAYLOAD_WINDOW_LOG_DEFAULT): number {
  const need = Math.ceil(Math.log2(Math.max(decodedBytes, 1)));
  return Math.min(Math.max(need, WINDOW_LOG_MIN), cap, PAYLOAD_WINDOW_LOG_MAX);
}
