/**
 * Random access to the files of an image source: a directory (OCI layout) or a tar file
 * (`docker save` archive), indexed once by reading only its headers.
 */
import { createReadStream, type Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { FerryError, isFerryError, toFerryError } from '../errors.js';
import { HeaderGroupParser, padded, type MemberInfo } from '../tar/group.js';
import { BLOCK, isZeroBlock, normalizePath } from '../tar/header.js';
import { readRegularFile } from '../util/bounded-read.js';
import { sniffCompression } from './media.js';

/** Read size for blob streams: 64 KiB reads cost about 3x the CPU of 1 MiB ones. */
const READ_CHUNK = 1024 * 1024;

/** A file-like container of named blobs. */
export interface BlobFiles {
  /** Human description for messages. */
  readonly where: string;
  has(name: string): Promise<boolean>;
  size(name: string): Promise<number>;
  /** Reads a small file whole (JSON documents), refusing more than `max` bytes. */
  read(name: string, max: number): Promise<Buffer>;
  /** Streams a file. */
  stream(name: string): Readable;
}

function missing(where: string, name: string): FerryError {
  return new FerryError('FERRY_ERR_IMAGE_MISSING_BLOB', `${where}: ${name} is missing`, { details: { name } });
}

function tooBig(where: string, name: string, max: number): FerryError {
  return new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `${where}: ${name} is over ${max} bytes`);
}

/** Files of a directory. Names are relative; ".." is refused. */
export class DirFiles implements BlobFiles {
  constructor(readonly root: string) {}
  get where(): string {
    return this.root;
  }
  private path(name: string): string {
    const n = normalizePath(name);
    if (n.split('/').includes('..')) throw new FerryError('FERRY_ERR_IMAGE_BAD_JSON', `${this.root}: path ${name} escapes the layout`);
    return join(this.root, n);
  }
  /** stat of a file in the layout; undefined when absent, FERRY_ERR_IO when it cannot be checked. */
  private async stat(name: string): Promise<Stats | undefined> {
    try {
      return await stat(this.path(name));
    } catch (err) {
      const errno = (err as NodeJS.ErrnoException).code;
      if (errno === 'ENOENT' || errno === 'ENOTDIR') return undefined;
      throw toFerryError(err, `${this.root}: checking ${name}`);
    }
  }
  async has(name: string): Promise<boolean> {
    return (await this.stat(name))?.isFile() ?? false;
  }
  async size(name: string): Promise<number> {
    const st = await this.stat(name);
    if (!st) throw missing(this.root, name);
    return st.size;
  }
  async read(name: string, max: number): Promise<Buffer> {
    return readRegularFile(this.path(name), { what: `${this.root}:`, notRegular: 'FERRY_ERR_IMAGE_MISSING_BLOB', missing: 'FERRY_ERR_IMAGE_MISSING_BLOB', maxBytes: max });
  }
  stream(name: string): Readable {
    return createReadStream(this.path(name), { highWaterMark: READ_CHUNK });
  }
}

/**
 * A header that does not parse at the start of a file that should be a tar: the file is not an
 * image (FERRY_ERR_IMAGE_NOT_FOUND), not a damaged archive.
 */
function notATar(file: string, block: Buffer, err: unknown): FerryError {
  const compressed = sniffCompression(block);
  const hint = compressed === 'none' ? '' : ` (it is ${compressed}-compressed: decompress it first)`;
  return new FerryError('FERRY_ERR_IMAGE_NOT_FOUND', `${file} is neither a directory nor a tar archive${hint}`, { cause: err });
}

interface Span {
  offset: number;
  size: number;
}

/** Reads `n` bytes of `fh` at `pos`. */
async function readAt(fh: FileHandle, pos: number, n: number): Promise<Buffer> {
  const out = Buffer.alloc(n);
  await fh.read(out, 0, n, pos);
  return out;
}

/**
 * Reads the header group at `pos` (tar/group.ts parses it): the member and where its body starts,
 * or undefined at a zero block. Metadata over 1 MiB is FERRY_ERR_LIMIT_EXCEEDED.
 */
async function readGroupAt(fh: FileHandle, file: string, pos: number, total: number): Promise<{ member: MemberInfo; body: number } | undefined> {
  const p = new HeaderGroupParser({ offset: pos, maxMetaSize: 1 << 20 });
  let at = pos;
  for (let need = p.next(); need; need = p.next()) {
    if (at + need.bytes > total) throw new FerryError('FERRY_ERR_TAR_TRUNCATED', `${file}: archive ends inside the header group at byte ${pos}`);
    const piece = await readAt(fh, at, need.bytes);
    if (need.kind === 'header' && isZeroBlock(piece)) return undefined;
    try {
      p.push(piece);
    } catch (err) {
      throw at === 0 && isFerryError(err) && err.code === 'FERRY_ERR_TAR_BAD_HEADER' ? notATar(file, piece, err) : err;
    }
    at += need.bytes;
  }
  return { member: p.result(), body: at };
}

/** Files inside an uncompressed tar archive, found by scanning its headers once. */
export class TarFiles implements BlobFiles {
  private constructor(
    readonly file: string,
    private readonly index: Map<string, Span>,
  ) {}
  get where(): string {
    return this.file;
  }

  /** Indexes the archive's regular files; a malformed archive is FERRY_ERR_TAR_*. */
  static async open(file: string): Promise<TarFiles> {
    const fh = await open(file, 'r');
    const index = new Map<string, Span>();
    try {
      const total = (await fh.stat()).size;
      let pos = 0;
      let ended = false;
      while (pos + BLOCK <= total) {
        const group = await readGroupAt(fh, file, pos, total);
        if (!group) {
          ended = true;
          break;
        }
        const { member, body } = group;
        if (body + member.size > total) throw new FerryError('FERRY_ERR_TAR_TRUNCATED', `${file}: archive ends inside ${member.path}`);
        if (member.type === '0' || member.type === '\0' || member.type === '7') index.set(normalizePath(member.path), { offset: body, size: member.size });
        pos = body + padded(member.size);
      }
      // ending at a header boundary without the zero blocks is accepted (Go's archive/tar, and so
      // `docker load`, does); ending inside a header block is a cut archive
      if (!ended && pos > 0 && pos < total) throw new FerryError('FERRY_ERR_TAR_TRUNCATED', `${file}: archive ends inside a header block at byte ${pos}`);
      if (index.size === 0) throw new FerryError('FERRY_ERR_IMAGE_NOT_FOUND', `${file} is not a docker archive (no files in it)`);
    } finally {
      await fh.close();
    }
    return new TarFiles(file, index);
  }

  private span(name: string): Span {
    const s = this.index.get(normalizePath(name));
    if (!s) throw missing(this.file, name);
    return s;
  }
  async has(name: string): Promise<boolean> {
    return this.index.has(normalizePath(name));
  }
  async size(name: string): Promise<number> {
    return this.span(name).size;
  }
  async read(name: string, max: number): Promise<Buffer> {
    const s = this.span(name);
    if (s.size > max) throw tooBig(this.file, name, max);
    const fh = await open(this.file, 'r');
    try {
      const out = Buffer.alloc(s.size);
      await fh.read(out, 0, s.size, s.offset);
      return out;
    } finally {
      await fh.close();
    }
  }
  stream(name: string): Readable {
    const s = this.span(name);
    if (s.size === 0) return createReadStream(this.file, { start: 1, end: 0 });
    return createReadStream(this.file, { start: s.offset, end: s.offset + s.size - 1, highWaterMark: READ_CHUNK });
  }
}
