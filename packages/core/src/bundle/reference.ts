/**
 * Reference sets (docs/format.md section 5.3): a patch reference made of several baseline bodies
 * concatenated in the order the set names them. The differ picks the bodies; the applier checks
 * the whole set against a cap both sides share before reading a byte (DESIGN.md section 5
 * "Matching", section 8 "limits set before reading"), then its DeltaDecoder (apply-delta.ts) reads
 * the parts one after the other into one buffer.
 */
import { FerryError } from '../errors.js';
import type { Digest } from '../util/digest.js';

/** Most entries a reference set or a group may name (each costs a few bytes to hold). */
export const REFERENCE_SET_MAX_ENTRIES = 65_536;

/** One body of a reference set as the applier's baseline table knows it. */
export interface ReferencePart {
  digest?: Digest | undefined;
  size: number;
}

function bad(msg: string): FerryError {
  return new FerryError('FERRY_ERR_BUNDLE_INVALID', `payload is malformed: ${msg}`);
}

/** Packs unsigned 32-bit integers (entry indexes, member sizes) little-endian, 4 bytes each. */
export function packU32(values: readonly number[]): Uint8Array {
  const out = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => out.writeUInt32LE(v, i * 4));
  return out;
}

/**
 * Unpacks what packU32 wrote, refusing a list that is empty, ragged or longer than
 * REFERENCE_SET_MAX_ENTRIES before allocating anything.
 */
export function unpackU32(bytes: Uint8Array, what: string): number[] {
  if (bytes.length === 0 || bytes.length % 4 !== 0) throw bad(`${what} is not a list of 4-byte integers`);
  const n = bytes.length / 4;
  if (n > REFERENCE_SET_MAX_ENTRIES) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `${what} names ${n} items, over the ${REFERENCE_SET_MAX_ENTRIES} limit`);
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = view.readUInt32LE(i * 4);
  return out;
}

/**
 * Checks a set against the baseline table (or a layer's earlier entries) before anything is read:
 * every index names an entry (`lookup` returns undefined past the table's end), no entry is named twice, every entry has a
 * body, and the bodies add up to at most `maxBytes`. Returns the parts in set order and their
 * total size. Repeated, out-of-range or bodiless entries are FERRY_ERR_BUNDLE_INVALID; a set over
 * the cap is FERRY_ERR_LIMIT_EXCEEDED.
 */
export function resolveReferenceSet(indexes: readonly number[], lookup: (i: number) => ReferencePart | undefined, maxBytes: number): { parts: ReferencePart[]; size: number } {
  if (indexes.length > REFERENCE_SET_MAX_ENTRIES) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `reference set names ${indexes.length} entries, over the ${REFERENCE_SET_MAX_ENTRIES} limit`);
  const seen = new Set<number>();
  const parts: ReferencePart[] = [];
  let size = 0;
  for (const i of indexes) {
    if (seen.has(i)) throw bad(`reference set names entry ${i} twice`);
    seen.add(i);
    const p = lookup(i);
    if (!p) throw bad(`reference set names entry ${i}, which does not exist`);
    if (!p.digest || p.size <= 0) throw bad(`reference set names entry ${i}, which has no body`);
    size += p.size;
    if (size > maxBytes) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `reference set exceeds the ${maxBytes}-byte patch reference cap`, { details: { maxBytes } });
    parts.push(p);
  }
  return { parts, size };
}
