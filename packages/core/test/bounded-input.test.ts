/**
 * The two bounds every decoder of input relies on (DESIGN.md section 8): the msgpack pre-scan
 * (nesting depth and value count, fed whole or a byte at a time) and the regular-file read of at
 * most its cap plus one byte (FIFOs, devices, directories, oversize and growing files).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode } from '@msgpack/msgpack';
import { decodeLimited, readRegularFile } from '../src/index.js';
import { MsgpackScanner, msgpackDocuments } from '../src/bundle/msgpack-scan.js';

const LENGTHS = { maxStrLength: 1 << 20, maxBinLength: 1 << 20, maxArrayLength: 1 << 20, maxMapLength: 1 << 10 };

function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

function scanCode(bytes: Uint8Array, maxDepth: number, maxElements = 1 << 20, byteAtATime = false): string {
  const s = new MsgpackScanner({ maxDepth, maxElements }, 'test');
  try {
    if (byteAtATime) for (const b of bytes) s.feed(Uint8Array.of(b));
    else s.feed(bytes);
  } catch (err) {
    return (err as { code: string }).code;
  }
  return s.atBoundary ? `ok ${s.documents}` : 'incomplete';
}

describe('msgpack pre-scan', () => {
  it('accepts exactly the allowed depth, refuses one more, whole or fed a byte at a time', () => {
    for (const byteAtATime of [false, true]) {
      expect(scanCode(encode(nested(3)), 3, 1 << 20, byteAtATime)).toBe('ok 1');
      expect(scanCode(encode(nested(4)), 3, 1 << 20, byteAtATime)).toBe('FERRY_ERR_MSGPACK_INVALID');
      // maps count as a level, and a value inside a map key counts too
      expect(scanCode(encode({ a: { b: [1] } }), 3, 1 << 20, byteAtATime)).toBe('ok 1');
      expect(scanCode(encode({ a: { b: [[1]] } }), 3, 1 << 20, byteAtATime)).toBe('FERRY_ERR_MSGPACK_INVALID');
    }
  });

  it('walks every format (str, bin, ext-free numbers, 16- and 32-bit lengths) to the right boundary', () => {
    const doc = { s: 'x'.repeat(300), b: new Uint8Array(70_000), n: [0, -1, 127, 128, -129, 65536, 2 ** 32, -(2 ** 40), 1.5, null, true, false], a: Array.from({ length: 20 }, (_, i) => i), m: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])) };
    const bytes = Buffer.concat([encode(doc), encode(doc)]);
    expect(scanCode(bytes, 2)).toBe('ok 2');
    expect(scanCode(bytes, 2, 1 << 20, true)).toBe('ok 2');
    expect(scanCode(bytes.subarray(0, bytes.length - 1), 2)).toBe('incomplete');
  });

  it('counts values per document: over the cap is refused, the next document starts again', () => {
    const doc = encode(Array.from({ length: 99 }, () => 0)); // 100 values
    expect(scanCode(Buffer.concat([doc, doc, doc]), 1, 100)).toBe('ok 3');
    expect(scanCode(encode(Array.from({ length: 100 }, () => 0)), 1, 100)).toBe('FERRY_ERR_MSGPACK_INVALID');
  });

  it('refuses type 0xc1 and ext types', () => {
    expect(scanCode(Uint8Array.of(0xc1), 4)).toBe('FERRY_ERR_MSGPACK_INVALID');
    expect(scanCode(Uint8Array.of(0xd4, 1, 0), 4)).toBe('FERRY_ERR_MSGPACK_INVALID');
    expect(scanCode(Uint8Array.of(0xc7, 1, 1, 0), 4)).toBe('FERRY_ERR_MSGPACK_INVALID');
  });

  it('16 MiB of nested one-element arrays is refused before decoding, with one code', () => {
    const deep = Buffer.alloc(16 * 1024 * 1024, 0x91);
    expect(() => decodeLimited(deep, { ...LENGTHS, maxDepth: 3 }, 'deep')).toThrow(expect.objectContaining({ code: 'FERRY_ERR_MSGPACK_INVALID' }));
    // an array32 header claiming 2^32-1 items opens one level, allocating nothing
    expect(scanCode(Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff), 1)).toBe('incomplete');
  });

  it('a stream is scanned chunk by chunk before it is handed on', async () => {
    async function* chunks(): AsyncGenerator<Uint8Array> {
      yield encode([1, [2]]);
      yield encode([[[3]]]);
    }
    const passed: number[] = [];
    const run = async (): Promise<void> => {
      for await (const c of msgpackDocuments(chunks(), { maxDepth: 2, maxElements: 16 }, 'stream', 1 << 20)) passed.push(c.length);
    };
    await expect(run()).rejects.toMatchObject({ code: 'FERRY_ERR_MSGPACK_INVALID' });
    expect(passed).toEqual([encode([1, [2]]).length]);
  });
});

describe('readRegularFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-bounded-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const opts = { what: 'test file', notRegular: 'FERRY_ERR_BUNDLE_INVALID', missing: 'FERRY_ERR_CHUNK_MISSING', tooBig: 'FERRY_ERR_CHUNK_INVALID', maxBytes: 1000 } as const;

  it('reads a file up to its cap, refuses one byte more', async () => {
    await writeFile(join(dir, 'exact'), Buffer.alloc(1000, 7));
    expect((await readRegularFile(join(dir, 'exact'), opts)).length).toBe(1000);
    await writeFile(join(dir, 'over'), Buffer.alloc(1001, 7));
    await expect(readRegularFile(join(dir, 'over'), opts)).rejects.toMatchObject({ code: 'FERRY_ERR_CHUNK_INVALID' });
    await expect(readRegularFile(join(dir, 'none'), opts)).rejects.toMatchObject({ code: 'FERRY_ERR_CHUNK_MISSING' });
  });

  it('refuses a FIFO without waiting for a writer, a device and a directory', async () => {
    const fifo = join(dir, 'fifo');
    await new Promise((r) => spawn('mkfifo', [fifo]).on('exit', r));
    await expect(readRegularFile(fifo, opts)).rejects.toMatchObject({ code: 'FERRY_ERR_BUNDLE_INVALID' });
    await expect(readRegularFile('/dev/zero', opts)).rejects.toMatchObject({ code: 'FERRY_ERR_BUNDLE_INVALID' });
    await mkdir(join(dir, 'sub'));
    await expect(readRegularFile(join(dir, 'sub'), opts)).rejects.toMatchObject({ code: 'FERRY_ERR_BUNDLE_INVALID' });
  });

  it('reads past a size of 0 (procfs files) and still stops at the cap', async () => {
    // /proc/self/status is a regular file whose stat size is 0: the read grows, bounded by the cap
    const status = await readRegularFile('/proc/self/status', { ...opts, maxBytes: 64 * 1024 });
    expect(status.toString('utf8')).toMatch(/^Name:/);
    await expect(readRegularFile('/proc/self/status', { ...opts, maxBytes: 100 })).rejects.toMatchObject({ code: 'FERRY_ERR_CHUNK_INVALID' });
  });
});
