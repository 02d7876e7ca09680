import { FerryError } from '../errors.js';

/**
 * Pull-style reader over an async byte source: read exact byte counts or stream a span, without
 * buffering more than one upstream chunk. Used by the tar splitter and the bundle readers.
 */
export class ByteReader {
  private readonly it: AsyncIterator<Uint8Array>;
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  /** Bytes consumed so far. */
  position = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.it.next();
    if (next.done) {
      this.done = true;
      return false;
    }
    const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    return true;
  }

  /** Reads up to `n` bytes; fewer only at end of input. */
  async readUpTo(n: number): Promise<Buffer> {
    while (this.buf.length < n && (await this.fill()));
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    this.position += out.length;
    return out;
  }

  /** Reads exactly `n` bytes or throws `truncatedCode`. */
  async readExactly(n: number, what = 'input'): Promise<Buffer> {
    const out = await this.readUpTo(n);
    if (out.length < n) throw new FerryError('FERRY_ERR_TAR_TRUNCATED', `${what} ended after ${this.position} bytes, in the middle of an entry`);
    return Buffer.from(out);
  }

  /** Yields exactly `n` bytes as they arrive (slices of upstream chunks); throws if input ends. */
  async *stream(n: number, what = 'input'): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill())) {
        throw new FerryError('FERRY_ERR_TAR_TRUNCATED', `${what} ended after ${this.position} bytes, in the middle of an entry`);
      }
      const take = Math.min(left, this.buf.length);
      const out = this.buf.subarray(0, take);
      this.buf = this.buf.subarray(take);
      this.position += take;
      left -= take;
      yield out;
    }
  }

  /** Everything that remains, as chunks. */
  async *rest(): AsyncGenerator<Buffer> {
    if (this.buf.length > 0) {
      const b = this.buf;
      this.buf = Buffer.alloc(0);
      this.position += b.length;
      yield b;
    }
    while (await this.fill()) {
      const b = this.buf;
      this.buf = Buffer.alloc(0);
      this.position += b.length;
      yield b;
    }
  }
}
