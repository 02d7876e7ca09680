import { CompressStream, Compressor, type CompressParameters } from 'zstd-napi';
import binding from 'zstd-napi/binding.js';
import type { Transform } from 'node:stream';
import { FerryError } from '../errors.js';

/** Largest zstd window a ferry decoder accepts (2^27 = 128 MiB), set before any byte is read. */
export const ZSTD_WINDOW_LOG_MAX = 27;

/** Default parameters for store objects: fast, checksummed frames. */
export const STORE_ZSTD: CompressParameters = { compressionLevel: 3, checksumFlag: true };

const OUT_CHUNK = 128 * 1024;

/** Reusable compression contexts by parameter set: a context per call costs more than small inputs. */
const compressors = new Map<string, Compressor>();

/** Compresses bytes in one call, reusing a context per parameter set (contexts are reset per frame). */
export function zstdCompress(data: Uint8Array, params: CompressParameters = STORE_ZSTD): Buffer {
  const key = JSON.stringify(params);
  let c = compressors.get(key);
  if (!c) {
    c = new Compressor();
    c.setParameters(params);
    if (compressors.size > 16) compressors.clear();
    compressors.set(key, c);
  }
  return c.compress(data);
}

/** A zstd compressing transform. */
export function zstdCompressStream(params: CompressParameters = STORE_ZSTD): Transform {
  return new CompressStream(params);
}

/** Idle decompression contexts: allocating one per small content dominates decoding it. */
const idleDCtx: binding.DCtx[] = [];

function newDCtx(): binding.DCtx {
  const reused = idleDCtx.pop();
  if (reused) return reused;
  const dctx = new binding.DCtx();
  dctx.setParameter(binding.DParameter.windowLogMax, ZSTD_WINDOW_LOG_MAX);
  return dctx;
}

/** Returns a context after a clean, complete decode (no dictionary loaded) for reuse. */
function releaseDCtx(dctx: binding.DCtx): void {
  if (idleDCtx.length < 8) idleDCtx.push(dctx);
}

function corrupt(err: unknown): FerryError {
  return new FerryError('FERRY_ERR_ZSTD_CORRUPT', `zstd data is corrupt: ${(err as Error).message}`, { cause: err });
}

/** Decoder state across input chunks. */
interface DecodeState {
  total: number;
  inFrame: boolean;
  maxSize: number;
}

/** Feeds one input chunk to `dctx`, yielding every output piece it produces (bounded pieces). */
function* decodeChunk(dctx: binding.DCtx, input: Uint8Array, st: DecodeState): Generator<Buffer> {
  let src = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  while (src.length > 0 || st.inFrame) {
    const dst = Buffer.allocUnsafe(OUT_CHUNK);
    let ret: number, produced: number, consumed: number;
    try {
      [ret, produced, consumed] = dctx.decompressStream(dst, src);
    } catch (err) {
      throw corrupt(err);
    }
    src = src.subarray(consumed);
    st.inFrame = ret !== 0;
    if (produced > 0) {
      st.total += produced;
      if (st.total > st.maxSize) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `zstd output exceeds ${st.maxSize} bytes`);
      yield dst.subarray(0, produced);
    }
    if (src.length === 0 && produced < dst.length) break;
  }
}

function finish(st: DecodeState, sawInput: boolean): void {
  if (st.inFrame || !sawInput) throw corrupt(new Error(sawInput ? 'input ended inside a frame' : 'empty input'));
}

/**
 * Decodes a zstd stream as an async generator, so output is produced only as fast as the consumer
 * pulls it: memory stays bounded even for a highly compressible (bomb-like) input. The window is
 * capped before the first byte and the total output is capped at `maxSize` (DESIGN.md section 8).
 * A stream that ends inside a frame is FERRY_ERR_ZSTD_CORRUPT. `dictionary` makes it a patch-from
 * decoder (see zstdPatchEncode).
 */
export async function* zstdDecode(source: AsyncIterable<Uint8Array>, maxSize = Number.MAX_SAFE_INTEGER, dictionary?: Uint8Array): AsyncGenerator<Buffer> {
  const dctx = newDCtx();
  if (dictionary) dctx.loadDictionary(dictionary);
  const st: DecodeState = { total: 0, inFrame: false, maxSize };
  let sawInput = false;
  for await (const chunk of source) {
    if (chunk.byteLength > 0) sawInput = true;
    yield* decodeChunk(dctx, chunk, st);
  }
  finish(st, sawInput);
  if (!dictionary) releaseDCtx(dctx);
}

/** Decodes a whole zstd buffer, capped at `maxSize` bytes of output. */
export function zstdDecompress(data: Uint8Array, maxSize: number): Buffer {
  const dctx = newDCtx();
  const st: DecodeState = { total: 0, inFrame: false, maxSize };
  const parts = [...decodeChunk(dctx, data, st)];
  finish(st, data.length > 0);
  releaseDCtx(dctx);
  return Buffer.concat(parts, st.total);
}

/** Magic that makes zstd parse a dictionary as a formatted one rather than raw content. */
const DICT_MAGIC = 0xec30a437;

/** Largest reference plus target a patch may span: the decoder's window limit. */
export const PATCH_SPAN_MAX = 2 ** ZSTD_WINDOW_LOG_MAX;

/** True when `ref` can serve as a raw-content patch reference for a target of `targetSize`. */
export function canPatchFrom(ref: Uint8Array, targetSize: number): boolean {
  if (ref.length < 8 || ref.length + targetSize > PATCH_SPAN_MAX) return false;
  return Buffer.from(ref.buffer, ref.byteOffset, 4).readUInt32LE(0) !== DICT_MAGIC;
}

/**
 * zstd patch-from: compresses `target` with `ref` as a raw-content dictionary, the window set to
 * span both (as `zstd --patch-from` does). The result decodes with zstdDecode(..., ref).
 */
export function zstdPatchEncode(ref: Uint8Array, target: Uint8Array, level = 19): Buffer {
  const windowLog = Math.min(Math.max(Math.ceil(Math.log2(ref.length + target.length + 1)), 10), ZSTD_WINDOW_LOG_MAX);
  const c = new Compressor();
  c.setParameters({ compressionLevel: level, windowLog, enableLongDistanceMatching: windowLog >= 24, checksumFlag: false, contentSizeFlag: true });
  c.loadDictionary(ref);
  return c.compress(target);
}
