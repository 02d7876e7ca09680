import { CompressStream, Compressor, type CompressParameters } from 'zstd-napi';
import binding from 'zstd-napi/binding.js';
import { Transform, type TransformCallback } from 'node:stream';
import { FerryError } from '../errors.js';
import { poisonConsumed } from './poison.js';

/** Largest zstd window a ferry decoder accepts (2^27 = 128 MiB), set before any byte is read. */
export const ZSTD_WINDOW_LOG_MAX = 27;

/** Default parameters for store objects: fast, checksummed frames. */
export const STORE_ZSTD: CompressParameters = { compressionLevel: 3, checksumFlag: true };

const OUT_CHUNK = 128 * 1024;

/** Reusable compression contexts by parameter set: a context per call costs more than small inputs. */
const compressors = new Map<string, Compressor>();

/**
 * Inputs over this get a context of their own, dropped with the call: a cached context keeps the
 * tables of the largest input it compressed (about 80 MB at level 19 for a 9 MB input, which a
 * patch worker's bsdiff costing kept for the rest of the bundle), and a fresh one costs little
 * beside compressing a megabyte.
 */
export const ZSTD_REUSE_INPUT_MAX = 1024 * 1024;

/**
 * Compresses bytes in one call, reusing a context per parameter set (contexts are reset per
 * frame) for inputs up to ZSTD_REUSE_INPUT_MAX.
 */
export function zstdCompress(data: Uint8Array, params: CompressParameters = STORE_ZSTD): Buffer {
  if (data.length > ZSTD_REUSE_INPUT_MAX) {
    const c = new Compressor();
    c.setParameters(params);
    return c.compress(data);
  }
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

/** Idle contexts of {@link zstdCompressStreamReused}, by level and checksum flag. */
const idleStreamCCtx = new Map<string, binding.CCtx[]>();
let streamContextsCreated = 0;

/** How many contexts zstdCompressStreamReused has created in this thread (a test counts reuse). */
export function reusedStreamContextsCreated(): number {
  return streamContextsCreated;
}

/**
 * A zstd compressing transform (level and checksum flag only) whose context comes from, and goes
 * back to when its frame ends, a pool per parameter set: one context serves a layer's skeleton
 * after another. A context per stream (zstdCompressStream) is freed by the collector after its
 * stream, with its tables and window (5.5 MB at level 6), and glibc raises its mmap threshold to
 * the size of every mmapped block freed: allocations under it then stay in the main heap, whose
 * free space is not given back. Same bytes as zstdCompressStream with the same parameters.
 */
export function zstdCompressStreamReused(level: number, checksum: boolean): Transform {
  return new ReusedCompressStream(level, checksum);
}

class ReusedCompressStream extends Transform {
  private readonly key: string;
  private cctx: binding.CCtx | undefined;
  private readonly out = Buffer.allocUnsafe(binding.cStreamOutSize());

  constructor(level: number, checksum: boolean) {
    super();
    this.key = `${level}/${checksum ? 1 : 0}`;
    this.cctx = idleStreamCCtx.get(this.key)?.pop();
    if (!this.cctx) {
      streamContextsCreated++;
      this.cctx = new binding.CCtx();
      this.cctx.setParameter(binding.CParameter.compressionLevel, level);
      this.cctx.setParameter(binding.CParameter.checksumFlag, checksum ? 1 : 0);
    }
  }

  private step(input: Uint8Array, end: boolean): void {
    const cctx = this.cctx!;
    let src = input;
    for (;;) {
      const [ret, produced, consumed] = cctx.compressStream2(this.out, src, end ? binding.EndDirective.end : binding.EndDirective.continue);
      if (produced > 0) this.push(Buffer.from(this.out.subarray(0, produced)));
      src = src.subarray(consumed);
      if (src.length === 0 && (!end || ret === 0)) return;
    }
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.step(chunk, false);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.step(new Uint8Array(0), true);
      // the frame is complete: the context starts the next one with the same parameters
      const idle = idleStreamCCtx.get(this.key) ?? [];
      if (idle.length < 2) idle.push(this.cctx!);
      idleStreamCCtx.set(this.key, idle);
      this.cctx = undefined;
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // a context left mid-frame is not reused
    this.cctx = undefined;
    callback(err);
  }
}

/** Idle decompression contexts: allocating one per small content dominates decoding it. */
const idleDCtx: binding.DCtx[] = [];

function newDCtx(windowLogMax = ZSTD_WINDOW_LOG_MAX): binding.DCtx {
  const dctx = idleDCtx.pop() ?? new binding.DCtx();
  dctx.setParameter(binding.DParameter.windowLogMax, windowLogMax);
  return dctx;
}

/**
 * Returns a context after a clean, complete decode for reuse. A context that held a dictionary is
 * reset first: the reset frees zstd's copy of the dictionary (a patch reference of megabytes),
 * which would otherwise live until the garbage collector finalises the context.
 */
function releaseDCtx(dctx: binding.DCtx, hadDictionary = false): void {
  if (hadDictionary) dctx.reset(binding.ResetDirective.sessionAndParameters);
  if (idleDCtx.length < 4) idleDCtx.push(dctx);
}

/** zstd's message when a frame's window is over the windowLogMax set on the decoder. */
const WINDOW_TOO_LARGE = /too much memory/i;

function corrupt(err: unknown, windowLogMax = ZSTD_WINDOW_LOG_MAX): FerryError {
  const message = (err as Error).message;
  if (WINDOW_TOO_LARGE.test(message)) {
    return new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `zstd frame needs a window over the 2^${windowLogMax}-byte cap of this decoder`, { cause: err, details: { windowLogMax } });
  }
  return new FerryError('FERRY_ERR_ZSTD_CORRUPT', `zstd data is corrupt: ${message}`, { cause: err });
}

/** Decoder state across input chunks. */
interface DecodeState {
  total: number;
  inFrame: boolean;
  maxSize: number;
  windowLogMax: number;
}

/**
 * Feeds one input chunk to `dctx`, yielding every output piece it produces (bounded pieces), each
 * in a fresh buffer or, given `reuse`, in that one buffer.
 */
function* decodeChunk(dctx: binding.DCtx, input: Uint8Array, st: DecodeState, reuse?: Buffer): Generator<Buffer> {
  let src = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  while (src.length > 0 || st.inFrame) {
    const dst = reuse ?? Buffer.allocUnsafe(OUT_CHUNK);
    let ret: number, produced: number, consumed: number;
    try {
      [ret, produced, consumed] = dctx.decompressStream(dst, src);
    } catch (err) {
      throw corrupt(err, st.windowLogMax);
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

/** Options of {@link zstdDecode}. */
export interface ZstdDecodeOptions {
  /** Raw-content dictionary: makes it a patch-from decoder (see zstdPatchEncode). */
  dictionary?: Uint8Array | undefined;
  /**
   * Largest window accepted, as a power of two (default ZSTD_WINDOW_LOG_MAX): the decoder's
   * memory. A frame that needs more is FERRY_ERR_LIMIT_EXCEEDED before any of it is decoded.
   */
  windowLogMax?: number | undefined;
  /** Checked before each input chunk and output piece: an abort stops the decode promptly. */
  signal?: AbortSignal | undefined;
  /**
   * Yield every piece in one buffer, overwritten by the next: for a consumer that copies what it
   * keeps (a stream decoded at tens of MB/s otherwise leaves a fresh buffer per piece for the
   * collector).
   */
  reuseOutput?: boolean | undefined;
}

/**
 * Decodes a zstd stream as an async generator, so output is produced only as fast as the consumer
 * pulls it: memory stays bounded even for a highly compressible (bomb-like) input. The window is
 * capped before the first byte and the total output is capped at `maxSize` (DESIGN.md section 8).
 * A stream that ends inside a frame is FERRY_ERR_ZSTD_CORRUPT.
 */
export async function* zstdDecode(source: AsyncIterable<Uint8Array>, maxSize = Number.MAX_SAFE_INTEGER, options: ZstdDecodeOptions = {}): AsyncGenerator<Buffer> {
  const { dictionary, signal } = options;
  const windowLogMax = options.windowLogMax ?? ZSTD_WINDOW_LOG_MAX;
  signal?.throwIfAborted();
  const dctx = newDCtx(windowLogMax);
  if (dictionary) dctx.loadDictionary(dictionary);
  const st: DecodeState = { total: 0, inFrame: false, maxSize, windowLogMax };
  const reuse = options.reuseOutput ? Buffer.allocUnsafe(OUT_CHUNK) : undefined;
  let sawInput = false;
  let clean = false;
  try {
    for await (const chunk of source) {
      if (chunk.byteLength > 0) sawInput = true;
      for (const piece of decodeChunk(dctx, chunk, st, reuse)) {
        signal?.throwIfAborted();
        yield piece;
        if (reuse) poisonConsumed(piece);
      }
    }
    finish(st, sawInput);
    clean = true;
  } finally {
    // a context left mid-frame is dropped; one that held a dictionary is reset before reuse
    if (clean) releaseDCtx(dctx, dictionary !== undefined);
    else if (dictionary) dctx.reset(binding.ResetDirective.sessionAndParameters);
  }
}

/**
 * Decodes a whole zstd buffer, capped at `maxSize` bytes of output. A frame that states its
 * content size (every one-shot compressed store object does) is decoded in one call straight
 * into a buffer of that size; others stream in pieces.
 */
export function zstdDecompress(data: Uint8Array, maxSize: number): Buffer {
  const dctx = newDCtx();
  const known = frameContentSize(data);
  if (known !== undefined && known <= maxSize) {
    const out = Buffer.allocUnsafe(known);
    let n: number;
    try {
      n = dctx.decompress(out, data);
    } catch (err) {
      throw corrupt(err);
    }
    releaseDCtx(dctx);
    if (n !== known) throw corrupt(new Error(`frame declares ${known} bytes and decodes to ${n}`));
    return out;
  }
  if (known !== undefined) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `zstd output exceeds ${maxSize} bytes`);
  const st: DecodeState = { total: 0, inFrame: false, maxSize, windowLogMax: ZSTD_WINDOW_LOG_MAX };
  const parts = [...decodeChunk(dctx, data, st)];
  finish(st, data.length > 0);
  releaseDCtx(dctx);
  return Buffer.concat(parts, st.total);
}

/** zstd's message when a one-shot decode's output does not fit its buffer. */
const DST_TOO_SMALL = /destination buffer is too small/i;

/**
 * Decodes a whole zstd buffer into `dst` (no allocation: for callers that reuse their buffers);
 * returns the bytes written. Output that does not fit `dst` is FERRY_ERR_LIMIT_EXCEEDED; a
 * truncated or corrupt frame FERRY_ERR_ZSTD_CORRUPT. One call whether or not the frame declares
 * its size: a one-shot decode writes straight into `dst` and needs no window buffers, which a
 * streaming decode would allocate in the context (sized to the frame's window, regrown and freed
 * as windows vary: each such free raises glibc's mmap threshold, see {@link zstdDecode}).
 */
export function zstdDecompressInto(data: Uint8Array, dst: Uint8Array): number {
  const known = frameContentSize(data);
  if (known !== undefined && known > dst.length) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `zstd output exceeds ${dst.length} bytes`);
  if (data.length === 0) throw corrupt(new Error('empty input'));
  const dctx = newDCtx();
  let written: number;
  try {
    written = dctx.decompress(known !== undefined ? dst.subarray(0, known) : dst, data);
  } catch (err) {
    if (known === undefined && DST_TOO_SMALL.test((err as Error).message)) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `zstd output exceeds ${dst.length} bytes`, { cause: err });
    throw corrupt(err);
  }
  releaseDCtx(dctx);
  if (known !== undefined && written !== known) throw corrupt(new Error(`frame declares ${known} bytes and decodes to ${written}`));
  return written;
}

/**
 * The content size `data` declares when it is exactly one zstd frame that declares one (no bytes
 * after it); undefined otherwise. Lets a caller check the size against its cap before decoding.
 */
export function zstdDeclaredSize(data: Uint8Array): number | undefined {
  return frameContentSize(data);
}

/** The content size a single zstd frame declares, when it declares one and is the only frame. */
function frameContentSize(data: Uint8Array): number | undefined {
  try {
    const size = binding.getFrameContentSize(data);
    if (size === null || !Number.isSafeInteger(size)) return undefined;
    return binding.findFrameCompressedSize(data) === data.length ? size : undefined;
  } catch {
    return undefined;
  }
}

/** Magic that makes zstd parse a dictionary as a formatted one rather than raw content. */
const DICT_MAGIC = 0xec30a437;

/**
 * Largest reference plus target a patch-from frame may span. The applier decodes a patch in one
 * call, the reference used in place and the output written straight into its buffer, so its
 * memory is the span (plus the patch bytes): 32 MiB keeps an apply inside its 128 MB budget
 * (DESIGN.md section 5) while the large single files that patch best (an 8.9 MB compiler bundle
 * against its old version) still fit. Larger targets get bsdiff, which streams its output.
 */
export const PATCH_SPAN_MAX = 32 * 1024 * 1024;

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
 * `ZSTD_c_forceAttachDict` (zstd.h: ZSTD_c_experimentalParam4 = 1001, zstd 1.5.7 as vendored by
 * zstd-napi 0.0.13) set to `ZSTD_dictForceAttach` (1). zstd-napi's enum does not list experimental
 * parameters, but its setParameter passes the number through to ZSTD_CCtx_setParameter.
 * `loadDictionary` builds a dictionary with its own level-19 tables; by default the context then
 * copies them into tables of its own, sized for the reference (both live during the call).
 * Attached, the context searches the dictionary's tables in place and sizes its own for the
 * target alone: measured on a 8.6 MB reference and a 1.8 MB target, 186 -> 129 MB of zstd memory
 * and 7,281 -> 7,100 bytes; a target as large as its reference saves little (its own tables
 * reach the level's maximum either way).
 */
export const ZSTD_C_FORCE_ATTACH_DICT = 1001;
const ZSTD_DICT_FORCE_ATTACH = 1;

/**
 * Spans up to this reuse one context per thread (a fresh context per small patch costs more than
 * the patch); larger ones get their own, freed once collected, so no thread keeps tens of MB of
 * match tables between large patches.
 */
const REUSE_SPAN = 1 << 20;
let small: binding.CCtx | undefined;
/** Output buffer reused by every patch of this thread whose bound fits PATCH_OUT_KEEP (results are copied out). */
let patchOut = Buffer.alloc(0);
const PATCH_OUT_KEEP = 4 * 1024 * 1024;

/**
 * zstd patch-from: compresses `target` with `ref` as a raw-content dictionary, the window set to
 * span both (as `zstd --patch-from` does). The result decodes with zstdPatchDecode.
 */
export function zstdPatchEncode(ref: Uint8Array, target: Uint8Array, level = 19): Buffer {
  const span = ref.length + target.length;
  const bound = binding.compressBound(target.length);
  // a bound over PATCH_OUT_KEEP gets a buffer of its own, dropped with the call: kept, the
  // largest target's bound stayed allocated in every worker for the rest of the bundle
  let dst = patchOut;
  if (dst.length < bound) {
    dst = Buffer.allocUnsafeSlow(Math.ceil(bound / 2 ** 20) * 2 ** 20);
    if (bound <= PATCH_OUT_KEEP) patchOut = dst;
  }
  let n: number;
  if (ref.length <= PATCH_ONE_SHOT_REFERENCE) {
    const cctx = span <= REUSE_SPAN ? (small ??= new binding.CCtx()) : new binding.CCtx();
    n = cctx.compressUsingDict(dst, target, ref, level);
  } else {
    const windowLog = Math.min(Math.max(Math.ceil(Math.log2(span + 1)), 10), ZSTD_WINDOW_LOG_MAX);
    const cctx = new binding.CCtx();
    cctx.setParameter(binding.CParameter.compressionLevel, level);
    cctx.setParameter(binding.CParameter.windowLog, windowLog);
    cctx.setParameter(binding.CParameter.enableLongDistanceMatching, windowLog >= 24 ? 1 : 0);
    cctx.setParameter(binding.CParameter.checksumFlag, 0);
    cctx.setParameter(binding.CParameter.contentSizeFlag, 1);
    cctx.setParameter(ZSTD_C_FORCE_ATTACH_DICT as binding.CParameter, ZSTD_DICT_FORCE_ATTACH);
    cctx.loadDictionary(ref);
    n = cctx.compress2(dst, target);
  }
  return Buffer.from(dst.subarray(0, n));
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

/**
 * Decodes a patch-from frame (zstdPatchEncode) in one call: `ref` is used in place as the
 * raw-content dictionary (no copy) and the output goes straight into a buffer of `size` bytes, so
 * memory is the reference, the patch and the output, whatever window the frame declares. Refused
 * before decoding: a span over PATCH_SPAN_MAX (FERRY_ERR_LIMIT_EXCEEDED). A frame that does not
 * decode to exactly `size` bytes is FERRY_ERR_ZSTD_CORRUPT. `into`, when large enough, receives the
 * output (a caller's reused buffer).
 */
export function zstdPatchDecode(patch: Uint8Array, ref: Uint8Array, size: number, into?: Uint8Array): Uint8Array {
  if (ref.length + size > PATCH_SPAN_MAX) {
    throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `a patch of ${size} bytes against a ${ref.length}-byte reference spans over the ${PATCH_SPAN_MAX}-byte cap`);
  }
  const known = frameContentSize(patch);
  if (known !== size) throw corrupt(new Error(`patch frame declares ${known ?? 'no'} content size, the payload says ${size}`));
  const out = into && into.length >= size ? into.subarray(0, size) : Buffer.allocUnsafe(size);
  const dctx = newDCtx();
  let n: number;
  try {
    n = dctx.decompressUsingDict(out, patch, ref);
  } catch (err) {
    throw corrupt(err);
  }
  releaseDCtx(dctx, true);
  if (n !== size) throw corrupt(new Error(`patch decodes to ${n} bytes, expected ${size}`));
  return out;
}
