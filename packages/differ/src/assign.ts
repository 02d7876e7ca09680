/**
 * Deciding how each fresh body of a layer travels (DESIGN.md section 5, "Matching" and "Encoding
 * cost"):
 * - a binary (ELF, ...) with a single similar baseline file: a `delta` job, which keeps the
 *   cheapest of zstd patch-from, bsdiff and the literal;
 * - everything else gets a reference set chosen by sketch coverage (refset.ts) from its unit's
 *   baseline bodies (package or directory, units.ts) and its similar files, and travels in a
 *   group: one patch-from frame against that set (a new file compresses against its package's old
 *   files). A large body is a group of its own, so its set fits it alone; small bodies of one
 *   unit share a group (one set loaded, and they compress against each other), in tar order, up
 *   to GROUP_BYTES of members;
 * - a group whose set covers too little of it travels as literals, compressed by the payload frame.
 */
import { MAX_OPEN_GROUPS, MAX_PENDING_MEMBERS, PATCH_SPAN_MAX, type Digest } from '@ferry/core';
import type { BaselineIndex } from './match.js';
import type { FreshBody } from './plan.js';
import { SketchIndex, chooseReferenceSet, type Candidate } from './refset.js';
import type { SketchCache } from './sketches.js';
import { unitOf, type DpkgOwners } from './units.js';
import { SEGMENTED_MAX_BODY } from './segment-plan.js';

/** Member bytes of a group of small bodies at most (bounds the applier's decode buffer and the publisher's job). */
export const GROUP_BYTES = 2 * 1024 * 1024;
/** Bodies from this size on are a group of their own. */
export const LARGE_BODY = 256 * 1024;
/** Most members of one group (many tiny files: the group's size list and the applier's waiting members stay small). */
export const GROUP_MEMBERS_MAX = 4096;
/** A set must cover at least this share of a group's fingerprints for the group to be tried. */
const MIN_COVERAGE = 0.02;

/** A group of fresh bodies encoded as one patch-from frame against a reference set. */
export interface PlannedGroup {
  /** The members' unit (units.ts). */
  unit: string;
  /** Baseline entry indexes, in set order. */
  set: number[];
  /** Bodies of this layer before the head whose bodies follow the set's in the reference, in order. */
  earlier: FreshBody[];
  /** Bytes of the whole reference (set and earlier bodies). */
  setBytes: number;
  /** Members in tar order; the first is the group's head. */
  members: FreshBody[];
  bytes: number;
  /** Sketch coverage of the members by the set (for reports). */
  covered: number;
  total: number;
}

/** How one fresh body travels. */
/** `segmented`: a body whose similar file is too large for one patch (segment-plan.ts). */
export type Decision = { kind: 'literal' } | { kind: 'delta'; ref: number } | { kind: 'segmented'; ref: number } | { kind: 'group'; group: PlannedGroup };

/** Bodies from this size on whose similar file is too large for one patch are tried as segmented patches. */
export const SEGMENTED_MIN_BODY = 1024 * 1024;
/** Segment windows are 4-byte offsets: larger references are never segmented. */
const SEGMENTED_MAX_REFERENCE = 2 ** 32 - 1;

/**
 * The similar file of a body that no single patch can use (the file over the reference cap, or
 * file and body over PATCH_SPAN_MAX): its segmented patch's reference, or undefined.
 */
export function segmentedReference(f: FreshBody, index: BaselineIndex, maxPatchReference: number): number | undefined {
  if (f.size < SEGMENTED_MIN_BODY || f.size > SEGMENTED_MAX_BODY) return undefined;
  const i = index.similar(f.path, f.size, SEGMENTED_MAX_REFERENCE);
  if (i === undefined) return undefined;
  const size = index.entries[i]!.size;
  return size > maxPatchReference || size + f.size > PATCH_SPAN_MAX ? i : undefined;
}

/** Options of assignLayer. */
export interface AssignOptions {
  /** Largest reference set (bytes); the applier's cap. */
  maxPatchReference: number;
  /** Member bytes per group (default GROUP_BYTES). */
  groupBytes?: number | undefined;
  /** dpkg owners of the target's paths (its own lists, then the baseline's). */
  owners: DpkgOwners;
  sketches: SketchCache;
  /** false: each body is patched against one similar file at most (format version 1's matching), for comparisons. */
  referenceSets?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

/** Decides every fresh body of a layer; the map holds one decision per body. */
export async function assignLayer(fresh: FreshBody[], index: BaselineIndex, opts: AssignOptions): Promise<Map<FreshBody, Decision>> {
  const out = new Map<FreshBody, Decision>();
  const units = new Map<string, FreshBody[]>();
  // every fresh body's sketch is needed: ask for them all at once, so every worker computes
  if (opts.referenceSets !== false) await Promise.all(fresh.map((f) => opts.sketches.get(f.digest, f.size, opts.signal)));
  for (const f of fresh) {
    const single = index.similar(f.path, f.size, opts.maxPatchReference);
    if (opts.referenceSets === false) {
      out.set(f, single === undefined ? { kind: 'literal' } : { kind: 'delta', ref: single });
      continue;
    }
    const wide = segmentedReference(f, index, opts.maxPatchReference);
    if (wide !== undefined) {
      out.set(f, { kind: 'segmented', ref: wide });
      continue;
    }
    if (single !== undefined && (await opts.sketches.get(f.digest, f.size, opts.signal)).binary) {
      out.set(f, { kind: 'delta', ref: single });
      continue;
    }
    const key = unitOf(f.path, opts.owners);
    const list = units.get(key);
    if (list) list.push(f);
    else units.set(key, [f]);
  }
  for (const [key, members] of units) {
    const unit = await unitCandidates(key, members, index, opts);
    for (const chunk of chunks(members, opts.groupBytes ?? GROUP_BYTES)) {
      const g = await planGroup(key, chunk, unit, index, opts);
      for (const m of chunk) out.set(m, g ? { kind: 'group', group: g } : { kind: 'literal' });
    }
  }
  for (const g of tooManyOpen(fresh, out)) for (const m of g.members) out.set(m, { kind: 'literal' });
  opts.sketches.forget(fresh.map((f) => f.digest));
  return out;
}

/** A candidate of a unit: a baseline body, or a body of the layer (usable by groups after it). */
type UnitCandidate = Candidate & { earlier?: FreshBody | undefined };

/** A unit's candidates and the inverted index over their sketches (ids are positions in `list`). */
interface UnitCandidates {
  list: UnitCandidate[];
  index: SketchIndex;
}

async function unitCandidates(key: string, members: FreshBody[], index: BaselineIndex, opts: AssignOptions): Promise<UnitCandidates> {
  const base = index.unit(key).filter((i) => index.entries[i]!.size <= opts.maxPatchReference);
  const sketch = async (d: Digest, size: number): Promise<Uint32Array> => (await opts.sketches.get(d, size, opts.signal)).sketch;
  const list: UnitCandidate[] = await Promise.all([
    ...base.map(async (i) => ({ index: i, size: index.entries[i]!.size, sketch: await sketch(index.entries[i]!.digest!, index.entries[i]!.size), prior: false })),
    ...members.filter((m) => m.size <= opts.maxPatchReference).map(async (m) => ({ index: index.entries.length + m.pos, size: m.size, sketch: await sketch(m.digest, m.size), prior: false, earlier: m })),
  ]);
  return { list, index: new SketchIndex(list.map((c, id) => ({ id, sketch: c.sketch }))) };
}

/** Splits a unit's members (tar order) into large bodies alone and runs of small ones of at most `bytes`. */
function chunks(members: FreshBody[], bytes: number): FreshBody[][] {
  const out: FreshBody[][] = [];
  let cur: FreshBody[] = [];
  let size = 0;
  for (const m of members) {
    if (m.size >= LARGE_BODY) {
      out.push([m]);
      continue;
    }
    if (cur.length > 0 && (size + m.size > bytes || cur.length >= GROUP_MEMBERS_MAX)) {
      out.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(m);
    size += m.size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** Sorted union of sorted sketches. */
function union(sketches: Uint32Array[]): Uint32Array {
  const all = new Uint32Array(sketches.reduce((a, s) => a + s.length, 0));
  let at = 0;
  for (const s of sketches) {
    all.set(s, at);
    at += s.length;
  }
  all.sort();
  let n = 0;
  for (let i = 0; i < all.length; i++) if (i === 0 || all[i] !== all[n - 1]) all[n++] = all[i]!;
  return all.slice(0, n);
}

async function planGroup(unit: string, members: FreshBody[], candidates: UnitCandidates, index: BaselineIndex, opts: AssignOptions): Promise<PlannedGroup | undefined> {
  const bytes = members.reduce((a, m) => a + m.size, 0);
  const cap = Math.min(opts.maxPatchReference, PATCH_SPAN_MAX - bytes);
  if (cap <= 0) return undefined;
  const head = members[0]!.pos;
  const target = union(await Promise.all(members.map(async (m) => (await opts.sketches.get(m.digest, m.size, opts.signal)).sketch)));
  // the unit's baseline bodies and the bodies of its entries before the group's head
  const hits = candidates.index.hits(target, (id) => (candidates.list[id]!.earlier?.pos ?? -1) < head);
  const chosen = new Map<number, UnitCandidate>();
  for (const [id, h] of hits) chosen.set(candidates.list[id]!.index, { ...candidates.list[id]!, hits: h });
  const priors = new Set<number>();
  for (const m of members) {
    const i = index.similar(m.path, m.size, cap);
    if (i === undefined) continue;
    priors.add(i);
    const known = chosen.get(i);
    if (known) known.prior = true;
    else {
      const e = index.entries[i]!;
      chosen.set(i, { index: i, size: e.size, sketch: (await opts.sketches.get(e.digest!, e.size, opts.signal)).sketch, prior: true });
    }
  }
  const choice = chooseReferenceSet(target, [...chosen.values()], cap);
  if (choice.set.length === 0) return undefined;
  if (!choice.set.some((c) => priors.has(c.index)) && choice.covered < MIN_COVERAGE * choice.total) return undefined;
  const set = choice.set.filter((c) => !c.earlier).map((c) => c.index);
  const earlier = choice.set.flatMap((c) => (c.earlier ? [c.earlier] : []));
  return { unit, set, earlier, setBytes: choice.bytes, members, bytes, covered: choice.covered, total: choice.total };
}

/**
 * Groups that would leave more than MAX_OPEN_GROUPS groups open at once in tar order (a group is
 * open from its head to its last member), or more than MAX_PENDING_MEMBERS members decoded and
 * waiting for their entries: the applier refuses that, so they travel as literals.
 */
function tooManyOpen(fresh: FreshBody[], decisions: Map<FreshBody, Decision>): PlannedGroup[] {
  const open = new Map<PlannedGroup, number>();
  const dropped = new Set<PlannedGroup>();
  let waiting = 0;
  for (const f of fresh) {
    const d = decisions.get(f);
    if (d?.kind !== 'group' || dropped.has(d.group)) continue;
    const g = d.group;
    if (!open.has(g)) {
      if (open.size >= MAX_OPEN_GROUPS || waiting + g.members.length - 1 > MAX_PENDING_MEMBERS) {
        dropped.add(g);
        continue;
      }
      open.set(g, g.members.length);
      waiting += g.members.length;
    }
    const left = open.get(g)! - 1;
    waiting--;
    if (left === 0) open.delete(g);
    else open.set(g, left);
  }
  return [...dropped];
}
