/**
 * The one varint codec of ferry's formats: unsigned LEB128 (7 bits a byte, least significant
 * first, the top bit set on every byte but the last) and zigzag for signed values. The bsdiff
 * delta (docs/format.md section 5.2) and the header byte patch (section 5) both use it.
 *
 * One overflow rule, for every decoder: a value must be a safe integer (at most
 * Number.MAX_SAFE_INTEGER, so at most VARINT_MAX_BYTES bytes) and at most the caller's cap, and
 * its encoding must be the shortest one (no trailing zero groups: `80 00` is not a 0). Anything
 * else is refused with the caller's error, so a value never wraps and one number has one encoding.
 */

/** Longest encoding of a safe integer: ceil(53 / 7) bytes. */
export const VARINT_MAX_BYTES = 8;

/** Makes the error a malformed varint is reported with (decoders add no code of their own). */
export type VarintError = (reason: string) => Error;

function checkEncodable(v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint value ${v} is not a safe non-negative integer`);
}

/**
 * Writes `v` as LEB128 at `out[at]` and returns the offset after it. `out` is a byte array with
 * room for VARINT_MAX_BYTES more bytes, or a number[] that grows. A value that is not a safe
 * non-negative integer is a RangeError (a bug in the encoder, not bad input).
 */
export function writeUvarint(out: Uint8Array | number[], at: number, v: number): number {
  checkEncodable(v);
  while (v >= 0x80) {
    out[at++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[at++] = v;
  return at;
}

/** Bytes the LEB128 encoding of `v` takes. */
export function uvarintLength(v: number): number {
  checkEncodable(v);
  let n = 1;
  for (; v >= 0x80; n++) v = Math.floor(v / 0x80);
  return n;
}

/** Zigzag: 0, -1, 1, -2, ... become 0, 1, 2, 3, ... (RangeError when the result is not safe). */
export function zigzagEncode(v: number): number {
  const u = v >= 0 ? v * 2 : -v * 2 - 1;
  if (!Number.isSafeInteger(v) || !Number.isSafeInteger(u)) throw new RangeError(`zigzag of ${v} is not a safe integer`);
  return u;
}

/** Inverse of zigzagEncode. */
export function zigzagDecode(u: number): number {
  return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
}

/** A decoded varint: its value and the offset after it. */
export interface Decoded {
  value: number;
  next: number;
}

/**
 * Reads one LEB128 varint from `buf` at `at`, by the rule in this file's header: `bad` makes the
 * error for a truncated, over-long, non-minimal or too large encoding. `max` is the caller's cap
 * (default Number.MAX_SAFE_INTEGER).
 */
export function readUvarint(buf: Uint8Array, at: number, bad: VarintError, max = Number.MAX_SAFE_INTEGER): Decoded {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < VARINT_MAX_BYTES; i++) {
    if (at + i >= buf.length) throw bad('truncated varint');
    const b = buf[at + i]!;
    value += (b & 0x7f) * mul;
    if (value > max) throw bad(`varint ${value} is over the cap of ${max}`);
    if (b < 0x80) {
      if (b === 0 && i > 0) throw bad('varint is not in its shortest form');
      return { value, next: at + i + 1 };
    }
    mul *= 0x80;
  }
  throw bad(`varint is longer than ${VARINT_MAX_BYTES} bytes`);
}
