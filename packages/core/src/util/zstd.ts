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
  try {
    for await (const chunk of source) {
      if (chunk.byteLength > 0) sawInput = true;
      yield* decodeChunk(dctx, chunk, st);
    }
    finish(st, sawInput);
    if (!dictionary) releaseDCtx(dctx);
  } finally {
    // zstd holds its own copy of a dictionary (a patch reference can be tens of MB): free it now
    // rather than when the context is garbage-collected
    if (dictionary) dctx.reset(binding.ResetDirective.sessionAndParameters);
  }
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
 * References up to this take zstd's one-shot dictionary call, with the level's own window (8 MiB
 * at level 19) and no separate dictionary tables: half the memory of the long path below, and as
 * small a patch, since a target's matches in its reference (the most similar part last) lie about
 * the reference's size back. Larger references need the long window and long distance matching
 * (measured: an 8.6 MB file against its 8.5 MB old version costs 73 KB one-shot, 33 KB long).
 */
export const PATCH_ONE_SHOT_REFERENCE = 7 * 1024 * 1024;

/**
 * Spans up to this reuse one context per thread (a fresh context per small patch costs more than
 * the patch); larger ones get their own, freed once collected, so no thread keeps tens of MB of
 * match tables between large patches.
 */
const REUSE_SPAN = 1 << 20;
let small: binding.CCtx | undefined;
/** Output buffer reused by every patch of this thread (results are copied out). */
let patchOut = Buffer.alloc(0);

/**
 * zstd patch-from: compresses `target` with `ref` as a raw-content dictionary, the window set to
 * span both (as `zstd --patch-from` does). The result decodes with zstdDecode(..., ref).
 */
export function zstdPatchEncode(ref: Uint8Array, target: Uint8Array, level = 19): Buffer {
  const span = ref.length + target.length;
  const bound = binding.compressBound(target.length);
  if (patchOut.length < bound) patchOut = Buffer.allocUnsafeSlow(Math.ceil(bound / 2 ** 20) * 2 ** 20);
  let n: number;
  if (ref.length <= PATCH_ONE_SHOT_REFERENCE) {
    const cctx = span <= REUSE_SPAN ? (small ??= new binding.CCtx()) : new binding.CCtx();
    n = cctx.compressUsingDict(patchOut, target, ref, level);
  } else {
    const windowLog = Math.min(Math.max(Math.ceil(Math.log2(span + 1)), 10), ZSTD_WINDOW_LOG_MAX);
    const cctx = new binding.CCtx();
    cctx.setParameter(binding.CParameter.compressionLevel, level);
    cctx.setParameter(binding.CParameter.windowLog, windowLog);
    cctx.setParameter(binding.CParameter.enableLongDistanceMatching, windowLog >= 24 ? 1 : 0);
    cctx.setParameter(binding.CParameter.checksumFlag, 0);
    cctx.setParameter(binding.CParameter.contentSizeFlag, 1);
    cctx.loadDictionary(ref);
    n = cctx.compress2(patchOut, target);
  }
  return Buffer.from(patchOut.subarray(0, n));
}

/** Parameters of a frame compressed from a source of known size. */
export interface SizedFrameParameters {
  level: number;
  /** Largest window; the frame's own size lowers it (zstd fits tables and window to the pledged size). */
  windowLog: number;
  longDistanceMatching: boolean;
  checksum: boolean;
}

/**
 * Compresses exactly `size` bytes of `source` into one frame whose header records that size, so
 * zstd fits its window and tables to the data (memory on both sides) and a decoder needs no
 * bigger buffer than the content. Fewer or more bytes than `size` is FERRY_ERR_SIZE_MISMATCH.
 */
export async function* zstdCompressSized(source: AsyncIterable<Uint8Array>, size: number, p: SizedFrameParameters): AsyncGenerator<Buffer> {
  const cctx = new binding.CCtx();
  const windowLog = Math.min(p.windowLog, Math.max(10, Math.ceil(Math.log2(size + 1))));
  cctx.setParameter(binding.CParameter.compressionLevel, p.level);
  cctx.setParameter(binding.CParameter.windowLog, windowLog);
  cctx.setParameter(binding.CParameter.enableLongDistanceMatching, p.longDistanceMatching && windowLog >= 24 ? 1 : 0);
  cctx.setParameter(binding.CParameter.checksumFlag, p.checksum ? 1 : 0);
  cctx.setPledgedSrcSize(size);
  const out = Buffer.allocUnsafe(binding.cStreamOutSize());
  let seen = 0;
  const step = function* (src: Buffer, end: boolean): Generator<Buffer> {
    for (;;) {
      const [ret, produced, consumed] = cctx.compressStream2(out, src, end ? binding.EndDirective.end : binding.EndDirective.continue);
      src = src.subarray(consumed);
      if (produced > 0) yield Buffer.from(out.subarray(0, produced));
      if (end ? ret === 0 : src.length === 0) return;
    }
  };
  for await (const chunk of source) {
    seen += chunk.byteLength;
    if (seen > size) throw new FerryError('FERRY_ERR_SIZE_MISMATCH', `frame source is longer than the ${size} bytes pledged`);
    yield* step(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength), false);
  }
  if (seen !== size) throw new FerryError('FERRY_ERR_SIZE_MISMATCH', `frame source is ${seen} bytes, ${size} were pledged`);
  yield* step(Buffer.alloc(0), true);
}
