/**
 * The one tar header-group parser. A header group is everything from the end of one member's body
 * to the start of the next: pax ('x', 'g') and GNU long-name ('L', 'K') metadata members with their
 * data, the member header, and GNU old-sparse extension blocks. HeaderGroupParser is fed the group
 * piece by piece and says what it needs next, so the same code serves the streaming splitter
 * (skeleton.ts), groups held in memory (parseHeaderGroup: the applier and `bundle inspect` rebuild
 * entries from header bytes a bundle carries), a docker archive's index (image/blobs.ts) and the
 * checksum recomputation of patched headers (headerBlockOffsets).
 */
import { FerryError } from '../errors.js';
import { BLOCK, isZeroBlock, parseHeader, parsePax, pathString, type TarHeader } from './header.js';

/** Facts of one member. */
export interface MemberInfo {
  path: string;
  type: string;
  linkname?: string | undefined;
  /** Body bytes that follow the group in the tar. */
  size: number;
}

/** What the parser needs next: a header block (which the caller first checks is not a zero block), a GNU sparse extension block, or a metadata member's data padded to whole blocks. */
export interface GroupNeed {
  kind: 'header' | 'sparse' | 'meta';
  bytes: number;
}

/** Parser settings. */
export interface GroupParserOptions {
  /** Offset of the group in its tar, for error messages (default 0). */
  offset?: number;
  /** Largest pax or GNU long-name data accepted (default 1 MiB): FERRY_ERR_LIMIT_EXCEEDED above it. */
  maxMetaSize?: number;
  /** Verify header checksums (default true; false only to find blocks whose checksums are to be recomputed). */
  checksums?: boolean;
}

/** Typeflags that never carry data whatever their size field says (as Go's archive/tar reads them). */
const HEADER_ONLY = new Set(['1', '2', '3', '4', '5', '6']);
const META = new Set(['x', 'g', 'L', 'K']);

/** Whole blocks that hold n bytes. */
export function padded(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

/** Length of the zero padding that follows a body of `size` bytes. */
export function paddingAfter(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function cstr(b: Buffer): Buffer {
  const i = b.indexOf(0);
  return i === -1 ? b : b.subarray(0, i);
}

/** Parses one header group as it is fed; see the file header. */
export class HeaderGroupParser {
  /** Offsets in the group of its header blocks (metadata and member headers, not data or sparse blocks). */
  readonly headerOffsets: number[] = [];
  private readonly offset: number;
  private readonly maxMeta: number;
  private readonly checksums: boolean;
  private need: GroupNeed | undefined = { kind: 'header', bytes: BLOCK };
  private pos = 0;
  private meta: TarHeader | undefined;
  private member: TarHeader | undefined;
  private pax = new Map<string, Buffer>();
  private longName: Buffer | undefined;
  private longLink: Buffer | undefined;

  constructor(options: GroupParserOptions = {}) {
    this.offset = options.offset ?? 0;
    this.maxMeta = options.maxMetaSize ?? 1024 * 1024;
    this.checksums = options.checksums ?? true;
  }

  /** What push() takes next; undefined once the member header (and its sparse blocks) is in. */
  next(): GroupNeed | undefined {
    return this.need;
  }

  /** Bytes fed so far. */
  get length(): number {
    return this.pos;
  }

  /** Feeds exactly next().bytes bytes. Malformed: FERRY_ERR_TAR_BAD_HEADER or FERRY_ERR_LIMIT_EXCEEDED. */
  push(bytes: Buffer): void {
    const need = this.need;
    if (!need || bytes.length !== need.bytes) throw new FerryError('FERRY_ERR_INTERNAL', `header group parser fed ${bytes.length} bytes, wanted ${need?.bytes ?? 0}`);
    const at = this.pos;
    this.pos += bytes.length;
    if (need.kind === 'header') this.header(bytes, at);
    else if (need.kind === 'sparse') this.need = bytes[504] !== 0 ? need : undefined;
    else this.metaData(bytes);
  }

  private header(block: Buffer, at: number): void {
    const h = parseHeader(block, this.offset + at, { checksum: this.checksums });
    this.headerOffsets.push(at);
    if (META.has(h.type)) {
      if (h.size > this.maxMeta) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `tar ${h.type} header data at byte ${this.offset + at} is ${h.size} bytes, over the ${this.maxMeta} limit`);
      this.meta = h;
      this.need = { kind: 'meta', bytes: padded(h.size) };
      if (h.size === 0) this.metaData(Buffer.alloc(0));
      return;
    }
    this.member = h;
    this.need = h.gnuSparseExtended ? { kind: 'sparse', bytes: BLOCK } : undefined;
  }

  private metaData(data: Buffer): void {
    const h = this.meta!;
    const body = data.subarray(0, h.size);
    if (h.type === 'x') this.pax = new Map([...this.pax, ...parsePax(body)]);
    else if (h.type === 'L') this.longName = cstr(body);
    else if (h.type === 'K') this.longLink = cstr(body);
    this.meta = undefined;
    this.need = { kind: 'header', bytes: BLOCK };
  }

  /** The member the group describes (pax and GNU long names applied); only once next() is undefined. */
  result(): MemberInfo {
    const h = this.member;
    if (!h || this.need) throw new FerryError('FERRY_ERR_INTERNAL', 'header group read before it was complete');
    const paxSize = this.pax.get('size');
    let size = paxSize !== undefined ? Number(paxSize.toString('latin1')) : h.size;
    if (!Number.isSafeInteger(size) || size < 0) throw new FerryError('FERRY_ERR_TAR_BAD_HEADER', `tar entry at byte ${this.offset} has a bad size`);
    if (HEADER_ONLY.has(h.type)) size = 0;
    // GNU sparse 0.1/1.0 (pax format) store the member under a made-up "GNUSparseFile.N/" name and
    // the real one in GNU.sparse.name, which wins over path (GNU tar and Go's archive/tar read it so)
    const path = pathString(this.pax.get('GNU.sparse.name') ?? this.pax.get('path') ?? this.longName ?? h.name);
    const link = this.pax.get('linkpath') ?? this.longLink ?? h.linkname;
    return { path, type: h.type, linkname: link.length > 0 ? pathString(link) : undefined, size };
  }
}

/** Parses a header group held in memory; it must hold exactly one member header (plus its metadata blocks). */
export function parseHeaderGroup(group: Buffer): MemberInfo {
  if (group.length === 0 || group.length % BLOCK !== 0) throw new FerryError('FERRY_ERR_TAR_BAD_HEADER', `a header group is ${group.length} bytes, not a positive multiple of 512`);
  const p = new HeaderGroupParser({ maxMetaSize: group.length });
  for (let need = p.next(); need; need = p.next()) {
    if (need.kind === 'header' && p.length === group.length) throw new FerryError('FERRY_ERR_TAR_BAD_HEADER', 'a header group has no member header');
    if (p.length + need.bytes > group.length) throw new FerryError('FERRY_ERR_TAR_TRUNCATED', `a header group ends inside ${need.kind === 'meta' ? 'metadata' : 'sparse extension blocks'}`);
    const piece = group.subarray(p.length, p.length + need.bytes);
    if (need.kind === 'header' && isZeroBlock(piece)) throw new FerryError('FERRY_ERR_TAR_BAD_HEADER', 'a header group holds a zero block');
    p.push(piece);
  }
  if (p.length !== group.length) throw new FerryError('FERRY_ERR_TAR_BAD_HEADER', 'a header group has blocks after its member header');
  return p.result();
}

/**
 * Offsets of the metadata and member header blocks in a header group, without verifying their
 * checksums (they are about to be recomputed). Stops quietly where the group cannot be parsed.
 */
export function headerBlockOffsets(group: Buffer): number[] {
  const p = new HeaderGroupParser({ checksums: false, maxMetaSize: group.length });
  try {
    for (let need = p.next(); need && p.length + need.bytes <= group.length; need = p.next()) {
      const piece = group.subarray(p.length, p.length + need.bytes);
      if (need.kind === 'header' && isZeroBlock(piece)) break;
      p.push(piece);
    }
  } catch {
    // what parsed so far is all there is to fix
  }
  return p.headerOffsets;
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
