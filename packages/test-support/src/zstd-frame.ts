/**
 * What a zstd frame's header declares (RFC 8878 section 3.1.1.1), read from its bytes: for tests
 * that check the window a writer chose, which is the buffer a decoder must hold.
 */

const MAGIC = 0xfd2fb528;

/**
 * The window size (bytes) the zstd frame starting at `data[0]` declares: its Window_Descriptor, or
 * its content size when the frame is single-segment (the decoder then needs no more). Throws on
 * bytes that are not a zstd frame header.
 */
export function zstdFrameWindow(data: Uint8Array): number {
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (view.length < 6 || view.readUInt32LE(0) !== MAGIC) throw new Error('not a zstd frame');
  const fhd = view[4]!;
  const single = (fhd & 0x20) !== 0;
  if (!single) {
    const wd = view[5]!;
    const log = 10 + (wd >> 3);
    return 2 ** log + (2 ** log / 8) * (wd & 7);
  }
  const dictBytes = [0, 1, 2, 4][fhd & 3]!;
  const fcsBytes = [1, 2, 4, 8][fhd >> 6]!;
  const at = 5 + dictBytes;
  if (view.length < at + fcsBytes) throw new Error('zstd frame header is cut short');
  if (fcsBytes === 1) return view[at]!;
  if (fcsBytes === 2) return view.readUInt16LE(at) + 256;
  if (fcsBytes === 4) return view.readUInt32LE(at);
  return Number(view.readBigUInt64LE(at));
}
