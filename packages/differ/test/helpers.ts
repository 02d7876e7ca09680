/**
 * Helpers of the differ tests: code-like text, publisher and device stores, round trips through a
 * device, and the payload's references decoded back to baseline paths.
 */
import { join } from 'node:path';
import { expect } from 'vitest';
import { applyBundle, loadBaseline, openBundle, parseHeaderGroup, payloadRange, readOps, verifyHeader, type PrivateKey, type Store } from '@ferry/core';
import { writeFerryFile, type BundleOptions, type ComputedBundle } from '@ferry/differ';
import { seededBytes } from '@ferry/test-support';
import { createStore, expected, importTags, trustOf, verifyExport } from '@ferry/test-support';

const VOCABULARY = ['const', 'function', 'return', 'value', 'index', 'export', 'import', 'from', 'await', 'async', 'length', 'buffer', 'module', 'default', 'object', 'string', 'number', 'if', 'else', 'for', 'while', 'new', 'this', 'null', 'true', 'false', '=', '(', ')', '{', '}', ';'];

/** Deterministic code-like text: words, numbers and line breaks drawn from a seeded stream. */
export function prose(seed: string, size: number): Buffer {
  const noise = seededBytes(seed, size);
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < size; i++) {
    const r = noise[i % noise.length]!;
    const w = r % 7 === 0 ? String(noise[(i * 31) % noise.length]! * 97) : VOCABULARY[r % VOCABULARY.length]!;
    const p = w + (r % 11 === 0 ? '\n' : ' ');
    parts.push(p);
    n += p.length;
  }
  return Buffer.from(parts.join('').slice(0, size));
}

/** `body` with `count` short edits spread through it (a new build of the same code). */
export function edited(body: Buffer, seed: string, count = 8): Buffer {
  const noise = seededBytes(seed, count * 8);
  const out = Buffer.from(body);
  for (let i = 0; i < count; i++) out.write(`/*${noise.readUInt16LE(i * 2)}*/`, noise.readUInt32LE(count * 2 + i * 4) % Math.max(1, out.length - 8));
  return out;
}

/** A test's bundle context: options, stores and a work directory. */
export interface DifferFixture {
  work: string;
  key: PrivateKey;
  /** Counter for unique names. */
  runs: number;
}

/** Options for a test bundle (level 9 keeps tests quick; 19, the default, only shrinks bytes). */
export function bundleOptions(fx: DifferFixture, from: string[], to: string, more: Partial<BundleOptions> = {}): BundleOptions {
  return { from, to, channel: 'stable', release: 1, expires: 4_000_000_000, releaseKeys: [fx.key], headerKeys: [fx.key], created: 1_750_000_000, level: 9, ...more };
}

/** A publisher store holding `tags` of `layout`, and a device store holding `deviceTags`. */
export async function stores(fx: DifferFixture, layout: string, tags: string[], deviceTags: string[]): Promise<{ pub: Store; dev: Store }> {
  const pub = await createStore(join(fx.work, `pub-${fx.runs}`));
  await importTags(pub, layout, tags);
  const dev = await createStore(join(fx.work, `dev-${fx.runs++}`));
  await importTags(dev, layout, deviceTags);
  return { pub, dev };
}

/** Writes the bundle as a .ferry file, applies it to `dev` and checks the exported image. */
export async function roundTrip(fx: DifferFixture, pub: Store, dev: Store, b: ComputedBundle, ref = 'app:v2'): Promise<void> {
  const path = join(fx.work, `bundle-${fx.runs++}.ferry`);
  await writeFerryFile(path, b.signed);
  const r = await applyBundle(dev, await openBundle(path), { trust: trustOf(fx.key) });
  const want = await expected(pub, ref);
  expect(r.manifestDigest).toBe(want.manifestDigest);
  expect(r.configDigest).toBe(want.configDigest);
  await verifyExport(dev, ref, want, fx.work);
}

/** One decoded body op: its kind, and for deltas and groups the paths of its reference, in order. */
export interface DecodedRef {
  path: string;
  kind: string;
  index?: number | undefined;
  size?: number | undefined;
  set?: number[] | undefined;
  /** Baseline paths, then `+path` for bodies of the layer (a group's earlier entries). */
  reference?: string[] | undefined;
}

/** Decodes every rebuilt layer's entries: target path, body kind and reference paths. */
export async function decodeRefs(fx: DifferFixture, pub: Store, b: ComputedBundle): Promise<DecodedRef[]> {
  const path = join(fx.work, `ops-${fx.runs++}.ferry`);
  await writeFerryFile(path, b.signed);
  const h = verifyHeader(b.signed.envelope, { trust: trustOf(fx.key) });
  const table = await loadBaseline(pub, h.baseline);
  const chunks = (await openBundle(path)).chunks(h);
  const out: DecodedRef[] = [];
  for (const l of h.layers.filter((x) => x.mode === 'rebuild')) {
    const layerPaths: string[] = [];
    const groups: string[][] = [];
    for await (const op of readOps(payloadRange(h, chunks, l.start, l.end), 4 * l.size + (1 << 20))) {
      if (op.op === 'run' || op.op === 'patchrun') {
        for (let i = op.start; i < op.start + op.count; i++) layerPaths.push(table[i]!.path);
        continue;
      }
      if (op.op !== 'entry') continue;
      const hs = op.header;
      const target = hs.kind === 'literal' ? parseHeaderGroup(Buffer.from(hs.bytes)).path : table[hs.index]!.path;
      const body = op.body;
      if ('data' in body) for await (const _ of body.data) { /* drained in order */ }
      let reference: string[] | undefined;
      if (body.kind === 'patch' || body.kind === 'bsdiff') reference = [table[body.index]!.path];
      if (body.kind === 'group') {
        reference = [...body.set.map((i) => table[i]!.path), ...body.earlier.map((k) => `+${layerPaths[layerPaths.length - k]!}`)];
        groups.push(reference);
      }
      if (body.kind === 'member') reference = groups[groups.length - 1 - body.d];
      out.push({ path: target, kind: body.kind, index: 'index' in body ? body.index : undefined, size: 'size' in body ? body.size : undefined, set: 'set' in body ? body.set : undefined, reference });
      layerPaths.push(target);
    }
  }
  return out;
}
