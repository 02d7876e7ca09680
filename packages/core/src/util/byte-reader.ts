import { FerryError } from '../errors.js';
import { VARINT_MAX_BYTES, readUvarint, zigzagDecode, type VarintError } from './varint.js';

/** Options of a ByteReader. */
export interface ByteReaderOptions {
  /**
   * The error for input that ends before a read is satisfied (`what` names the input, `position`
   * is how many bytes were consumed). Default: FERRY_ERR_TAR_TRUNCATED.
   */
  truncated?: (what: string, position: number) => Error;
  /** The error for a malformed varint (util/varint.ts). Default: FERRY_ERR_BUNDLE_INVALID. */
  badVarint?: VarintError;
}

function tarTruncated(what: string, position: number): Error {
  return new FerryError('FERRY_ERR_TAR_TRUNCATED', `${what} ended after ${position} bytes, in the middle of an entry`);
}

function bundleInvalid(reason: string): Error {
  return new FerryError('FERRY_ERR_BUNDLE_INVALID', reason);
}

/**
 * The one pull-style reader over an async byte source: read exact byte counts, varints, or stream
 * a span, without buffering more than one upstream chunk (plus a partial read). Used by the tar
 * splitter and the bsdiff decoder. `close()` ends the upstream iterator (closing a file stream's
 * descriptor) when the reader is abandoned early. The source may reuse a chunk's buffer once the
 * next chunk is asked for: nothing of a chunk is read after that pull.
 */
export class ByteReader {
  private readonly it: AsyncIterator<Uint8Array>;
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  private readonly truncated: (what: string, position: number) => Error;
  private readonly badVarint: VarintError;
  /** Bytes consumed so far. */
  position = 0;

  constructor(source: AsyncIterable<Uint8Array>, options: ByteReaderOptions = {}) {
    this.it = source[Symbol.asyncIterator]();
    this.truncated = options.truncated ?? tarTruncated;
    this.badVarint = options.badVarint ?? bundleInvalid;
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    // what is left of the last chunk (a few bytes of a varint or a block) is copied before the
    // pull: a source may reuse its buffer for the next chunk (readOps's data pieces do)
    const rest = this.buf.length === 0 ? undefined : Buffer.from(this.buf);
    const next = await this.it.next();
    if (next.done) {
      this.done = true;
      if (rest) this.buf = rest;
      return false;
    }
    const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    this.buf = rest ? Buffer.concat([rest, chunk]) : chunk;
    return true;
  }

  private consume(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.position += n;
    return out;
  }

  /** Reads up to `n` bytes; fewer only at end of input. */
  async readUpTo(n: number): Promise<Buffer> {
    while (this.buf.length < n && (await this.fill()));
    return this.consume(Math.min(n, this.buf.length));
  }

  /** Reads exactly `n` bytes (a copy the caller may keep) or throws the truncation error. */
  async readExactly(n: number, what = 'input'): Promise<Buffer> {
    if (this.buf.length >= n) return Buffer.from(this.consume(n));
    // copied piece by piece into one buffer: no growing concatenation for a large n
    return this.readInto(Buffer.allocUnsafe(n), what);
  }

  /**
   * Reads exactly `into.length` bytes into `into` (a buffer the caller reuses) or throws the
   * truncation error; returns `into`.
   */
  async readInto(into: Buffer, what = 'input'): Promise<Buffer> {
    for (let got = 0; got < into.length; ) {
      const part = await this.readSome(into.length - got);
      if (part.length === 0) throw this.truncated(what, this.position);
      part.copy(into, got);
      got += part.length;
    }
    return into;
  }

  /** Between 1 and `max` bytes, as many as are buffered (a view, valid until the next read); empty at end of input. */
  async readSome(max: number): Promise<Buffer> {
    if (this.buf.length === 0 && !(await this.fill())) return this.buf;
    return this.consume(Math.min(max, this.buf.length));
  }

  /** Yields exactly `n` bytes as they arrive (slices of upstream chunks); throws if input ends. */
  async *stream(n: number, what = 'input'): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      const out = await this.readSome(left);
      if (out.length === 0) throw this.truncated(what, this.position);
      left -= out.length;
      yield out;
    }
  }

  /** One unsigned LEB128 varint, at most `max` (util/varint.ts). */
  async uvarint(max?: number): Promise<number> {
    // more input only when the varint may run past what is buffered (a fill can copy a whole chunk)
    while (this.buf.length < VARINT_MAX_BYTES && !this.varintEnds() && (await this.fill()));
    const { value, next } = readUvarint(this.buf, 0, this.badVarint, max);
    this.consume(next);
    return value;
  }

  /** True when a varint's last byte is among the buffered ones. */
  private varintEnds(): boolean {
    for (let i = 0; i < this.buf.length && i < VARINT_MAX_BYTES; i++) if (this.buf[i]! < 0x80) return true;
    return false;
  }

  /** One zigzag varint. */
  async zvarint(): Promise<number> {
    return zigzagDecode(await this.uvarint());
  }

  /** True when the input is used up. */
  async atEnd(): Promise<boolean> {
    return this.buf.length === 0 && !(await this.fill());
  }

  /** Everything that remains, as chunks. */
  async *rest(): AsyncGenerator<Buffer> {
    for (let b = await this.readSome(Infinity); b.length > 0; b = await this.readSome(Infinity)) yield b;
  }

  /** Ends the upstream iterator (idempotent): call it in `finally` when the input may be unread. */
  async close(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.buf = Buffer.alloc(0);
    await this.it.return?.();
  }
}
