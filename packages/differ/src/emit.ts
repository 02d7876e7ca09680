/**
 * Emitting planned ops as one zstd frame per layer, appended to the payload file; literal bodies
 * are read from the store as they are written (DESIGN.md section 5, docs/format.md section 5).
 */
import { once } from 'node:events';
import type { FileHandle } from 'node:fs/promises';
import type { Transform } from 'node:stream';
import { OpWriter, payloadWindowLog, zstdCompressStream, type BodySource, type Store } from '@ferry/core';
import type { PlannedOp } from './plan.js';

/** Bytes and counts by op kind, for reports. */
export interface EmitStats {
  entries: number;
  runEntries: number;
  headerBytes: { base: number; patched: number; literal: number };
  bodies: Record<'same' | 'copy' | 'back' | 'digest' | 'literal' | 'patch' | 'bsdiff', { files: number; bytes: number }>;
  /** Raw data carried: literal bodies, patch-from frames and bsdiff deltas (before payload compression). */
  literalBytes: number;
  patchBytes: number;
  bsdiffBytes: number;
  /** The largest carried files: path, kind and carried bytes. */
  top: { path: string; kind: 'literal' | 'patch' | 'bsdiff'; size: number; carried: number }[];
}

/** Fresh zero stats. */
export function newStats(): EmitStats {
  const z = () => ({ files: 0, bytes: 0 });
  return { entries: 0, runEntries: 0, headerBytes: { base: 0, patched: 0, literal: 0 }, bodies: { same: z(), copy: z(), back: z(), digest: z(), literal: z(), patch: z(), bsdiff: z() }, literalBytes: 0, patchBytes: 0, bsdiffBytes: 0, top: [] };
}

async function readContent(store: Store, d: import('@ferry/core').Digest): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of store.openContent(d)) parts.push(c);
  return Buffer.concat(parts);
}

async function bodySource(store: Store, op: Extract<PlannedOp, { kind: 'entry' }>, stats: EmitStats): Promise<BodySource> {
  const b = op.body;
  switch (b.kind) {
    case 'none': case 'same': case 'copy': case 'back': case 'digest':
      return b;
    case 'literal': {
      stats.literalBytes += b.size;
      stats.top.push({ path: b.path, kind: 'literal', size: b.size, carried: b.size });
      return { kind: 'literal', data: await readContent(store, b.digest) };
    }
    case 'patch': {
      const r = await b.result;
      if (r.kind === 'literal') {
        stats.literalBytes += b.size;
        stats.top.push({ path: b.path, kind: 'literal', size: b.size, carried: b.size });
        return { kind: 'literal', data: await readContent(store, b.digest) };
      }
      stats.top.push({ path: b.path, kind: r.kind, size: b.size, carried: r.bytes.length });
      if (r.kind === 'bsdiff') {
        stats.bsdiffBytes += r.bytes.length;
        return { kind: 'bsdiff', index: b.index, size: b.size, delta: r.bytes };
      }
      stats.patchBytes += r.bytes.length;
      return { kind: 'patch', index: b.index, size: b.size, patch: r.bytes };
    }
  }
}

/** Compression of payload frames: high level, long window (DESIGN.md section 5). */
export interface FrameOptions {
  level: number;
  workers: number;
  /** Checked before every op; on abort the frame's compressor is destroyed. */
  signal?: AbortSignal | undefined;
}

/**
 * The frame's window: what its records decode to at most (carried bodies, literal headers and a
 * few bytes an op), capped by core's PAYLOAD_WINDOW_LOG_MAX, the window every applier accepts.
 */
export function frameWindowLog(ops: PlannedOp[]): number {
  let bytes = 0;
  for (const op of ops) {
    bytes += 64;
    if (op.kind === 'entry') {
      if (op.header.kind === 'literal') bytes += op.header.bytes.length;
      if (op.body.kind === 'literal' || op.body.kind === 'patch') bytes += op.body.size;
    } else if (op.kind === 'tail' || op.kind === 'patchrun') {
      bytes += op.kind === 'tail' ? op.bytes.length : op.patch.length;
    }
  }
  return payloadWindowLog(bytes);
}

/**
 * Writes one layer's ops as a zstd frame at the end of `out`; returns the frame's byte range.
 */
export async function emitLayer(store: Store, ops: PlannedOp[], out: FileHandle, offset: number, frame: FrameOptions, stats: EmitStats): Promise<{ start: number; end: number }> {
  const z = zstdCompressStream({ compressionLevel: frame.level, windowLog: frameWindowLog(ops), enableLongDistanceMatching: true, checksumFlag: true, nbWorkers: frame.workers });
  let pos = offset;
  const drain = (async () => {
    for await (const c of z as AsyncIterable<Buffer>) {
      await out.write(c, 0, c.length, pos);
      pos += c.length;
    }
  })();
  // a failed write of the output (ENOSPC) stops the ops at once, instead of a wait for 'drain'
  const halt = new AbortController();
  drain.catch((err: unknown) => halt.abort(err));
  const w = new OpWriter(z);
  try {
    await writeOps(store, ops, w, z, frame.signal ? AbortSignal.any([frame.signal, halt.signal]) : halt.signal, stats);
  } catch (err) {
    z.destroy();
    await drain.catch(() => {});
    throw halt.signal.aborted ? halt.signal.reason : err;
  }
  z.end();
  await drain;
  return { start: offset, end: pos };
}

async function writeOps(store: Store, ops: PlannedOp[], w: OpWriter, z: Transform, signal: AbortSignal, stats: EmitStats): Promise<void> {
  for (const op of ops) {
    signal.throwIfAborted();
    if (op.kind === 'run') {
      w.run(op.start, op.count);
      stats.runEntries += op.count;
      stats.entries += op.count;
    } else if (op.kind === 'patchrun') {
      w.patchRun(op.start, op.count, op.patch);
      stats.runEntries += op.count;
      stats.entries += op.count;
      stats.headerBytes.patched += op.patch.length;
    } else if (op.kind === 'entry') {
      const body = await bodySource(store, op, stats);
      w.entry(op.header, body, op.pad);
      stats.entries++;
      const hb = op.header.kind === 'literal' ? op.header.bytes.length : op.header.kind === 'patched' ? op.header.patch.length : 0;
      stats.headerBytes[op.header.kind === 'base' ? 'base' : op.header.kind] += hb;
      if (body.kind !== 'none') {
        const key = body.kind;
        stats.bodies[key].files++;
        stats.bodies[key].bytes += body.kind === 'literal' ? body.data.length : body.kind === 'patch' || body.kind === 'bsdiff' ? body.size : 0;
      }
    } else {
      w.tail(op.bytes);
    }
    if (z.writableNeedDrain) await once(z, 'drain', { signal });
  }
}
