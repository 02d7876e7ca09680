// Bundle bench: for each dataset pair, the ferry bundle (.ferry file: header + payload) against
// what else could cross the link: docker pull (the changed layers, gzip -6), the full image, and
// the delta encoders of references.mjs (zstd --patch-from per changed layer, and zstd, xdelta3 and
// bsdiff over flattened tars). Also `ferry bundle` time and peak RSS beside zstd's time per
// changed layer measured in the same run, and `ferry apply` throughput and peak RSS, each ferry
// operation in a fresh child process. Targets are printed MET / MISSED, never asserted.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair } from '@ferry/core';
import { cacheDir, cleanWork, freshDir, inChild, run } from './lib/util.mjs';
import { bytes, printTable, rate, ratio, secs } from './lib/table.mjs';
import { BSDIFF_MAX, changedLayers, flatReferences, perLayerZstd } from './references.mjs';
import { TARGETS, printSummary, verdicts } from './verdicts.mjs';

/** Imports every image of every pair into one publisher store, and v1 of each pair into a device seed store. */
async function prepareStores(pairs, work) {
  const pub = join(work, 'publisher');
  const imports = [];
  for (const p of pairs) {
    for (const tag of ['v1', 'v2']) {
      const r = await inChild('import', { layout: p.layout, ref: tag, store: pub, as: `${p.name}:${tag}` });
      imports.push({ store: 'publisher', image: `${p.name}:${tag}`, ...pick(r) });
    }
  }
  // device seeds: one store per distinct v1 layer stack, copied for each pair's apply
  const seeds = new Map();
  for (const p of pairs) {
    const key = p.v1.layers.join(',');
    if (seeds.has(key)) continue;
    const dir = join(work, `seed-${seeds.size}`);
    const r = await inChild('import', { layout: p.layout, ref: 'v1', store: dir, as: `${p.name}:v1` });
    imports.push({ store: 'device', image: `${p.name}:v1`, ...pick(r) });
    seeds.set(key, dir);
  }
  return { pub, seeds, imports };
}

function pick(r) {
  return { seconds: r.seconds, bytesRead: r.bytesRead, maxRss: r.maxRss, manifestDigest: r.manifestDigest, contentsAdded: r.contentsAdded };
}

/** Bundles, applies and measures one pair, then runs the references. */
async function measurePair(dataset, p, stores, keys, work, useCache) {
  const pairWork = join(work, p.name);
  await run('mkdir', ['-p', pairWork]);
  const ferry = join(pairWork, 'bundle.ferry');
  process.stderr.write(`bundle: ${p.name}: createBundle...\n`);
  const b = await inChild('bundle', { store: stores.pub, from: [`${p.name}:v1`], to: `${p.name}:v2`, out: ferry, privatePem: keys.privatePem, channel: p.name, release: 2 });
  const device = join(pairWork, 'device');
  await run('cp', ['-a', stores.seeds.get(p.v1.layers.join(',')), device]);
  await run('sync', []);
  process.stderr.write(`bundle: ${p.name}: applyBundle...\n`);
  const a = await inChild('apply', { store: device, bundle: ferry, publicPem: keys.publicPem, as: `${p.name}:v2` });
  const expected = stores.imports.find((i) => i.store === 'publisher' && i.image === `${p.name}:v2`).manifestDigest;
  // the ferry figures now, so a run cut short during the references still reports them
  process.stderr.write(`bundle: ${p.name}: .ferry ${bytes(b.fileSize)} in ${secs(b.seconds)} (peak RSS ${bytes(b.maxRss)}); apply ${secs(a.seconds)} (peak RSS ${bytes(a.maxRss)}), ${a.manifestDigest === expected ? 'image ID matches' : 'IMAGE ID DOES NOT MATCH'}\n`);
  await rm(device, { recursive: true, force: true });
  await rm(ferry, { force: true });
  // zstd per layer right after ferry bundle, so both see about the same machine load
  const zstdLayers = await perLayerZstd(dataset, p, pairWork);
  const refs = await flatReferences(dataset, p, pairWork, useCache);
  const v2Layers = p.v2.layers.map((n) => dataset.layers[n]);
  const changed = changedLayers(dataset, p).map(({ name }) => dataset.layers[name]);
  return {
    name: p.name,
    kind: p.kind,
    title: p.title,
    v1: { layers: p.v1.layers, bytes: refs.v1FlatBytes },
    v2: { layers: p.v2.layers, bytes: refs.v2FlatBytes },
    fullImageGzip: v2Layers.reduce((s, l) => s + l.gzip6, 0),
    changedLayers: { count: changed.length, bytes: changed.reduce((s, l) => s + l.size, 0), gzip: changed.reduce((s, l) => s + l.gzip6, 0) },
    bundle: b,
    apply: { ...a, verified: a.manifestDigest === expected, rebuiltBytes: a.layers.filter((l) => l.mode === 'rebuild').reduce((s, l) => s + dataset.layersByDiffId[l.diffId].size, 0) },
    refs: { zstdLayers, zstd: refs.zstd, xdelta3: refs.xdelta3, bsdiff: refs.bsdiff },
  };
}

/** The reference rows of a pair: [key, figures] for each delta encoder, in print order. */
export function deltaRefs(r) {
  return ['zstdLayers', 'zstd', 'xdelta3', 'bsdiff'].map((k) => [k, r.refs[k]]);
}

function printPair(r, v) {
  const f = r.bundle.fileSize;
  const rows = [['ferry bundle (.ferry file)', bytes(f), '1', `${secs(r.bundle.seconds)} (CPU ${secs(r.bundle.cpuSeconds)})`, bytes(r.bundle.maxRss), '']];
  rows.push([`docker pull: changed layers (${r.changedLayers.count}, gzip -6)`, bytes(r.changedLayers.gzip), ratio(f, r.changedLayers.gzip), '', '', '']);
  rows.push(['full image (sum of gzip -6 layers)', bytes(r.fullImageGzip), ratio(f, r.fullImageGzip), '', '', '']);
  for (const [k, m] of deltaRefs(r)) {
    const label = m.label + (m.cached ? ' [cached]' : '');
    if (m.skipped) rows.push([label, 'skipped', '', '', '', m.skipped]);
    else rows.push([label, bytes(m.bytes), ratio(f, m.bytes), secs(m.seconds), bytes(m.maxRss), k === v.best.key ? 'best' : '']);
  }
  const s = r.bundle.stats;
  const notes = [
    `per layer: ${r.refs.zstdLayers.layers.map((l) => `${l.name} (${bytes(l.size)}) <- ${l.from}: ${bytes(l.bytes)} in ${secs(l.seconds)}`).join('; ')}`,
    `bundle = payload ${bytes(r.bundle.payloadSize)} + header ${bytes(r.bundle.headerSize)} (${r.bundle.chunks} chunks); layers: ${r.bundle.layers.map((l) => `${l.mode}${l.mode === 'rebuild' ? ` ${bytes(l.size)}->${bytes(l.payload)}` : ''}`).join(', ')}`,
    `entries: ${s.entries} (${s.runEntries} in runs of unchanged entries); headers: patched ${bytes(s.headerBytes.patched)}, literal ${bytes(s.headerBytes.literal)}`,
    `bodies: ${Object.entries(s.bodies).filter(([, x]) => x.files > 0).map(([k, x]) => `${k} ${x.files} (${bytes(x.bytes)})`).join(', ')}; carried literal ${bytes(s.literalBytes)}, patches ${bytes(s.patchBytes)}`,
    `apply: ${secs(r.apply.seconds)} (CPU ${secs(r.apply.cpuSeconds)}), ${rate(r.apply.rebuiltBytes, r.apply.seconds)} of ${bytes(r.apply.rebuiltBytes)} rebuilt layer data, peak RSS ${bytes(r.apply.maxRss)}, image ID ${r.apply.verified ? 'matches the publisher' : 'DOES NOT MATCH'}`,
    ...v.lines,
  ];
  printTable(`bundle: ${r.name} [${r.kind}]: ${r.title} (v1 ${bytes(r.v1.bytes)}, v2 ${bytes(r.v2.bytes)} of layer tars; changed ${bytes(r.changedLayers.bytes)})`, ['what crosses the link', 'bytes', 'bundle/x', 'time', 'peak RSS', ''], rows, notes);
}

/** Runs the bundle bench over the dataset's pairs (all, or those named). */
export async function runBundle(dataset, { pairs: only, refCache = true } = {}) {
  const known = dataset.pairs.map((p) => p.name);
  const unknown = (only ?? []).filter((n) => !known.includes(n));
  if (unknown.length > 0) throw new Error(`unknown pair ${unknown.join(', ')}; the dataset has ${known.join(', ')}`);
  const pairs = dataset.pairs.filter((p) => !only || only.includes(p.name));
  dataset.layersByDiffId = Object.fromEntries(Object.values(dataset.layers).map((l) => [l.diffId, l]));
  // per process: several engineers may run the bench at once on one cache
  const workName = `bundle-${process.pid}`;
  const work = await freshDir(workName);
  try {
    const keys = generateKeyPair();
    process.stderr.write(`bundle: importing ${pairs.length} pairs into the publisher store...\n`);
    const stores = await prepareStores(pairs, work);
    const results = [];
    for (const p of pairs) {
      const r = await measurePair(dataset, p, stores, keys, work, refCache);
      r.checks = verdicts(r, deltaRefs(r));
      printPair(r, r.checks);
      results.push(r);
    }
    const imp = stores.imports.filter((i) => i.bytesRead > 0);
    printTable('imports of the real images (fresh process each; layers already in the store are not read again)', ['image', 'store', 'read', 'time', 'throughput', 'peak RSS'], imp.map((i) => [i.image, i.store, bytes(i.bytesRead), secs(i.seconds), rate(i.bytesRead, i.seconds), bytes(i.maxRss)]));
    printSummary(results);
    return { targets: TARGETS, bsdiffMaxBytes: BSDIFF_MAX, pairs: results, imports: stores.imports, cache: cacheDir() };
  } finally {
    delete dataset.layersByDiffId;
    await cleanWork(workName);
  }
}
