import { describe, expect, it } from 'vitest';
import { humanBytes, plural, shortDigest, table } from '../src/format.js';

describe('human output', () => {
  it('formats sizes in binary units', () => {
    expect([0, 1023, 1024, 1536, 5 * 1024 * 1024, 3 * 1024 ** 3].map(humanBytes)).toEqual(['0 B', '1023 B', '1.0 KiB', '1.5 KiB', '5.0 MiB', '3.0 GiB']);
  });

  it('shortens digests and counts', () => {
    expect(shortDigest(`sha256:${'ab'.repeat(32)}`)).toBe('abababababab');
    expect([plural(1, 'file'), plural(1234, 'file'), plural(2, 'copy', 'copies')]).toEqual(['1 file', '1,234 files', '2 copies']);
  });

  it('aligns columns, numbers to the right', () => {
    expect(table([['REF', 'SIZE'], ['a:v1', '1.0 KiB'], ['longer:v2', '12 B']], ['left', 'right'])).toEqual(['REF           SIZE', 'a:v1       1.0 KiB', 'longer:v2     12 B']);
  });
});
