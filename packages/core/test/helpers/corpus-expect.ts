/**
 * Assertions shared by the skeleton corpus tests: the round-trip invariant (DESIGN.md section 2)
 * and lookups of entry metadata with messages that name what was there instead.
 */
import { expect } from 'vitest';
import { headerBlockOffsets, normalizePath, parseHeaderGroup, sha256, type SkeletonEntry } from '../../src/index.js';
import { entryAt, type RoundTrip } from './roundtrip.js';

/** A round trip stripped of bodies, cached per tar so metadata tests reuse it. */
export type Checked = Pick<RoundTrip, 'entries' | 'trailer' | 'original'> & { length: number };

/** Asserts sha256(reassembled) == sha256(original) == trailer.diffId and that the file form is lossless. */
export function expectExact(r: RoundTrip, length: number): Checked {
  expect(r.firstDiff, 'first byte where the reassembled tar differs').toBe(-1);
  expect(r.reassembled).toBe(r.original);
  expect(r.trailer.diffId).toBe(r.original);
  expect(r.trailer.size).toBe(length);
  expect(r.trailer.count).toBe(r.entries.length);
  // what readSkeleton gives back is what splitLayer produced
  const shape = (e: SkeletonEntry): unknown => ({ ...e, raw: sha256(e.raw) });
  expect(r.decoded.map(shape)).toEqual(r.entries.map(shape));
  for (const e of r.entries) {
    // the applier re-reads header groups from bytes; it must see what the splitter saw
    const group = Buffer.from(e.raw.subarray(e.raw.length % 512));
    expect(parseHeaderGroup(group), `header group of ${e.path}`).toEqual({ path: e.path, type: e.type, linkname: e.linkname, size: e.size });
    expect(e.digest !== undefined, `${e.path}: digest present exactly when size > 0`).toBe(e.size > 0);
    if (e.digest !== undefined) expect(r.contents.get(e.digest)?.length).toBe(e.size);
  }
  return { entries: r.entries, trailer: r.trailer, original: r.original, length };
}

/** The entry at `path` (normalised); fails listing the paths present when it is missing. */
export function member(entries: readonly SkeletonEntry[], path: string): SkeletonEntry {
  const e = entryAt(entries, path);
  if (e === undefined) {
    const have = entries.map((x) => normalizePath(x.path).slice(0, 80)).join('\n  ');
    throw new Error(`no entry ${JSON.stringify(path.slice(0, 120))} (${Buffer.byteLength(path)} bytes); entries:\n  ${have}`);
  }
  return e;
}

/** Whether an entry at `path` exists. */
export function has(entries: readonly SkeletonEntry[], path: string): boolean {
  return entryAt(entries, path) !== undefined;
}

/** Asserts a regular file entry with a body (or none when empty). */
export function expectFile(entries: readonly SkeletonEntry[], path: string, size?: number): SkeletonEntry {
  const e = member(entries, path);
  expect(['0', '\0', '7'], `type of ${path}`).toContain(e.type);
  if (size !== undefined) expect(e.size).toBe(size);
  expect(e.digest !== undefined).toBe(e.size > 0);
  return e;
}

/** Asserts a link entry (type '1' or '2') whose target is `target` (normalised for hardlinks). */
export function expectLink(entries: readonly SkeletonEntry[], path: string, type: '1' | '2', target: string): void {
  const e = member(entries, path);
  expect(e.type).toBe(type);
  expect(e.size).toBe(0);
  expect(e.digest).toBeUndefined();
  expect(e.linkname).toBeDefined();
  if (type === '1') expect(normalizePath(e.linkname!)).toBe(normalizePath(target));
  else expect(e.linkname).toBe(target);
}

/** Asserts the type of each listed path. */
export function expectTypes(entries: readonly SkeletonEntry[], types: Record<string, string>): void {
  for (const [path, type] of Object.entries(types)) expect(member(entries, path).type, `type of ${path}`).toBe(type);
}

/** Typeflags of the header blocks folded into `raw` (metadata members such as 'x', 'g', 'L' stay there). */
export function rawTypeflags(raw: Uint8Array): string[] {
  // raw is the previous body's padding, then one header group
  const group = Buffer.from(raw.buffer, raw.byteOffset + (raw.length % 512), raw.length - (raw.length % 512));
  return headerBlockOffsets(group).map((off) => String.fromCharCode(group[off + 156]!));
}

/** A copy of `data` with the byte at `at` inverted. */
export function flipped(data: Uint8Array, at: number): Buffer {
  const out = Buffer.from(data);
  out.writeUInt8(out.readUInt8(at) ^ 0xff, at);
  return out;
}

export { rejectionCode } from '@ferry/test-support';
