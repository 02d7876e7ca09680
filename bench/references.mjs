// What else could cross the link, for the bundle bench: general-purpose delta encoders given the
// same knowledge the differ has (the device's image), at their strongest settings.
//
//   per layer   `zstd -19 --long=31 --patch-from=OLD NEW` for each changed layer (a v2 layer whose
//               diff_id v1 lacks), OLD = the v1 layer at the same index (the same Dockerfile step),
//               or v1's last layer when v1 has fewer layers. Run in every bench run: its time is
//               what `ferry bundle`'s time is compared with.
//   flattened   the image's layer tars concatenated in order (no pair has whiteouts, so this holds
//               exactly the applied rootfs's files; a path in two layers appears twice), v2 against
//               v1 with `zstd -19 --long=31 --patch-from`, `xdelta3 -9` with a source window (-B)
//               covering the whole v1 tar, and `bsdiff`. Their sizes depend only on the dataset, so
//               they are cached in <dataset>/refs.json.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileSize, readJson, timed, writeJson } from './lib/util.mjs';
import { bytes } from './lib/table.mjs';
import { concatLayers } from './dataset/oci.mjs';

/** bsdiff needs ~9x the old file in memory and about 1 s/MB: above this v1 size it is skipped. */
export const BSDIFF_MAX = Number(process.env.FERRY_BENCH_BSDIFF_MAX_MB ?? 512) * 1e6;

/** xdelta3 refuses a source window above 2 GiB. */
const XDELTA_MAX_WINDOW = 2 ** 31;

const zstdPatch = (old, input, out) => timed('zstd', ['-19', '--long=31', '-q', '-f', `--patch-from=${old}`, input, '-o', out]);

/** The v2 layers v1 lacks, each with the v1 layer it is patched from in the per-layer reference. */
export function changedLayers(dataset, p) {
  const v1Ids = new Set(p.v1.layers.map((n) => dataset.layers[n].diffId));
  return p.v2.layers
    .map((name, i) => ({ name, from: p.v1.layers[Math.min(i, p.v1.layers.length - 1)] }))
    .filter(({ name }) => !v1Ids.has(dataset.layers[name].diffId));
}

/**
 * zstd --patch-from per changed layer, measured now (never cached). Returns the summed size and
 * time, the peak RSS of the largest run, and each layer's figures.
 */
export async function perLayerZstd(dataset, p, work) {
  const layers = [];
  for (const { name, from } of changedLayers(dataset, p)) {
    process.stderr.write(`bundle: ${p.name}: zstd --patch-from ${name} <- ${from}...\n`);
    const out = join(work, 'ref.layer.zst');
    const r = await zstdPatch(dataset.layers[from].file, dataset.layers[name].file, out);
    layers.push({ name, from, size: dataset.layers[name].size, bytes: await fileSize(out), seconds: r.seconds, maxRss: r.maxRss });
    await rm(out, { force: true });
  }
  return {
    label: 'zstd -19 --long=31 --patch-from, per changed layer',
    bytes: layers.reduce((a, l) => a + l.bytes, 0),
    seconds: layers.reduce((a, l) => a + l.seconds, 0),
    maxRss: Math.max(0, ...layers.map((l) => l.maxRss)),
    layers,
  };
}

/** The smallest power of two >= n (xdelta3's source window covering the whole v1 tar). */
function windowFor(n) {
  let w = 2 ** 24;
  while (w < n && w < XDELTA_MAX_WINDOW) w *= 2;
  return w;
}

/** The encoders over flattened tars for a pair whose flattened v1 is `v1Size` bytes. */
function flatTools(v1Size) {
  const window = windowFor(v1Size);
  return {
    zstd: { label: 'zstd -19 --long=31 --patch-from, flattened', args: 'zstd -19 --long=31', run: zstdPatch },
    xdelta3: {
      label: `xdelta3 -9 -B ${window / 2 ** 20} MiB, flattened`,
      args: `xdelta3 -9 -B ${window}`,
      run: (a, b, out) => timed('xdelta3', ['-9', '-e', '-f', '-B', String(window), '-s', a, b, out]),
      skip: v1Size > window ? `skipped: v1 flattened ${bytes(v1Size)} > xdelta3's largest source window` : undefined,
    },
    bsdiff: { label: 'bsdiff, flattened', args: 'bsdiff', run: (a, b, out) => timed('bsdiff', [a, b, out]), skip: v1Size > BSDIFF_MAX ? `skipped: v1 flattened ${bytes(v1Size)} > cap ${bytes(BSDIFF_MAX)} (FERRY_BENCH_BSDIFF_MAX_MB)` : undefined },
  };
}

/**
 * The flattened-tar references of pair `p`, from <dataset>/refs.json when there (marked cached)
 * unless `useCache` is false; cache entries are keyed by the tool's arguments and both images'
 * layer diff_ids.
 */
export async function flatReferences(dataset, p, work, useCache) {
  const refsPath = join(dataset.dir, 'refs.json');
  const ids = (img) => img.layers.map((n) => dataset.layers[n].diffId.slice(7, 19)).join(',');
  const size = (img) => img.layers.reduce((a, n) => a + dataset.layers[n].size, 0);
  const v1Size = size(p.v1);
  const out = { v1FlatBytes: v1Size, v2FlatBytes: size(p.v2) };
  let flat;
  for (const [tool, t] of Object.entries(flatTools(v1Size))) {
    if (t.skip) {
      out[tool] = { label: t.label, skipped: t.skip };
      continue;
    }
    const key = `${t.args}|${ids(p.v1)}|${ids(p.v2)}`;
    // read before each tool: another run on the same dataset may have measured it meanwhile
    const cache = (await readJson(refsPath)) ?? {};
    if (useCache && cache[key]) {
      out[tool] = { ...cache[key], label: t.label, cached: true };
      continue;
    }
    if (!flat) {
      process.stderr.write(`bundle: ${p.name}: flattening for the references...\n`);
      flat = { a: join(work, 'v1.flat.tar'), b: join(work, 'v2.flat.tar') };
      await concatLayers(p.v1.layers.map((n) => dataset.layers[n].file), flat.a);
      await concatLayers(p.v2.layers.map((n) => dataset.layers[n].file), flat.b);
    }
    process.stderr.write(`bundle: ${p.name}: ${t.label}...\n`);
    const o = join(work, `ref.${tool}`);
    const r = await t.run(flat.a, flat.b, o);
    const entry = { bytes: await fileSize(o), seconds: r.seconds, maxRss: r.maxRss, measured: new Date().toISOString() };
    out[tool] = { ...entry, label: t.label };
    await rm(o, { force: true });
    await writeJson(refsPath, { ...((await readJson(refsPath)) ?? {}), [key]: entry });
  }
  if (flat) await rm(flat.a, { force: true }).then(() => rm(flat.b, { force: true }));
  return out;
}
