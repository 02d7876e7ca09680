/**
 * Worker thread of the patch pool. Jobs costed as the bytes the link pays at the job's zstd level
 * (DESIGN.md section 5, "Encoding cost"), and the sketches matching needs (sketch.ts):
 * - `delta`: one target against one reference: zstd patch-from, bsdiff (references up to
 *   BSDIFF_MAX_REFERENCE) or the literal, whichever costs least;
 * - `group`: several targets as one patch-from frame against a reference set (docs/format.md
 *   section 5.3), or null when compressing them as literals would cost less;
 * - `segmented`: one large target cut into segments, each patched against a window of one
 *   reference (segment-plan.ts, docs/format.md section 5.4), or the literal when that costs less;
 * - `frame`: a layer's raw op stream (a temp file) compressed into its payload frame;
 * - `sketch`: a body's sketch, and whether it looks binary.
 * Bodies are read from the store by digest, so only digests cross the thread boundary.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { Store, canPatchFrom, packSegments, zstdCompress, zstdCompressSized, zstdPatchEncode } from '@ferry/core';
import { readBodyInto, readBodyRange, type BodyRef } from './body-read.js';
import { BSDIFF_MAX_REFERENCE, bsdiff } from './delta/bsdiff.js';
import { largeBuffer } from './large-buffer.js';
import { Sketcher, looksBinary } from './sketch.js';
import { placeSegments, referencePlan, segmentTable, type SegmentWindow } from './segment-plan.js';
import type { Segment } from '@ferry/core';

export type { BodyRef };

/** A job for the pool. */
export type PatchJob =
  | { kind: 'delta'; id: number; root: string; level: number; ref: BodyRef; target: BodyRef }
  | { kind: 'group'; id: number; root: string; level: number; set: BodyRef[]; members: BodyRef[] }
  /** `maxWindow`: the reference cap in force (each window's largest size). */
  | { kind: 'segmented'; id: number; root: string; level: number; ref: BodyRef; target: BodyRef; maxWindow: number }
  | { kind: 'frame'; id: number; level: number; raw: string; size: number; windowLog: number; out: string }
  | { kind: 'sketch'; id: number; root: string; body: BodyRef };

/**
 * The cheapest encoding of a delta job's target: a zstd patch-from frame, a raw bsdiff delta
 * (compressed later by the payload frame), or the literal (read from the store when emitted).
 */
export type PatchChoice = { kind: 'literal'; bytes: null } | { kind: 'patch' | 'bsdiff'; bytes: Uint8Array };

/** A job's result. */
export type PatchResult = { id: number; error?: string } & (
  | ({ job: 'delta' } & PatchChoice)
  /** `frame` null: the members cost less as literals than `literalEstimate`. */
  | { job: 'group'; frame: Uint8Array | null; literalEstimate: number }
  | { job: 'frame'; bytes: number }
  /** `segments` null: the literal costs less. */
  | { job: 'segmented'; segments: Segment[] | null; frames: Uint8Array[] }
  | { job: 'sketch'; sketch: Uint32Array; binary: boolean }
);

/**
 * A literal's cost in the payload frame, estimated cheaply: zstd level 3 alone, scaled by what
 * level 19 with the layer's long window typically saves over it on code and text.
 */
const LITERAL_ESTIMATE_SCALE = 0.8;

function literalEstimate(bytes: Uint8Array): number {
  return Math.ceil(zstdCompress(bytes, { compressionLevel: 3 }).length * LITERAL_ESTIMATE_SCALE);
}

const stores = new Map<string, Promise<Store>>();

async function storeAt(root: string): Promise<Store> {
  let s = stores.get(root);
  if (!s) stores.set(root, (s = Store.open(root)));
  return s;
}

/**
 * Two buffers per worker, reused by every job whose bodies fit SCRATCH_KEEP: allocating a buffer
 * per small job left the C heap fragmented, and the process's RSS grew job after job. Larger
 * bodies (a 16 MiB reference set, a 32 MB segmented body) get buffers of their own, dropped with
 * the job: kept, they held up to 64 MB in each worker for the rest of the bundle.
 */
const scratch: Buffer[] = [Buffer.alloc(0), Buffer.alloc(0)];
/** Largest scratch buffer a worker keeps between jobs. */
const SCRATCH_KEEP = 4 * 1024 * 1024;

/** The bodies concatenated into scratch buffer `slot` (or a buffer of their own), as a view of exactly their total size. */
async function concat(store: Store, bodies: BodyRef[], slot: 0 | 1, verify = true): Promise<Buffer> {
  const size = bodies.reduce((a, b) => a + b.size, 0);
  let buf = scratch[slot]!;
  if (buf.length < size) {
    if (size <= SCRATCH_KEEP) buf = scratch[slot] = Buffer.allocUnsafeSlow(Math.ceil(size / 2 ** 20) * 2 ** 20);
    else buf = largeBuffer(size);
  }
  const out = buf.subarray(0, size);
  let at = 0;
  for (const b of bodies) {
    await readBodyInto(store, b, out.subarray(at, at + b.size), slot, verify);
    at += b.size;
  }
  return out;
}

async function delta(job: Extract<PatchJob, { kind: 'delta' }>): Promise<PatchResult> {
  const store = await storeAt(job.root);
  const [ref, target] = await Promise.all([concat(store, [job.ref], 0), concat(store, [job.target], 1)]);
  let best: PatchChoice = { kind: 'literal', bytes: null };
  let cost = literalEstimate(target);
  if (canPatchFrom(ref, target.length)) {
    await collectLarge(ref.length + target.length);
    const patch = zstdPatchEncode(ref, target, job.level);
    if (patch.length < cost) [best, cost] = [{ kind: 'patch', bytes: patch }, patch.length];
  }
  if (ref.length > 0 && ref.length <= BSDIFF_MAX_REFERENCE) {
    // each stage's native memory (the patch's zstd context, bsdiff's suffix arrays) is freed only
    // once collected: without this, all three stages' memory lived until the job ended
    await collectLarge(ref.length + target.length);
    const d = bsdiff(ref, target);
    await collectLarge(ref.length + target.length);
    const size = zstdCompress(d, { compressionLevel: job.level }).length;
    if (size < cost) [best, cost] = [{ kind: 'bsdiff', bytes: d }, size];
  }
  return { id: job.id, job: 'delta', ...best };
}

async function group(job: Extract<PatchJob, { kind: 'group' }>): Promise<PatchResult> {
  const store = await storeAt(job.root);
  const [ref, target] = await Promise.all([concat(store, job.set, 0), concat(store, job.members, 1)]);
  const estimate = literalEstimate(target);
  if (!canPatchFrom(ref, target.length)) return { id: job.id, job: 'group', frame: null, literalEstimate: estimate };
  await collectLarge(ref.length + target.length);
  const frame = zstdPatchEncode(ref, target, job.level);
  return { id: job.id, job: 'group', frame: frame.length < estimate ? frame : null, literalEstimate: estimate };
}

/**
 * A segmented job's plan, with one whole body held at a time: the reference while it is indexed,
 * then the target while its segments are placed and its literal cost is estimated.
 */
async function planSegmented(store: Store, job: Extract<PatchJob, { kind: 'segmented' }>): Promise<{ windows: SegmentWindow[]; literal: number }> {
  const plan = referencePlan(await concat(store, [job.ref], 0), job.target.size, job.maxWindow);
  await collectNow();
  const target = await concat(store, [job.target], 1);
  return { windows: placeSegments(plan, target), literal: literalEstimate(target) };
}

/**
 * A segmented job holds only one segment and its window while it patches, each read by range:
 * with both whole bodies held through the patches, debian-upgrade's libicudata job (two ~30 MB
 * bodies) set the bundle's peak (bench/README.md, "Bundle RSS").
 */
async function segmented(job: Extract<PatchJob, { kind: 'segmented' }>): Promise<PatchResult> {
  const store = await storeAt(job.root);
  const { windows, literal } = await planSegmented(store, job);
  const window = largeBuffer(Math.max(0, ...windows.map((w) => w.length)));
  const segment = largeBuffer(Math.max(0, ...windows.map((w) => w.size)));
  const frames: Buffer[] = [];
  for (const w of windows) {
    await readBodyRange(store, job.ref, w.offset, window.subarray(0, w.length), 0);
    await readBodyRange(store, job.target, w.start, segment.subarray(0, w.size), 1);
    // the reads' whole bodies (and, before the first segment, the plan's buffers) are freed once collected
    await collectNow();
    frames.push(zstdPatchEncode(window.subarray(0, w.length), segment.subarray(0, w.size), job.level));
    // each large patch has its own zstd context (~200 MB of match tables), freed only once
    // collected: without this, every segment's context lived until the job ended
    await collectNow();
  }
  const segments = segmentTable(windows, frames);
  const cost = frames.reduce((a, f) => a + f.length, 0) + packSegments(segments).length;
  if (cost >= literal) return { id: job.id, job: 'segmented', segments: null, frames: [] };
  return { id: job.id, job: 'segmented', segments, frames };
}

async function frame(job: Extract<PatchJob, { kind: 'frame' }>): Promise<PatchResult> {
  const out = await open(job.out, 'w');
  let bytes = 0;
  try {
    const z = zstdCompressSized(createReadStream(job.raw, { highWaterMark: 1 << 20 }), job.size, { level: job.level, windowLog: job.windowLog, longDistanceMatching: true, checksum: true });
    for await (const c of z) {
      await out.write(c, 0, c.length, bytes);
      bytes += c.length;
    }
  } finally {
    await out.close();
  }
  return { id: job.id, job: 'frame', bytes };
}

async function sketch(job: Extract<PatchJob, { kind: 'sketch' }>): Promise<PatchResult> {
  const store = await storeAt(job.root);
  const s = new Sketcher();
  let head: Uint8Array | undefined;
  if (job.body.size <= SCRATCH_KEEP) {
    // read whole into a kept buffer: streamed, every body left two buffers for the collector
    head = await concat(store, [job.body], 0, false);
    s.update(head);
  } else {
    for await (const c of store.openContent(job.body.digest, { maxSize: job.body.size, verify: false })) {
      head ??= c;
      s.update(c);
    }
  }
  return { id: job.id, job: 'sketch', sketch: s.digest(), binary: head !== undefined && head.length > 0 && looksBinary(head) };
}

async function run(job: PatchJob): Promise<PatchResult> {
  if (job.kind === 'delta') return delta(job);
  if (job.kind === 'group') return group(job);
  if (job.kind === 'sketch') return sketch(job);
  if (job.kind === 'segmented') return segmented(job);
  return frame(job);
}

/**
 * The garbage collector, called after each patch job and every SKETCH_GC_BYTES of sketched bodies:
 * zstd contexts and body buffers live outside the JS heap, and V8 left several jobs' worth
 * (hundreds of MB) uncollected between jobs.
 */
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;
const SKETCH_GC_BYTES = 16 * 1024 * 1024;
let sketched = 0;

/** Collects garbage when due, then lets the event loop run the finalizers that free native memory. */
async function collectAfter(job: PatchJob): Promise<void> {
  if (job.kind === 'sketch') {
    sketched += job.body.size;
    if (sketched < SKETCH_GC_BYTES) return;
  }
  sketched = 0;
  await collectNow();
}

/**
 * Bodies spanning more than this get a collection between a job's stages (the reads' compressed
 * buffers and the literal estimate's output before the patch, then each stage's context or arrays
 * before the next): below it they are small (and the patch context is reused), and a collection
 * per small job would cost more CPU than it frees.
 */
const STAGE_GC_SPAN = 1024 * 1024;

/** Collects garbage between a job's stages when its bodies span more than STAGE_GC_SPAN bytes. */
async function collectLarge(span: number): Promise<void> {
  if (span > STAGE_GC_SPAN) await collectNow();
}

/** Collects garbage now and lets the finalizers that free native memory run. */
async function collectNow(): Promise<void> {
  collect();
  await new Promise((resolve) => setImmediate(resolve));
}

parentPort?.on('message', (job: PatchJob) => {
  run(job).finally(() => collectAfter(job)).then(
    // results are copied, not transferred: small Buffers share Node's pool ArrayBuffer
    (r) => parentPort!.postMessage(r),
    (err: unknown) => parentPort!.postMessage({ id: job.id, job: job.kind, error: String((err as Error).message ?? err) }),
  );
});
