// Bundle bench: for each dataset pair, the ferry bundle (.ferry file: header + payload) against
// what else could cross the link: the full image and the changed layers as docker pulls them
// (gzip -6), zstd --patch-from, xdelta3 and bsdiff over the flattened tars. Also bundle time and
// apply time / peak RSS, each ferry operation in a fresh child process.
//
// Flattened tar = the image's layer tars concatenated in order (the pairs have no whiteouts, so
// this holds exactly the files of the applied rootfs; a path present in two layers appears twice).
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair } from '@ferry/core';
import { cacheDir, cleanWork, fileSize, freshDir, inChild, readJson, run, timed, writeJson } from './lib/util.mjs';
import { bytes, check, printTable, rate, ratio, secs } from './lib/table.mjs';
import { concatLayers } from './dataset/oci.mjs';

export const TARGETS = {
  /** dependency-bump and security-update bundles: at most this share of docker pull's changed layers */
  updateShareOfChanged: 0.1,
  /** no-op rebuild bundle: at most this share of docker pull's changed layers */
  noopShareOfChanged: 0.001,
  applyMBps: 50,
  applyMaxRssBytes: 256e6,
};

/** bsdiff needs ~9x the old file in memory and minutes per 100 MB: above this size it is skipped. */
const BSDIFF_MAX = Number(process.env.FERRY_BENCH_BSDIFF_MAX_MB ?? 512) * 1e6;

/** Imports every image of every pair into one publisher store, and v1 of each pair into a device seed store. */
async function prepareStores(dataset, pairs, work) {
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

/** Reference encoders over the flattened tars, cached by inputs and command in the dataset. */
async function references(dataset, p, work, useCache) {
  const refsPath = join(dataset.dir, 'refs.json');
  const cache = (await readJson(refsPath)) ?? {};
  const layerFiles = (img) => img.layers.map((n) => dataset.layers[n].file);
  const key = (tool) => `${tool}|${p.v1.layers.map((n) => dataset.layers[n].diffId.slice(7, 19)).join(',')}|${p.v2.layers.map((n) => dataset.layers[n].diffId.slice(7, 19)).join(',')}`;
  const v1Size = p.v1.layers.reduce((a, n) => a + dataset.layers[n].size, 0);
  const v2Size = p.v2.layers.reduce((a, n) => a + dataset.layers[n].size, 0);
  const tools = {
    zstd: { label: 'zstd -19 --long=31 --patch-from (flattened)', run: (a, b, out) => timed('zstd', ['-19', '--long=31', '-q', '-f', `--patch-from=${a}`, b, '-o', out]) },
    xdelta3: { label: 'xdelta3 -9 -e -s (flattened)', run: (a, b, out) => timed('xdelta3', ['-9', '-e', '-f', '-s', a, b, out]) },
    bsdiff: { label: 'bsdiff (flattened)', run: (a, b, out) => timed('bsdiff', [a, b, out]), skip: v1Size > BSDIFF_MAX ? `skipped: v1 flattened ${bytes(v1Size)} > cap ${bytes(BSDIFF_MAX)} (FERRY_BENCH_BSDIFF_MAX_MB)` : undefined },
  };
  const out = {};
  let flat;
  for (const [tool, t] of Object.entries(tools)) {
    if (t.skip) {
      out[tool] = { label: t.label, skipped: t.skip };
      continue;
    }
    const k = key(tool);
    if (useCache && cache[k]) {
      out[tool] = { ...cache[k], label: t.label, cached: true };
      continue;
    }
    if (!flat) {
      process.stderr.write(`bundle: ${p.name}: flattening for the references...\n`);
      flat = { a: join(work, 'v1.flat.tar'), b: join(work, 'v2.flat.tar') };
      await concatLayers(layerFiles(p.v1), flat.a);
      await concatLayers(layerFiles(p.v2), flat.b);
    }
    process.stderr.write(`bundle: ${p.name}: ${tool}...\n`);
    const o = join(work, `ref.${tool}`);
    const r = await t.run(flat.a, flat.b, o);
    out[tool] = { label: t.label, bytes: await fileSize(o), seconds: r.seconds, maxRss: r.maxRss, measured: new Date().toISOString() };
    await rm(o, { force: true });
    cache[k] = { bytes: out[tool].bytes, seconds: r.seconds, maxRss: r.maxRss, measured: out[tool].measured };
    await writeJson(refsPath, cache);
  }
  if (flat) await rm(flat.a, { force: true }).then(() => rm(flat.b, { force: true }));
  return { ...out, v1FlatBytes: v1Size, v2FlatBytes: v2Size };
}

/** Bundles, applies and measures one pair. */
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
  await rm(device, { recursive: true, force: true });
  await rm(ferry, { force: true });
  const refs = await references(dataset, p, pairWork, useCache);
  const v1Ids = new Set(p.v1.layers.map((n) => dataset.layers[n].diffId));
  const v2Layers = p.v2.layers.map((n) => dataset.layers[n]);
  const changed = v2Layers.filter((l) => !v1Ids.has(l.diffId));
  return {
    name: p.name,
    title: p.title,
    v1: { layers: p.v1.layers, bytes: refs.v1FlatBytes },
    v2: { layers: p.v2.layers, bytes: refs.v2FlatBytes },
    fullImageGzip: v2Layers.reduce((a, l) => a + l.gzip6, 0),
    changedLayers: { count: changed.length, bytes: changed.reduce((a, l) => a + l.size, 0), gzip: changed.reduce((a, l) => a + l.gzip6, 0) },
    bundle: b,
    apply: { ...a, verified: a.manifestDigest === expected, rebuiltBytes: a.layers.filter((l) => l.mode === 'rebuild').reduce((s, l) => s + dataset.layersByDiffId[l.diffId].size, 0) },
    refs,
  };
}

function printPair(r) {
  const f = r.bundle.fileSize;
  const refRows = [
    ['full image (sum of gzip -6 layers)', r.fullImageGzip],
    [`changed layers = docker pull (${r.changedLayers.count}, gzip -6)`, r.changedLayers.gzip],
    ...['zstd', 'xdelta3', 'bsdiff'].map((t) => [r.refs[t].label + (r.refs[t].cached ? ' [cached]' : ''), r.refs[t].bytes, r.refs[t]]),
  ];
  const rows = [['ferry bundle (.ferry file)', bytes(f), '1', `${secs(r.bundle.seconds)} (CPU ${secs(r.bundle.cpuSeconds)})`, bytes(r.bundle.maxRss)]];
  for (const [label, size, m] of refRows) {
    if (m?.skipped) rows.push([label, 'skipped', '', '', '', m.skipped]);
    else rows.push([label, bytes(size), ratio(f, size), secs(m?.seconds), m?.maxRss ? bytes(m.maxRss) : '']);
  }
  const refSizes = refRows.filter(([, s, m]) => !m?.skipped && s !== undefined).map(([, s]) => s);
  const smallest = f < Math.min(...refSizes);
  const shareTarget = r.name === 'noop-rebuild' ? TARGETS.noopShareOfChanged : r.name === 'dep-bump' || r.name === 'security-update' ? TARGETS.updateShareOfChanged : undefined;
  const share = f / r.changedLayers.gzip;
  const applyMBps = r.apply.rebuiltBytes / 1e6 / r.apply.seconds;
  const s = r.bundle.stats;
  const notes = [
    `bundle = payload ${bytes(r.bundle.payloadSize)} + header ${bytes(r.bundle.headerSize)} (${r.bundle.chunks} chunks); layers: ${r.bundle.layers.map((l) => `${l.mode}${l.mode === 'rebuild' ? ` ${bytes(l.size)}->${bytes(l.payload)}` : ''}`).join(', ')}`,
    `entries: ${s.entries} (${s.runEntries} in runs of unchanged entries); headers: patched ${bytes(s.headerBytes.patched)}, literal ${bytes(s.headerBytes.literal)}`,
    `bodies: ${Object.entries(s.bodies).filter(([, v]) => v.files > 0).map(([k, v]) => `${k} ${v.files} (${bytes(v.bytes)})`).join(', ')}; carried literal ${bytes(s.literalBytes)}, patches ${bytes(s.patchBytes)}`,
    `apply: ${secs(r.apply.seconds)} (CPU ${secs(r.apply.cpuSeconds)}), ${rate(r.apply.rebuiltBytes, r.apply.seconds)} of ${bytes(r.apply.rebuiltBytes)} rebuilt layer data, peak RSS ${bytes(r.apply.maxRss)}, image ID ${r.apply.verified ? 'matches the publisher' : 'DOES NOT MATCH'}`,
    `target: smaller than every reference: ${check(smallest)}`,
  ];
  if (shareTarget !== undefined) notes.push(`target: <= ${ratio(shareTarget, 1)} of docker pull's changed layers: ${ratio(f, r.changedLayers.gzip)} ${check(share <= shareTarget)}`);
  notes.push(`target: apply >= ${TARGETS.applyMBps} MB/s ${check(applyMBps >= TARGETS.applyMBps)}, peak RSS < ${bytes(TARGETS.applyMaxRssBytes)} ${check(r.apply.maxRss < TARGETS.applyMaxRssBytes)}`);
  printTable(`bundle: ${r.name}: ${r.title} (v1 ${bytes(r.v1.bytes)}, v2 ${bytes(r.v2.bytes)} of layer tars)`, ['what crosses the link', 'bytes', 'bundle/x', 'time', 'peak RSS', ''], rows, notes);
  return { smallest, share, shareTarget, applyMBps };
}

/** Runs the bundle bench over the dataset's pairs (all, or those named). */
export async function runBundle(dataset, { pairs: only, refCache = true } = {}) {
  const pairs = dataset.pairs.filter((p) => !only || only.includes(p.name));
  dataset.layersByDiffId = Object.fromEntries(Object.values(dataset.layers).map((l) => [l.diffId, l]));
  const work = await freshDir('bundle');
  const keys = generateKeyPair();
  process.stderr.write(`bundle: importing ${pairs.length} pairs into the publisher store...\n`);
  const stores = await prepareStores(dataset, pairs, work);
  const results = [];
  for (const p of pairs) {
    const r = await measurePair(dataset, p, stores, keys, work, refCache);
    r.checks = printPair(r);
    results.push(r);
  }
  const imp = stores.imports.filter((i) => i.bytesRead > 0);
  printTable('imports of the real images (fresh process each; layers already in the store are not read again)', ['image', 'store', 'read', 'time', 'throughput', 'peak RSS'], imp.map((i) => [i.image, i.store, bytes(i.bytesRead), secs(i.seconds), rate(i.bytesRead, i.seconds), bytes(i.maxRss)]));
  delete dataset.layersByDiffId;
  await cleanWork('bundle');
  return { targets: TARGETS, bsdiffMaxBytes: BSDIFF_MAX, pairs: results, imports: stores.imports, cache: cacheDir() };
}
