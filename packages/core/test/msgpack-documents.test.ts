/**
 * msgpackDocuments (bundle/msgpack-scan.ts): a msgpack byte stream cut into buffers of whole
 * documents, from input chunks that are views of one buffer the source overwrites (as the payload
 * decoder's pieces are). Every cut position is tried; what comes out must decode to the documents
 * that went in, and a document over the byte cap is refused.
 */
import { decodeMulti, encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { FerryError } from '../src/index.js';
import { msgpackDocuments } from '../src/bundle/msgpack-scan.js';

const LIMITS = { maxDepth: 3, maxElements: 1024 };

/** Yields `bytes` in chunks of `n`, each copied into the same reused buffer (then overwritten). */
async function* reused(bytes: Uint8Array, n: number): AsyncGenerator<Uint8Array> {
  const buf = new Uint8Array(n);
  for (let i = 0; i < bytes.length; i += n) {
    const k = Math.min(n, bytes.length - i);
    buf.set(bytes.subarray(i, i + k));
    yield buf.subarray(0, k);
    buf.fill(0xc1); // what a reusing source leaves behind: bytes no document holds
  }
}

async function documents(bytes: Uint8Array, n: number, maxBytes = 1 << 20): Promise<unknown[]> {
  const buffers: Uint8Array[] = [];
  for await (const b of msgpackDocuments(reused(bytes, n), LIMITS, 'test', maxBytes)) buffers.push(b);
  // decoded only now: a buffer that were a view of the source's would hold 0xc1 by now; and each
  // holds whole documents only
  return buffers.flatMap((b) => [...decodeMulti(b)]);
}

const docs: unknown[] = [[1, 2, 3], new Uint8Array(3000).fill(7), [1, 5, [4, 2, 9000, 12]], 'x', 42, [2, new Uint8Array([1, 2, 3])], new Uint8Array(70_000).fill(9), [0, 0, 1]];
const stream = Buffer.concat(docs.map((d) => encode(d)));

describe('msgpackDocuments', () => {
  it('gives back every document whole, whatever the chunk size', async () => {
    for (const n of [1, 2, 3, 7, 64, 1000, 4096, 65_536, stream.length]) {
      const got = await documents(stream, n);
      expect(got.length, `chunks of ${n}`).toBe(docs.length);
      for (const [i, d] of docs.entries()) expect(Buffer.from(encode(got[i])).equals(encode(d)), `chunks of ${n}, document ${i}`).toBe(true);
    }
  });

  it('refuses a document over its byte cap: FERRY_ERR_MSGPACK_INVALID', async () => {
    const err = await documents(stream, 1000, 50_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).code).toBe('FERRY_ERR_MSGPACK_INVALID');
  });

  it('passes on the scanner refusal of a document nested too deep', async () => {
    const err = await documents(encode([[[[1]]]]), 2).catch((e: unknown) => e);
    expect((err as FerryError).code).toBe('FERRY_ERR_MSGPACK_INVALID');
  });
});
