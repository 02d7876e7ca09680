import { describe, expect, it } from 'vitest';
import { zstdCompressStream, zstdDecompressInto } from '@ferry/core';
import { seededText } from '@ferry/test-support';

/** A frame that does not declare its content size (a stream's, as `ferry import` stores contents). */
async function streamFrame(data: Buffer): Promise<Buffer> {
  const z = zstdCompressStream();
  const parts: Buffer[] = [];
  z.on('data', (b: Buffer) => parts.push(b));
  const done = new Promise((resolve) => z.on('end', resolve));
  z.end(data);
  await done;
  return Buffer.concat(parts);
}

describe('zstdDecompressInto', () => {
  it('decodes a frame without a declared size in one call; output over the buffer is FERRY_ERR_LIMIT_EXCEEDED, a cut frame FERRY_ERR_ZSTD_CORRUPT', async () => {
    const data = Buffer.from(seededText('into', 3 << 20));
    const frame = await streamFrame(data);
    const dst = Buffer.alloc(data.length + 100);
    expect(zstdDecompressInto(frame, dst)).toBe(data.length);
    expect(Buffer.compare(dst.subarray(0, data.length), data)).toBe(0);
    expect(() => zstdDecompressInto(frame, Buffer.alloc(data.length - 1))).toThrow(expect.objectContaining({ code: 'FERRY_ERR_LIMIT_EXCEEDED' }));
    expect(() => zstdDecompressInto(frame.subarray(0, frame.length - 10), dst)).toThrow(expect.objectContaining({ code: 'FERRY_ERR_ZSTD_CORRUPT' }));
    expect(() => zstdDecompressInto(Buffer.alloc(0), dst)).toThrow(expect.objectContaining({ code: 'FERRY_ERR_ZSTD_CORRUPT' }));
  });
});
