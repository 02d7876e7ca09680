/**
 * Emitting a planned layer (docs/format.md section 5): its op records are written uncompressed to
 * a temp file, literal bodies streamed from the store, patch and group bodies from the pool's jobs,
 * which start in op order at most `lookahead` ahead of the writer (bounded memory whatever the layer
 * holds). The raw stream is then compressed into the layer's payload frame by a pool job
 * (patch-worker.ts `frame`), its window fitted to the stream's size.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { OpWriter, PATCH_SPAN_MAX, PAYLOAD_PART, type BodySource, type Store } from '@ferry/core';
import type { Decision, PlannedGroup } from './assign.js';
import type { BaselineIndex } from './match.js';
import { patchMemory, type PatchPool } from './patch-pool.js';
import type { PatchResult } from './patch-worker.js';
import type { FreshBody, LayerOps, PlannedOp } from './plan.js';
import type { EmitStats } from './stats.js';

export { newStats, type EmitStats } from './stats.js';

/** What emitting needs. */
export interface EmitContext {
  store: Store;
  pool: PatchPool;
  index: BaselineIndex;
  stats: EmitStats;
  /** The reference cap in force: a segmented patch's largest window. */
  maxRef: number;
  /** Jobs started ahead of the writer at most (default 4). */
  lookahead?: number | undefined;
  signal?: AbortSignal | undefined;
}

type Job = { key: FreshBody | PlannedGroup; start: () => Promise<PatchResult>; result?: Promise<PatchResult> };

/** Jobs in op order, started at most `lookahead` ahead of the one consumed. */
class JobQueue {
  private readonly jobs: Job[] = [];
  private readonly at = new Map<FreshBody | PlannedGroup, number>();
  private consumed = 0;

  constructor(private readonly lookahead: number) {}

  add(job: Job): void {
    this.at.set(job.key, this.jobs.length);
    this.jobs.push(job);
  }

  /** The result of `key`'s job; starts it and the next ones up to the lookahead. */
  async take(key: FreshBody | PlannedGroup): Promise<PatchResult> {
    const i = this.at.get(key)!;
    this.consumed = i;
    for (let j = i; j < Math.min(this.jobs.length, i + this.lookahead); j++) this.startAt(j);
    const r = await this.jobs[i]!.result!;
    this.jobs[i] = { key, start: this.jobs[i]!.start }; // drop the result once taken
    return r;
  }

  private startAt(j: number): void {
    const job = this.jobs[j]!;
    if (job.result) return;
    job.result = job.start();
    job.result.catch(() => {}); // awaited by take
  }

  /** Starts the first jobs before writing begins. */
  prime(): void {
    for (let j = this.consumed; j < Math.min(this.jobs.length, this.lookahead); j++) this.startAt(j);
  }
}

function jobsOf(ctx: EmitContext, layer: LayerOps, decisions: Map<FreshBody, Decision>, lookahead: number): JobQueue {
  const q = new JobQueue(lookahead);
  const seen = new Set<PlannedGroup>();
  for (const f of layer.fresh) {
    const d = decisions.get(f)!;
    if (d.kind === 'delta') {
      const ref = ctx.index.entries[d.ref]!;
      const cost = Math.max(patchMemory(ref.size, f.size), 9 * ref.size + 2 * f.size);
      q.add({ key: f, start: () => ctx.pool.run({ kind: 'delta', ref: { digest: ref.digest!, size: ref.size }, target: { digest: f.digest, size: f.size } }, cost) });
    } else if (d.kind === 'segmented') {
      const ref = ctx.index.entries[d.ref]!;
      const window = Math.min(ref.size, ctx.maxRef);
      const cost = ref.size + f.size + patchMemory(window, Math.min(f.size, PATCH_SPAN_MAX - window));
      q.add({ key: f, start: () => ctx.pool.run({ kind: 'segmented', ref: { digest: ref.digest!, size: ref.size }, target: { digest: f.digest, size: f.size }, maxWindow: ctx.maxRef }, cost) });
    } else if (d.kind === 'group' && !seen.has(d.group)) {
      const g = d.group;
      seen.add(g);
      const set = [...g.set.map((i) => ({ digest: ctx.index.entries[i]!.digest!, size: ctx.index.entries[i]!.size })), ...g.earlier.map((e) => ({ digest: e.digest, size: e.size }))];
      q.add({ key: g, start: () => ctx.pool.run({ kind: 'group', set, members: g.members.map((m) => ({ digest: m.digest, size: m.size })) }, patchMemory(g.setBytes, g.bytes)) });
    }
  }
  return q;
}

/**
 * Re-cuts a body stream into records of exactly PAYLOAD_PART bytes (the last may be shorter),
 * whatever the store's chunking. The buffer yielded is reused: the writer copies each record.
 */
async function* parts(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const buf = Buffer.allocUnsafe(PAYLOAD_PART);
  let n = 0;
  for await (const c of source) {
    let off = 0;
    while (off < c.length) {
      const take = Math.min(PAYLOAD_PART - n, c.length - off);
      buf.set(c.subarray(off, off + take), n);
      n += take;
      off += take;
      if (n === PAYLOAD_PART) {
        yield buf;
        n = 0;
      }
    }
  }
  if (n > 0) yield buf.subarray(0, n);
}

/** Per-layer state of the writer: which groups were opened, and which travel as literals. */
interface GroupState {
  opened: Map<PlannedGroup, number>;
  literal: Set<PlannedGroup>;
  count: number;
}

/** The body record of a fresh entry, and the literal (if any) to stream after it. */
async function freshBody(ctx: EmitContext, q: JobQueue, f: FreshBody, d: Decision, gs: GroupState): Promise<{ body: BodySource; literal?: FreshBody }> {
  const s = ctx.stats;
  const literal = (): { body: BodySource; literal: FreshBody } => {
    s.literalBytes += f.size;
    s.top.push({ path: f.path, kind: 'literal', size: f.size, carried: f.size });
    return { body: { kind: 'literal', size: f.size }, literal: f };
  };
  if (d.kind === 'literal') return literal();
  if (d.kind === 'delta') {
    const r = await q.take(f);
    if (r.job !== 'delta' || r.kind === 'literal') return literal();
    s.top.push({ path: f.path, kind: r.kind, size: f.size, carried: r.bytes.length });
    if (r.kind === 'bsdiff') {
      s.bsdiffBytes += r.bytes.length;
      return { body: { kind: 'bsdiff', index: d.ref, size: f.size, delta: r.bytes } };
    }
    s.patchBytes += r.bytes.length;
    return { body: { kind: 'patch', index: d.ref, size: f.size, patch: r.bytes } };
  }
  if (d.kind === 'segmented') {
    const r = await q.take(f);
    if (r.job !== 'segmented' || !r.segments) return literal();
    const bytes = r.frames.reduce((a, x) => a + x.length, 0);
    s.segmentedBytes += bytes;
    s.top.push({ path: f.path, kind: 'segmented', size: f.size, carried: bytes });
    return { body: { kind: 'segmented', index: d.ref, size: f.size, segments: r.segments, frames: r.frames } };
  }
  const g = d.group;
  if (gs.literal.has(g)) return literal();
  const seq = gs.opened.get(g);
  if (seq !== undefined) return { body: { kind: 'member', d: gs.count - 1 - seq } };
  const r = await q.take(g);
  if (r.job !== 'group' || !r.frame) {
    gs.literal.add(g);
    return literal();
  }
  gs.opened.set(g, gs.count++);
  s.groupBytes += r.frame.length;
  s.groups.push({ unit: g.unit, head: f.path, files: g.members.length, setFiles: g.set.length + g.earlier.length, setBytes: g.setBytes, bytes: g.bytes, frame: r.frame.length, covered: g.total === 0 ? 0 : g.covered / g.total });
  for (const m of g.members) s.top.push({ path: m.path, kind: 'group', size: m.size, carried: Math.round((r.frame.length * m.size) / g.bytes) });
  return { body: { kind: 'group', set: g.set, earlier: g.earlier.map((e) => f.pos - e.pos), sizes: g.members.map((m) => m.size), n: r.frame.length, frame: r.frame } };
}

function countEntry(s: EmitStats, op: Extract<PlannedOp, { kind: 'entry' }>, body: BodySource, size: number): void {
  s.entries++;
  const hb = op.header.kind === 'literal' ? op.header.bytes.length : op.header.kind === 'patched' ? op.header.patch.length : 0;
  s.headerBytes[op.header.kind === 'base' ? 'base' : op.header.kind] += hb;
  if (body.kind === 'none') return;
  s.bodies[body.kind].files++;
  if (body.kind === 'literal' || body.kind === 'patch' || body.kind === 'bsdiff' || body.kind === 'group' || body.kind === 'member' || body.kind === 'segmented') s.bodies[body.kind].bytes += size;
}

/**
 * Writes one layer's ops, uncompressed, to `rawPath`; returns its size. The caller compresses it
 * into the payload frame (a `frame` pool job).
 */
export async function emitLayer(ctx: EmitContext, layer: LayerOps, decisions: Map<FreshBody, Decision>, rawPath: string): Promise<number> {
  const q = jobsOf(ctx, layer, decisions, ctx.lookahead ?? 4);
  q.prime();
  const out = createWriteStream(rawPath);
  const closed = once(out, 'close');
  closed.catch(() => {}); // a write error surfaces at the next drain wait or at the end
  const w = new OpWriter(out);
  const gs: GroupState = { opened: new Map(), literal: new Set(), count: 0 };
  const s = ctx.stats;
  try {
    for (const op of layer.ops) {
      ctx.signal?.throwIfAborted();
      if (op.kind === 'run') {
        w.run(op.start, op.count);
        s.runEntries += op.count;
        s.entries += op.count;
      } else if (op.kind === 'patchrun') {
        w.patchRun(op.start, op.count, op.patch);
        s.runEntries += op.count;
        s.entries += op.count;
        s.headerBytes.patched += op.patch.length;
      } else if (op.kind === 'entry') {
        const b = op.body.kind === 'fresh' ? await freshBody(ctx, q, op.body.fresh, decisions.get(op.body.fresh)!, gs) : { body: op.body as BodySource };
        w.entry(op.header, b.body, op.pad);
        countEntry(s, op, b.body, op.body.kind === 'fresh' ? op.body.fresh.size : 0);
        if (b.literal) {
          for await (const p of parts(ctx.store.openContent(b.literal.digest, { maxSize: b.literal.size }))) {
            w.part(p);
            if (out.writableNeedDrain) await once(out, 'drain');
          }
        }
      } else {
        w.tail(op.bytes);
      }
      if (out.writableNeedDrain) await once(out, 'drain');
    }
  } catch (err) {
    out.destroy();
    await closed.catch(() => {});
    throw err;
  }
  out.end();
  await closed;
  return out.bytesWritten;
}
