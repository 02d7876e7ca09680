/**
 * The writer thread of a layer rebuild (apply-sink.ts is its other end): it takes the layer's
 * bytes in tar order from a shared ring (apply-ring.ts) and
 *   - hashes them all: the layer's diff_id, computed while the layer is written;
 *   - reads, decodes and hashes each stored content the layer uses (once, with reused buffers);
 *   - compresses each new body into a temp file in the pending-apply directory while hashing it,
 *     and at a flush makes the new bodies durable and renames them to their names;
 *   - writes a stashed body (a group member decoded before its own entry) the same way without
 *     hashing it into the layer: its entry later reads it as a content, from its temp file until
 *     a flush names it.
 * Every buffer is allocated once per rebuild, so the thread makes no garbage per record (memory
 * stays flat, DESIGN.md section 6: "bounded memory"), and the rebuild's main thread only decodes.
 *
 * Record payloads: content = digest (32) + size (float64 BE); begin and stash = size (float64 BE);
 * end = digest (32); hash and data = bytes. Answers (postMessage): {type: 'flushed'},
 * {type: 'done', digest, size}, {type: 'error', code, message, details}.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import binding from 'zstd-napi/binding.js';
import { syncFileSystem } from '../util/fs.js';
import { REC, RingReader, type RingRecord } from './apply-ring.js';

/** What the thread is started with. */
export interface WriterData {
  ring: SharedArrayBuffer;
  /** The store's root (contents/ is under it). */
  root: string;
  /** Where temp files of new bodies go (the pending-apply directory). */
  tempDir: string;
  /** Their name prefix (`.tmp-<pid>-<token>-`): gc keeps them while this process lives. */
  tempPrefix: string;
}

/** A failure to report (a code of core's ERROR_CODES). */
class Failure extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

const PIECE = 256 * 1024;
const STAGED_FOR_SYNCFS = 32;

const data = workerData as WriterData;
const ring = new RingReader(data.ring);
const layer = createHash('sha256');
let layerSize = 0;
const dctx = new binding.DCtx();
const cctx = new binding.CCtx();
cctx.setParameter(binding.CParameter.compressionLevel, 3);
cctx.setParameter(binding.CParameter.checksumFlag, 1);
const readBuf = Buffer.allocUnsafe(PIECE);
const outBuf = Buffer.allocUnsafe(PIECE);
const zBuf = Buffer.allocUnsafe(PIECE);
/** New bodies written and not yet flushed: digest hex -> temp file. */
const staged = new Map<string, string>();
/** The new body in progress; `layer` false for a stashed one (not hashed into the layer). */
let body: { fd: number; tmp: string; size: number; got: number; layer: boolean } | undefined;
let seq = 0;

function contentPath(hex: string): string {
  return join(data.root, 'contents', hex.slice(0, 2), hex);
}

function joined(r: RingRecord): Buffer {
  return r.parts.length === 1 ? Buffer.from(r.parts[0]!.buffer, r.parts[0]!.byteOffset, r.parts[0]!.byteLength) : Buffer.concat(r.parts);
}

function hashed(b: Uint8Array): void {
  layer.update(b);
  layerSize += b.length;
}

/** Reads a stored content (or a new body not flushed yet), decodes it and hashes it. */
function readContent(hex: string, size: number): void {
  const path = staged.get(hex) ?? contentPath(hex);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Failure('FERRY_ERR_BASELINE_MISSING', `content sha256:${hex} that the payload uses is not in the store`, { digest: `sha256:${hex}` });
    throw err;
  }
  try {
    if (!fstatSync(fd).isFile()) throw new Failure('FERRY_ERR_OBJECT_CORRUPT', `content sha256:${hex} is not a regular file`, { digest: `sha256:${hex}` });
    decodeFrom(fd, hex, size);
  } finally {
    closeSync(fd);
  }
}

function decodeFrom(fd: number, hex: string, size: number): void {
  const corrupt = (why: string): Failure => new Failure('FERRY_ERR_OBJECT_CORRUPT', `content sha256:${hex} is corrupt (${why})`, { digest: `sha256:${hex}` });
  dctx.reset(binding.ResetDirective.sessionOnly);
  let got = 0;
  let ret = 1;
  for (let pos = 0; ; ) {
    const n = readSync(fd, readBuf, 0, readBuf.length, pos);
    if (n === 0) break;
    pos += n;
    let src = readBuf.subarray(0, n);
    while (src.length > 0) {
      let produced: number, consumed: number;
      try {
        [ret, produced, consumed] = dctx.decompressStream(outBuf, src);
      } catch (err) {
        throw corrupt((err as Error).message);
      }
      got += produced;
      if (got > size) throw corrupt(`it holds more than the ${size} bytes the layer needs`);
      if (produced > 0) hashed(outBuf.subarray(0, produced));
      src = src.subarray(consumed);
      if (consumed === 0 && produced === 0) break;
    }
  }
  // a frame ends with ret 0; drain output held back in the context
  while (ret !== 0) {
    const [r, produced] = dctx.decompressStream(outBuf, Buffer.alloc(0));
    if (produced === 0) break;
    got += produced;
    if (got > size) throw corrupt(`it holds more than the ${size} bytes the layer needs`);
    hashed(outBuf.subarray(0, produced));
    ret = r;
  }
  if (ret !== 0 || got !== size) throw corrupt(ret !== 0 ? 'truncated' : `${got} bytes, the layer needs ${size}`);
}

function compress(fd: number, input: Uint8Array, end: boolean): void {
  let src = input;
  for (;;) {
    const [ret, produced, consumed] = cctx.compressStream2(zBuf, src, end ? binding.EndDirective.end : binding.EndDirective.continue);
    if (produced > 0) writeSync(fd, zBuf, 0, produced);
    src = src.subarray(consumed);
    if (src.length === 0 && (!end || ret === 0)) return;
  }
}

function begin(size: number, layer: boolean): void {
  const tmp = join(data.tempDir, `${data.tempPrefix}${seq++}`);
  body = { fd: openSync(tmp, 'wx'), tmp, size, got: 0, layer };
  cctx.reset(binding.ResetDirective.sessionOnly);
  cctx.setPledgedSrcSize(size);
}

function bodyData(r: RingRecord): void {
  for (const p of r.parts) {
    if (body!.layer) hashed(p);
    body!.got += p.length;
    compress(body!.fd, p, false);
  }
}

function end(hex: string): void {
  const b = body!;
  body = undefined;
  try {
    compress(b.fd, new Uint8Array(0), true);
  } finally {
    closeSync(b.fd);
  }
  if (b.got !== b.size) throw new Failure('FERRY_ERR_INTERNAL', `a new body of ${b.size} bytes received ${b.got}`);
  if (staged.has(hex) || existsSync(contentPath(hex))) rmSync(b.tmp, { force: true });
  else staged.set(hex, b.tmp);
}

/** Durable, then named: the data first (one syncfs, or each file), then the renames and their directories. */
function flush(): void {
  if (staged.size === 0) return;
  const whole = staged.size >= STAGED_FOR_SYNCFS && syncFileSystem(data.tempDir);
  if (!whole) {
    for (const tmp of staged.values()) {
      const fd = openSync(tmp, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
  }
  const dirs = new Set<string>();
  for (const [hex, tmp] of staged) {
    renameSync(tmp, contentPath(hex));
    dirs.add(dirname(contentPath(hex)));
  }
  staged.clear();
  if (whole && syncFileSystem(data.tempDir)) return;
  for (const d of dirs) {
    const fd = openSync(d, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

function handle(r: RingRecord): void {
  switch (r.type) {
    case REC.hash:
      for (const p of r.parts) hashed(p);
      return;
    case REC.content: {
      const b = joined(r);
      return readContent(b.toString('hex', 0, 32), b.readDoubleBE(32));
    }
    case REC.begin:
    case REC.stash:
      return begin(joined(r).readDoubleBE(0), r.type === REC.begin);
    case REC.data:
      return bodyData(r);
    case REC.end:
      return end(joined(r).toString('hex', 0, 32));
    case REC.flush:
      flush();
      parentPort!.postMessage({ type: 'flushed' });
      return;
    case REC.finish:
      parentPort!.postMessage({ type: 'done', digest: `sha256:${layer.copy().digest('hex')}`, size: layerSize });
      return;
    default:
      throw new Failure('FERRY_ERR_INTERNAL', `unknown ring record ${r.type}`);
  }
}

for (;;) {
  const r = ring.next();
  if (!r) break;
  try {
    handle(r);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { details?: Record<string, unknown> };
    parentPort!.postMessage({ type: 'error', code: e instanceof Failure ? e.code : undefined, message: e.message, details: e.details, errno: e.code, syscall: e.syscall, path: e.path });
    ring.stop();
    break;
  }
}
if (body) {
  closeSync(body.fd);
  rmSync(body.tmp, { force: true });
}
