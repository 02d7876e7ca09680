/**
 * The default chunk size (docs/format.md section 6.1): 64 KiB, and 32 KiB for a payload of fewer
 * than four 64 KiB chunks, whose first chunk would otherwise hold back the device's rebuild for a
 * large share of the transfer.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_CHUNK_SIZE, defaultChunkSize } from '@ferry/differ';

describe('defaultChunkSize', () => {
  it('cuts a payload of fewer than four 64 KiB chunks into 32 KiB chunks', () => {
    expect(DEFAULT_CHUNK_SIZE).toBe(64 * 1024);
    for (const size of [0, 1, 32 * 1024, 152_230, 4 * 64 * 1024 - 1]) expect(defaultChunkSize(size), `${size} bytes`).toBe(32 * 1024);
  });

  it('cuts a larger payload into 64 KiB chunks', () => {
    for (const size of [4 * 64 * 1024, 3_247_549, 2 ** 40]) expect(defaultChunkSize(size), `${size} bytes`).toBe(64 * 1024);
  });
});
