/** msgpack decoding with limits set before reading (DESIGN.md section 8). */
import { decode, encode } from '@msgpack/msgpack';
import { FerryError } from '../errors.js';
import { MsgpackScanner, type ScanLimits } from './msgpack-scan.js';

/** Decoder limits: lengths for the decoder, depth and value count for the pre-scan. */
export interface MsgpackLimits extends Partial<ScanLimits> {
  maxStrLength: number;
  maxBinLength: number;
  maxArrayLength: number;
  maxMapLength: number;
}

/** Depth and value count when a caller sets none: more than any ferry document needs. */
const DEFAULT_SCAN: ScanLimits = { maxDepth: 8, maxElements: 1 << 20 };

/**
 * Decodes one msgpack document under limits. Depth and value count are checked by a pre-scan
 * before the decoder allocates anything; past any limit, or malformed: FERRY_ERR_MSGPACK_INVALID.
 */
export function decodeLimited(bytes: Uint8Array, limits: MsgpackLimits, what: string): unknown {
  const { maxDepth = DEFAULT_SCAN.maxDepth, maxElements = DEFAULT_SCAN.maxElements, ...lengths } = limits;
  new MsgpackScanner({ maxDepth, maxElements }, what).feed(bytes);
  try {
    return decode(bytes, { ...lengths, maxExtLength: 0 });
  } catch (err) {
    throw new FerryError('FERRY_ERR_MSGPACK_INVALID', `${what} is not valid msgpack within limits: ${(err as Error).message}`, { cause: err });
  }
}

/** Encodes deterministically (map keys in insertion order, which callers fix). */
export function encodeMsgpack(value: unknown): Uint8Array {
  return encode(value);
}

/** Shape checks that throw FERRY_ERR_MSGPACK_INVALID with the field's name. */
export const check = {
  map(v: unknown, what: string): Record<string, unknown> {
    if (!v || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) throw wrong(what, 'a map');
    return v as Record<string, unknown>;
  },
  array(v: unknown, what: string): unknown[] {
    if (!Array.isArray(v)) throw wrong(what, 'an array');
    return v;
  },
  bin(v: unknown, what: string, len?: number): Uint8Array {
    if (!(v instanceof Uint8Array) || (len !== undefined && v.length !== len)) throw wrong(what, len === undefined ? 'binary' : `${len} bytes of binary`);
    return v;
  },
  str(v: unknown, what: string): string {
    if (typeof v !== 'string') throw wrong(what, 'a string');
    return v;
  },
  uint(v: unknown, what: string): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw wrong(what, 'a non-negative integer');
    return v;
  },
};

function wrong(what: string, expected: string): FerryError {
  return new FerryError('FERRY_ERR_MSGPACK_INVALID', `${what} must be ${expected}`);
}
