/**
 * Looking inside a bundle without applying it (`ferry bundle inspect`): the header decoded with or
 * without its signatures checked, and statistics of the payload ops (docs/format.md sections 4-5):
 * how many entries each op kind rebuilds, the data bytes each carries, the compressed frame of each
 * layer, and the files that cost the most. Op and body kinds this version does not name (a newer
 * differ's) are counted under their own names rather than refused.
 */
import { FerryError } from '../errors.js';
import type { Digest } from '../util/digest.js';
import { parseHeaderGroup } from '../tar/group.js';
import type { Progress } from '../store/import.js';
import type { BaselineEntry } from './baseline.js';
import { payloadRange, type ChunkSource } from './container.js';
import { decodeHeaderWith, parseEnvelope, type BundleHeader } from './header.js';
import { patchBytes, readOps, type HeaderSource } from './payload.js';

/** A header decoded without checking signatures, with the key ids its envelopes name. */
export interface UnverifiedHeader {
  header: BundleHeader;
  /** Key ids of the signatures (hints, not checked): header role and release role. */
  signers: { header: string[]; release: string[] };
}

/**
 * Decodes a header envelope WITHOUT verifying any signature, for inspection only: nothing it
 * returns may be trusted or applied (the applier uses verifyHeader). Shape, limits and the chunk
 * layout are still checked, so the payload can be read safely.
 */
export function decodeHeaderUnverified(envelopeBytes: Uint8Array): UnverifiedHeader {
  const outer = parseEnvelope('header', envelopeBytes);
  let release: string[] = [];
  const header = decodeHeaderWith(outer.signed, (env) => {
    const inner = parseEnvelope('release', env);
    release = inner.signatures.map((s) => s.keyid);
    return inner.signed;
  });
  return { header, signers: { header: outer.signatures.map((s) => s.keyid), release } };
}

/** Options for inspectBundle. */
export interface InspectOptions {
  /** The baseline entry table (loadBaseline), when the store holds it: names the files of base/patched headers. */
  baseline?: BaselineEntry[] | undefined;
  /** How many of the costliest files to list (default 10). */
  top?: number;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

/** Entries and data of one kind. `bytes`: data carried in the payload before compression; `size`: file body bytes produced, as far as known. */
export interface KindStats {
  count: number;
  bytes: number;
  size: number;
}

/** One target layer. */
export interface LayerInspection {
  index: number;
  diffId: Digest;
  mode: 'reuse' | 'rebuild';
  /** Uncompressed tar size. */
  size: number;
  gzipSize: number;
  /** Compressed frame bytes in the payload (0 for a reused layer). */
  frameBytes: number;
  entries: number;
  /** Data bytes the frame carries before compression. */
  carried: number;
}

/**
 * A file whose body the payload carries: a literal, a delta, or a group member (`kind` 'group'),
 * charged its share of the group's frame by size as the differ charges it.
 */
export interface CarriedFile {
  path: string;
  layer: number;
  kind: string;
  /** Body size in the target. */
  size: number;
  /** Bytes of body data in the payload (before compression). */
  carried: number;
}

/** What inspectBundle found. */
export interface BundleInspection {
  /** Target entries the rebuilt layers hold. */
  entries: number;
  /** Entries rebuilt by run-like records (RUN, and any newer kind such as a patched run). */
  runEntries: number;
  /** Run-like records by op name: records, entries covered, data bytes (a run's header patch). */
  runs: Record<string, { records: number; entries: number; bytes: number }>;
  /** ENTRY headers by source: `base` (verbatim baseline), `patched` (bytes = patch), `literal`, newer kinds by name. */
  headers: Record<'base' | 'patched' | 'literal', { count: number; bytes: number }> & Record<string, { count: number; bytes: number }>;
  /** ENTRY bodies by kind (`none`, `same`, `copy`, `back`, `digest`, `literal`, `patch`, newer kinds by name). */
  bodies: Record<string, KindStats>;
  /** Non-zero paddings carried. */
  pads: { count: number; bytes: number };
  /** Layer tails carried. */
  tails: { count: number; bytes: number };
  /** Every data byte the ops carry before compression (headers, patches, bodies, pads, tails). */
  carried: number;
  layers: LayerInspection[];
  /** The files carrying the most body data, most first. */
  top: CarriedFile[];
  /** True when the baseline table was given (base/patched headers named by path, not `baseline#N`). */
  pathsResolved: boolean;
}

/** Loose view of a decoded op or body, so kinds added after this file still count. */
type Loose = { op?: string; kind?: string; start?: unknown; count?: unknown; patch?: unknown; size?: unknown; data?: AsyncIterable<Uint8Array> };

function emptyInspection(): BundleInspection {
  return {
    entries: 0,
    runEntries: 0,
    runs: {},
    headers: { base: { count: 0, bytes: 0 }, patched: { count: 0, bytes: 0 }, literal: { count: 0, bytes: 0 } },
    bodies: Object.fromEntries(['none', 'same', 'copy', 'back', 'digest', 'literal', 'patch'].map((k) => [k, { count: 0, bytes: 0, size: 0 }])),
    pads: { count: 0, bytes: 0 },
    tails: { count: 0, bytes: 0 },
    carried: 0,
    layers: [],
    top: [],
    pathsResolved: false,
  };
}

/** Path and size of an entry from its header source, when they can be known. */
function describeHeader(h: HeaderSource, baseline: BaselineEntry[] | undefined): { path: string; size?: number | undefined } {
  if (h.kind === 'literal') {
    try {
      const info = parseHeaderGroup(Buffer.from(h.bytes));
      return { path: info.path, size: info.size };
    } catch {
      return { path: '(unparsable header)' };
    }
  }
  if (typeof h.index !== 'number') return { path: `(${String((h as { kind: unknown }).kind)} header)` };
  const base = baseline?.[h.index];
  if (!base) return { path: `baseline#${h.index}` };
  if (h.kind === 'patched') {
    try {
      const info = parseHeaderGroup(patchBytes(base.header, h.patch));
      return { path: info.path, size: info.size };
    } catch {
      // a patch that needs its checksums recomputed does not parse as is; the path rarely changes
    }
  }
  return { path: base.path, size: base.size };
}

async function drain(data: AsyncIterable<Uint8Array> | undefined): Promise<number> {
  let n = 0;
  if (data) for await (const p of data) n += p.length;
  return n;
}

type LooseOp = Loose & { header?: HeaderSource; body?: Loose; pad?: Uint8Array; bytes?: Uint8Array };

/** Open groups whose frame shares are kept for their MEMBER entries, at most (past it the head keeps the whole frame). */
const SHARED_GROUPS_MAX = 1024;

/**
 * The frame bytes each member of a layer's groups is charged, as the differ charges them (a
 * group's frame split by member size, docs/format.md section 5.3): the head's share when the
 * GROUP entry is counted, each later member's when its MEMBER entry is.
 */
class GroupShares {
  /** Shares not yet taken, by group number; groups are numbered as they open. */
  private readonly pending = new Map<number, number[]>();
  private opened = 0;

  /** A GROUP of `frame` bytes with members of `sizes`: returns the head's share. */
  open(frame: number, sizes: readonly number[]): number {
    const total = sizes.reduce((a, b) => a + b, 0);
    const shares = sizes.map((size) => (total > 0 ? Math.round((frame * size) / total) : 0));
    const n = this.opened++;
    if (this.pending.size >= SHARED_GROUPS_MAX) return frame;
    if (shares.length > 1) this.pending.set(n, shares.slice(1));
    return shares[0] ?? frame;
  }

  /** A MEMBER of the group opened `d` groups before the latest: its share (0 when unknown). */
  member(d: number): number {
    const n = this.opened - 1 - d;
    const list = this.pending.get(n);
    const share = list?.shift() ?? 0;
    if (list && list.length === 0) this.pending.delete(n);
    return share;
  }
}

/** Counts one ENTRY op; returns the data bytes it carried. Its body data is read here, in order. */
async function countEntry(op: LooseOp, layer: number, acc: BundleInspection, carriedFiles: CarriedFile[], baseline: BaselineEntry[] | undefined, groups: GroupShares): Promise<number> {
  const h = op.header as HeaderSource & { kind: string; bytes?: unknown; patch?: unknown };
  const headerData = h.bytes instanceof Uint8Array ? h.bytes : h.patch instanceof Uint8Array ? h.patch : undefined;
  const hb = headerData?.length ?? 0;
  const hs = (acc.headers[h.kind] ??= { count: 0, bytes: 0 });
  hs.count++;
  hs.bytes += hb;
  const body = op.body as Loose & { index?: unknown };
  const kind = String(body.kind);
  const bytes = await drain(body.data);
  const where = describeHeader(h, baseline);
  const copied = kind === 'copy' && typeof body.index === 'number' ? baseline?.[body.index]?.size : undefined;
  const size = typeof body.size === 'number' ? body.size : kind === 'none' ? 0 : (copied ?? where.size ?? 0);
  const stats = (acc.bodies[kind] ??= { count: 0, bytes: 0, size: 0 });
  stats.count++;
  stats.bytes += bytes;
  stats.size += size;
  const pad = op.pad?.length ?? 0;
  if (pad > 0) acc.pads.count++;
  acc.pads.bytes += pad;
  const loose = body as { sizes?: unknown; d?: unknown };
  if (kind === 'group' && Array.isArray(loose.sizes)) carriedFiles.push({ path: where.path, layer, kind, size, carried: groups.open(bytes, loose.sizes as number[]) });
  else if (kind === 'member' && typeof loose.d === 'number') carriedFiles.push({ path: where.path, layer, kind: 'group', size, carried: groups.member(loose.d) });
  else if (bytes > 0) carriedFiles.push({ path: where.path, layer, kind, size, carried: bytes });
  return hb + bytes + pad;
}

/** Counts a RUN or any newer run-like record (one with a count); returns the data bytes it carried. */
function countRun(op: LooseOp & { count: number }, acc: BundleInspection): number {
  const run = (acc.runs[String(op.op)] ??= { records: 0, entries: 0, bytes: 0 });
  const bytes = op.patch instanceof Uint8Array ? op.patch.length : 0;
  run.records++;
  run.entries += op.count;
  run.bytes += bytes;
  acc.runEntries += op.count;
  return bytes;
}

/** Counts one layer's ops into `acc`; returns the layer's entries and carried bytes. */
async function inspectFrame(ops: AsyncIterable<unknown>, layer: number, acc: BundleInspection, carriedFiles: CarriedFile[], baseline: BaselineEntry[] | undefined): Promise<{ entries: number; carried: number }> {
  let entries = 0;
  let carried = 0;
  const groups = new GroupShares();
  for await (const raw of ops) {
    const op = raw as LooseOp;
    if (op.op === 'entry') {
      carried += await countEntry(op, layer, acc, carriedFiles, baseline, groups);
      entries++;
    } else if (op.op === 'tail') {
      acc.tails.count++;
      acc.tails.bytes += op.bytes!.length;
      carried += op.bytes!.length;
    } else if (typeof op.count === 'number') {
      carried += countRun(op as LooseOp & { count: number }, acc);
      entries += op.count;
    } else {
      throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `payload holds an op this ferry cannot count: ${String(op.op)}`);
    }
  }
  return { entries, carried };
}

/**
 * Reads the payload of a bundle (every chunk verified against the header) and counts its ops.
 * The header must come from verifyHeader or decodeHeaderUnverified.
 */
export async function inspectBundle(header: BundleHeader, chunks: ChunkSource, opts: InspectOptions = {}): Promise<BundleInspection> {
  const acc = emptyInspection();
  acc.pathsResolved = opts.baseline !== undefined;
  const carriedFiles: CarriedFile[] = [];
  const total = header.layers.reduce((a, l) => a + (l.end - l.start), 0);
  let done = 0;
  for (const [index, l] of header.layers.entries()) {
    opts.signal?.throwIfAborted();
    const li: LayerInspection = { index, diffId: l.diffId, mode: l.mode, size: l.size, gzipSize: l.gzipSize, frameBytes: l.end - l.start, entries: 0, carried: 0 };
    if (l.mode === 'rebuild') {
      opts.onProgress?.({ phase: `layer ${index + 1}/${header.layers.length}`, done, total });
      // the applier's cap on a frame's decoded size
      const ops = readOps(payloadRange(header, chunks, l.start, l.end, opts.signal), 4 * l.size + (1 << 20), { version: header.version });
      const { entries, carried } = await inspectFrame(ops, index, acc, carriedFiles, opts.baseline);
      li.entries = entries;
      li.carried = carried;
      acc.entries += entries;
      acc.carried += carried;
      done += l.end - l.start;
    }
    acc.layers.push(li);
  }
  carriedFiles.sort((a, b) => b.carried - a.carried || a.path.localeCompare(b.path));
  acc.top = carriedFiles.slice(0, opts.top ?? 10);
  return acc;
}
