import { describe, expect, it } from 'vitest';
import { errorCode, rejectionCode } from '@ferry/test-support';
import { ByteReader, FerryError, VARINT_MAX_BYTES, encodePatch, patchBytes, readUvarint, uvarintLength, writeUvarint, zigzagDecode, zigzagEncode } from '@ferry/core';

const MAX = Number.MAX_SAFE_INTEGER;
const bad = (reason: string): Error => new FerryError('FERRY_ERR_BUNDLE_INVALID', reason);

function enc(v: number): number[] {
  const out: number[] = [];
  writeUvarint(out, 0, v);
  return out;
}

/** A byte source cut into one-byte parts, so a varint straddles upstream chunks. */
async function* bytewise(bytes: number[]): AsyncGenerator<Uint8Array> {
  for (const b of bytes) yield Uint8Array.of(b);
}

describe('varint', () => {
  it('encodes the edges in the shortest LEB128 form and decodes them back', () => {
    const cases: [number, number[]][] = [
      [0, [0]],
      [1, [1]],
      [127, [0x7f]],
      [128, [0x80, 0x01]],
      [16383, [0xff, 0x7f]],
      [16384, [0x80, 0x80, 0x01]],
      [2 ** 32, [0x80, 0x80, 0x80, 0x80, 0x10]],
      [MAX, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]],
    ];
    for (const [v, bytes] of cases) {
      expect(enc(v), String(v)).toEqual(bytes);
      expect(uvarintLength(v)).toBe(bytes.length);
      expect(readUvarint(Uint8Array.from(bytes), 0, bad)).toEqual({ value: v, next: bytes.length });
    }
    expect(uvarintLength(MAX)).toBe(VARINT_MAX_BYTES);
  });

  it('writes into a byte array at an offset and reads from one', () => {
    const buf = new Uint8Array(20);
    let at = writeUvarint(buf, 3, 300);
    at = writeUvarint(buf, at, 5);
    expect(at).toBe(6);
    const first = readUvarint(buf, 3, bad);
    expect(first).toEqual({ value: 300, next: 5 });
    expect(readUvarint(buf, first.next, bad)).toEqual({ value: 5, next: 6 });
  });

  it('refuses to encode what it could not decode', () => {
    for (const v of [-1, 0.5, MAX + 1, Infinity, NaN]) expect(() => writeUvarint([], 0, v), String(v)).toThrow(RangeError);
    expect(() => zigzagEncode(MAX + 1)).toThrow(RangeError);
  });

  it('zigzag maps signed values to unsigned and back', () => {
    expect([0, -1, 1, -2, 2].map(zigzagEncode)).toEqual([0, 1, 2, 3, 4]);
    for (const v of [0, -1, 1, 1000, -1000, Math.floor(MAX / 2), -Math.floor(MAX / 2) - 1]) expect(zigzagDecode(zigzagEncode(v))).toBe(v);
    expect(() => zigzagEncode(Math.floor(MAX / 2) + 1)).toThrow(RangeError);
  });

  it('decodes by one rule: truncated, over-long, non-minimal, unsafe or over the cap is refused', () => {
    const read = (bytes: number[], max?: number): string => errorCode(() => readUvarint(Uint8Array.from(bytes), 0, bad, max));
    const invalid = 'FERRY_ERR_BUNDLE_INVALID';
    expect(read([])).toBe(invalid); // nothing there
    expect(read([0x80])).toBe(invalid); // cut after a continuation byte
    expect(read([0x80, 0x00])).toBe(invalid); // 0 in two bytes
    expect(read([0x81, 0x80, 0x00])).toBe(invalid); // 1 in three bytes
    expect(read([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x10])).toBe(invalid); // 2^53: past MAX_SAFE_INTEGER
    expect(read([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])).toBe(invalid); // nine bytes
    expect(read(Array(100).fill(0x80))).toBe(invalid); // a long run of continuation bytes stops at eight
    expect(read([0x80, 0x01], 127)).toBe(invalid); // over the caller's cap
    expect(read([0x7f], 127)).toBe('no error'); // the cap itself is allowed
  });
});

describe('ByteReader varints', () => {
  it('reads varints that straddle upstream chunks, then the bytes after them', async () => {
    const bytes = [...enc(300), ...enc(zigzagEncode(-5)), ...enc(MAX), 7, 8];
    const r = new ByteReader(bytewise(bytes));
    expect(await r.uvarint()).toBe(300);
    expect(await r.zvarint()).toBe(-5);
    expect(await r.uvarint()).toBe(MAX);
    expect([...(await r.readExactly(2))]).toEqual([7, 8]);
    expect(await r.atEnd()).toBe(true);
    expect(r.position).toBe(bytes.length);
  });

  it('reads varints that straddle the chunks of a source reusing one buffer (as readOps\'s data pieces do)', async () => {
    const bytes = [...enc(300), ...enc(MAX), ...enc(2 ** 40), 7, 8, 9];
    async function* reusing(n: number): AsyncGenerator<Uint8Array> {
      const buf = new Uint8Array(n);
      for (let i = 0; i < bytes.length; i += n) {
        const k = Math.min(n, bytes.length - i);
        buf.set(bytes.slice(i, i + k));
        yield buf.subarray(0, k);
        buf.fill(0xee); // the next chunk overwrites this one
      }
    }
    for (const n of [1, 2, 3, 5]) {
      const r = new ByteReader(reusing(n));
      expect(await r.uvarint(), `chunks of ${n}`).toBe(300);
      expect(await r.uvarint(), `chunks of ${n}`).toBe(MAX);
      expect(await r.uvarint(), `chunks of ${n}`).toBe(2 ** 40);
      expect([...(await r.readUpTo(3))], `chunks of ${n}`).toEqual([7, 8, 9]);
      expect(await r.atEnd()).toBe(true);
    }
  });

  it('reports malformed and cut varints with the reader\'s error', async () => {
    const opts = { badVarint: (reason: string): Error => new FerryError('FERRY_ERR_SKELETON_INVALID', reason) };
    expect(await rejectionCode(new ByteReader(bytewise([0x80, 0x80]), opts).uvarint())).toBe('FERRY_ERR_SKELETON_INVALID');
    expect(await rejectionCode(new ByteReader(bytewise([0x80, 0x00]), opts).uvarint())).toBe('FERRY_ERR_SKELETON_INVALID');
    expect(await rejectionCode(new ByteReader(bytewise([0x80, 0x02]), opts).uvarint(255))).toBe('FERRY_ERR_SKELETON_INVALID');
    expect(await rejectionCode(new ByteReader(bytewise([1, 2])).readExactly(3))).toBe('FERRY_ERR_TAR_TRUNCATED');
  });

  it('close() ends the upstream iterator', async () => {
    let closed = false;
    async function* source(): AsyncGenerator<Uint8Array> {
      try {
        for (;;) yield Uint8Array.of(1, 2, 3);
      } finally {
        closed = true;
      }
    }
    const r = new ByteReader(source());
    await r.readExactly(2);
    await r.close();
    expect(closed).toBe(true);
    expect(await r.atEnd()).toBe(true);
  });
});

describe('header byte patches use the same varints', () => {
  it('round-trips and refuses a skip or length beyond the header', () => {
    const from = Buffer.alloc(1024, 1);
    const to = Buffer.from(from);
    to.fill(9, 130, 140);
    to.fill(7, 1000, 1003);
    const patch = encodePatch(to, [[130, 140], [1000, 1003]]);
    expect(patchBytes(from, patch).equals(to)).toBe(true);
    const code = (p: number[]): string => errorCode(() => patchBytes(from, Uint8Array.from(p)));
    expect(code([...enc(1025), 0])).toBe('FERRY_ERR_BUNDLE_INVALID'); // skip past the header
    expect(code([0, ...enc(2000)])).toBe('FERRY_ERR_BUNDLE_INVALID'); // length past the header
    expect(code([0x80, 0x00, 0])).toBe('FERRY_ERR_BUNDLE_INVALID'); // non-minimal skip
    expect(code([0xff, 0xff, 0xff, 0xff, 0x0f, 0])).toBe('FERRY_ERR_BUNDLE_INVALID'); // 2^32-1: wrapped to a small value before
    expect(code([1])).toBe('FERRY_ERR_BUNDLE_INVALID'); // cut after the skip
  });
});
