import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { FerryError } from '../errors.js';

/** A content digest in OCI form: `sha256:` followed by 64 lowercase hex digits. */
export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/** True when `s` is a well-formed sha256 digest. */
export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && DIGEST_RE.test(s);
}

/** Returns `s` as a Digest or throws FERRY_ERR_DIGEST_INVALID. */
export function parseDigest(s: unknown, what = 'digest'): Digest {
  if (!isDigest(s)) throw new FerryError('FERRY_ERR_DIGEST_INVALID', `${what} is not a sha256 digest: ${JSON.stringify(s)}`);
  return s;
}

/** The 64 hex digits of a digest. */
export function digestHex(d: Digest): string {
  return d.slice(7);
}

/** sha256 of bytes as a Digest. */
export function sha256(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Digest from a finished hash object. */
export function hashToDigest(h: Hash): Digest {
  return `sha256:${h.digest('hex')}`;
}

/** Raw 32 bytes of a digest (for compact binary encodings). */
export function digestToBytes(d: Digest): Uint8Array {
  return Buffer.from(digestHex(d), 'hex');
}

/** Digest from its raw 32 bytes. */
export function bytesToDigest(b: Uint8Array): Digest {
  if (b.length !== 32) throw new FerryError('FERRY_ERR_DIGEST_INVALID', `a raw sha256 digest is 32 bytes, got ${b.length}`);
  return `sha256:${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')}`;
}

/**
 * A pass-through stream that hashes and counts what flows. After it ends, `digest` and `size`
 * hold the result; `expect` (optional) makes it fail at the end on a mismatch. With
 * `countOnly`, it only counts (a size check where the digest is verified elsewhere).
 */
export class HashingStream extends Transform {
  private readonly hash = createHash('sha256');
  size = 0;
  digest: Digest | undefined;

  constructor(private readonly expect?: { digest?: Digest; size?: number; what?: string; countOnly?: boolean }) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (!this.expect?.countOnly) this.hash.update(chunk);
    this.size += chunk.length;
    if (this.expect?.size !== undefined && this.size > this.expect.size) {
      done(new FerryError('FERRY_ERR_SIZE_MISMATCH', `${this.expect.what ?? 'stream'} is larger than the declared ${this.expect.size} bytes`));
      return;
    }
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.digest = this.expect?.countOnly ? undefined : hashToDigest(this.hash);
    const what = this.expect?.what ?? 'stream';
    if (this.expect?.size !== undefined && this.size !== this.expect.size) {
      done(new FerryError('FERRY_ERR_SIZE_MISMATCH', `${what} is ${this.size} bytes, declared ${this.expect.size}`));
      return;
    }
    if (this.expect?.digest !== undefined && this.digest !== this.expect.digest) {
      done(new FerryError('FERRY_ERR_DIGEST_MISMATCH', `${what} hashes to ${this.digest}, expected ${this.expect.digest}`, { details: { expected: this.expect.digest, actual: this.digest } }));
      return;
    }
    done();
  }
}
