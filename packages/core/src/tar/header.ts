/**
 * Reading fields from tar header blocks (POSIX ustar, pax, GNU, v7). ferry never re-encodes a
 * header: skeletons keep the original blocks (DESIGN.md section 2), so this module only reads.
 */
import { FerryError } from '../errors.js';

export const BLOCK = 512;

/** Header fields ferry needs; raw bytes stay in the skeleton. */
export interface TarHeader {
  /** Typeflag as a one-character string ('0', '5', 'x', 'L', ...; '\0' for old regular files). */
  type: string;
  /** Path bytes from the header (ustar prefix joined), before any pax/GNU long-name override. */
  name: Buffer;
  linkname: Buffer;
  mode: number;
  size: number;
  /** GNU old sparse: more sparse-map blocks follow this header. */
  gnuSparseExtended: boolean;
}

/** True when all 512 bytes are zero. */
export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i += 8) if (block.readBigUInt64LE(i) !== 0n) return false;
  return true;
}

function cstring(block: Buffer, off: number, len: number): Buffer {
  const end = block.indexOf(0, off);
  return block.subarray(off, end === -1 || end > off + len ? off + len : end);
}

/** Parses an octal or GNU base-256 numeric field. */
export function parseNumeric(block: Buffer, off: number, len: number): number {
  const first = block[off]!;
  if (first & 0x80) {
    // base-256: big-endian two's complement, top bit of the first byte is the marker
    const negative = (first & 0x40) !== 0;
    let value = 0;
    for (let i = 0; i < len; i++) {
      let byte = block[off + i]!;
      if (i === 0) byte &= 0x7f;
      if (negative) byte = ~byte & 0xff;
      value = value * 256 + byte;
    }
    if (!Number.isSafeInteger(value)) throw new FerryError('FERRY_ERR_TAR_BAD_HEADER', 'numeric field out of range');
    return negative ? -(value + 1) : value;
  }
  const text = block.toString('latin1', off, off + len).replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new FerryError('FERRY_ERR_TAR_BAD_HEADER', `bad octal field ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

function checksumOk(block: Buffer): boolean {
  const stored = parseNumeric(block, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

/**
 * Decodes a non-zero header block; throws FERRY_ERR_TAR_BAD_HEADER on a bad checksum or field.
 * `checksum: false` skips the checksum (for blocks whose checksums are about to be recomputed).
 */
export function parseHeader(block: Buffer, offset: number, options: { checksum?: boolean } = {}): TarHeader {
  let ok = options.checksum === false;
  try {
    ok ||= checksumOk(block);
  } catch {
    ok = false;
  }
  if (!ok) throw new FerryError('FERRY_ERR_TAR_BAD_HEADER', `tar header at byte ${offset} has a bad checksum`, { details: { offset } });
  const magic = block.toString('latin1', 257, 263);
  let name = cstring(block, 0, 100);
  if (magic === 'ustar\0') {
    // POSIX ustar: a 155-byte prefix precedes the name; GNU tars use that area for other fields
    const prefix = cstring(block, 345, 155);
    if (prefix.length > 0) name = Buffer.concat([prefix, Buffer.from('/'), name]);
  }
  const type = String.fromCharCode(block[156]!);
  try {
    return {
      type,
      name,
      linkname: cstring(block, 157, 100),
      mode: parseNumeric(block, 100, 8),
      size: parseNumeric(block, 124, 12),
      gnuSparseExtended: type === 'S' && block[482] !== 0,
    };
  } catch (err) {
    throw new FerryError('FERRY_ERR_TAR_BAD_HEADER', `tar header at byte ${offset}: ${(err as Error).message}`, { cause: err, details: { offset } });
  }
}

/** Parses pax extended header records ("len key=value\n"); values stay as bytes. */
export function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const len = parseInt(data.toString('latin1', pos, space), 10);
    if (!Number.isSafeInteger(len) || len <= 0 || pos + len > data.length) {
      throw new FerryError('FERRY_ERR_TAR_BAD_HEADER', 'malformed pax record');
    }
    const record = data.subarray(space + 1, pos + len - 1); // drop trailing newline
    const eq = record.indexOf(0x3d);
    if (eq !== -1) out.set(record.toString('utf8', 0, eq), record.subarray(eq + 1));
    pos += len;
  }
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A path's bytes as a string: UTF-8 where valid, else each byte >= 0x80 escaped as `\xNN` (and `\`
 * as `\\`), so non-UTF-8 names stay distinct and printable. Paths are data, never host paths.
 */
export function pathString(bytes: Uint8Array): string {
  try {
    const s = utf8.decode(bytes);
    return s.includes('\\') ? s.replace(/\\/g, '\\\\') : s;
  } catch {
    let out = '';
    for (const b of bytes) out += b === 0x5c ? '\\\\' : b >= 0x80 ? `\\x${b.toString(16).padStart(2, '0')}` : String.fromCharCode(b);
    return out;
  }
}

/** Normalises a layer path for comparisons: no leading "./" or "/", no trailing "/". */
export function normalizePath(p: string): string {
  let s = p;
  while (s.startsWith('./')) s = s.slice(2);
  s = s.replace(/^\/+/, '').replace(/\/+$/, '');
  return s === '.' ? '' : s;
}
