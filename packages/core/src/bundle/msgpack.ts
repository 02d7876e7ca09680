/** msgpack decoding with limits set before reading (DESIGN.md section 8). */
import { decode, encode } from '@msgpack/msgpack';
import { FerryError } from '../errors.js';

/** Decoder limits. */
export interface MsgpackLimits {
  maxStrLength: number;
  maxBinLength: number;
  maxArrayLength: number;
  maxMapLength: number;
}

/** Decodes one msgpack document under limits; anything malformed is FERRY_ERR_MSGPACK_INVALID. */
export function decodeLimited(bytes: Uint8Array, limits: MsgpackLimits, what: string): unknown {
  try {
    return decode(bytes, { ...limits, maxExtLength: 0 });
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
