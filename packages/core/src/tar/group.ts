/**
 * Describing a complete header group (pax/GNU long-name blocks, the member header, GNU sparse
 * extension blocks) held in memory: the applier rebuilds skeleton entries from header bytes the
 * bundle carries, and needs the same facts the splitter reads while streaming.
 */
import { FerryError } from '../errors.js';
import { BLOCK, isZeroBlock, parseHeader, parsePax, pathString } from './header.js';

/** Facts of one member. */
export interface MemberInfo {
  path: string;
  type: string;
  linkname?: string | undefined;
  /** Body bytes that follow the group in the tar. */
  size: number;
}

const HEADER_ONLY = new Set(['1', '2', '3', '4', '5', '6']);

function cstr(b: Buffer): Buffer {
  const i = b.indexOf(0);
  return i === -1 ? b : b.subarray(0, i);
}

/** Parses a header group; it must hold exactly one member header (plus its metadata blocks). */
export function parseHeaderGroup(group: Buffer): MemberInfo {
  if (group.length === 0 || group.length % BLOCK !== 0) throw new FerryError('FERRY_ERR_TAR_BAD_HEADER', `a header group is ${group.length} bytes, not a positive multiple of 512`);
  let pos = 0;
  let pax = new Map<string, Buffer>();
  let longName: Buffer | undefined;
  let longLink: Buffer | undefined;
  while (pos < group.length) {
    const block = group.subarray(pos, pos + BLOCK);
    if (isZeroBlock(block)) throw new FerryError('FERRY_ERR_TAR_BAD_HEADER', 'a header group holds a zero block');
    const h = parseHeader(block, pos);
    pos += BLOCK;
    if (h.type === 'x' || h.type === 'g' || h.type === 'L' || h.type === 'K') {
      const end = pos + Math.ceil(h.size / BLOCK) * BLOCK;
      if (end > group.length) throw new FerryError('FERRY_ERR_TAR_TRUNCATED', 'a header group ends inside metadata');
      const data = group.subarray(pos, pos + h.size);
      if (h.type === 'x') pax = new Map([...pax, ...parsePax(data)]);
      else if (h.type === 'L') longName = cstr(data);
      else if (h.type === 'K') longLink = cstr(data);
      pos = end;
      continue;
    }
    let extended = h.gnuSparseExtended;
    while (extended) {
      if (pos + BLOCK > group.length) throw new FerryError('FERRY_ERR_TAR_TRUNCATED', 'a header group ends inside sparse extension blocks');
      extended = group[pos + 504] !== 0;
      pos += BLOCK;
    }
    if (pos !== group.length) throw new FerryError('FERRY_ERR_TAR_BAD_HEADER', 'a header group has blocks after its member header');
    const paxSize = pax.get('size');
    let size = paxSize !== undefined ? Number(paxSize.toString('latin1')) : h.size;
    if (!Number.isSafeInteger(size) || size < 0) throw new FerryError('FERRY_ERR_TAR_BAD_HEADER', 'a member has a bad size');
    if (HEADER_ONLY.has(h.type)) size = 0;
    const link = pax.get('linkpath') ?? longLink ?? h.linkname;
    // GNU.sparse.name wins over path, as in the splitter (skeleton.ts)
    return { path: pathString(pax.get('GNU.sparse.name') ?? pax.get('path') ?? longName ?? h.name), type: h.type, linkname: link.length > 0 ? pathString(link) : undefined, size };
  }
  throw new FerryError('FERRY_ERR_TAR_BAD_HEADER', 'a header group has no member header');
}

/** Length of the zero padding that follows a body of `size` bytes. */
export function paddingAfter(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Offsets of the member and metadata header blocks in a header group (not their data blocks). */
export function headerBlockOffsets(group: Buffer): number[] {
  const out: number[] = [];
  let pos = 0;
  while (pos + BLOCK <= group.length) {
    const block = group.subarray(pos, pos + BLOCK);
    if (isZeroBlock(block)) break;
    out.push(pos);
    const type = String.fromCharCode(block[156]!);
    let size = 0;
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      try {
        size = parseHeader(block, pos).size;
      } catch {
        break;
      }
    }
    pos += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return out;
}

/**
 * Rewrites the checksum field of every header block in `group`, formatted like the same field in
 * `template` (same digit count and terminator bytes): header patches then need not carry checksums,
 * which change whenever any field does. Returns false when a value does not fit the template's
 * format (the caller then keeps the checksum bytes in the patch).
 */
export function recomputeChecksums(group: Buffer, template: Buffer): boolean {
  for (const off of headerBlockOffsets(group)) {
    const field = template.subarray(off + 148, off + 156);
    let digits = 0;
    while (digits < 8 && field[digits]! >= 0x30 && field[digits]! <= 0x37) digits++;
    if (digits === 0) return false;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : group[off + i]!;
    const text = sum.toString(8).padStart(digits, '0');
    if (text.length > digits) return false;
    group.write(text, off + 148, 'latin1');
    field.copy(group, off + 148 + digits, digits, 8);
  }
  return true;
}
