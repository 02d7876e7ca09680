// Dataset bench input: image pairs built from REAL published artifacts (npm tarballs and npm
// install trees, Debian bookworm and trixie .debs), cached outside the repo in $FERRY_BENCH_CACHE
// (default ~/.cache/ferry-bench) and never committed. Each pair is one OCI layout with tags v1
// (what the device holds) and v2 (the target), uncompressed layers; dataset/pairs.mjs lists them.
import { createHash } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir, readJson, writeJson } from './lib/util.mjs';
import { privateApt } from './dataset/apt.mjs';
import { buildDebLayer, buildRootfs, fetchDebs, resolveDebianVersions, resolveUpgrade } from './dataset/debian.mjs';
import { buildAppSource, buildInstalledApp, buildNodeModules, fetchNpm, npmInstallTree } from './dataset/npm.mjs';
import { tarLayer, writeLayout } from './dataset/oci.mjs';
import { T1, T2, T_NOOP, T_SRC, definePairs } from './dataset/pairs.mjs';
import * as sources from './dataset/sources.mjs';

const { API_DEPS, BUILD_DEPS, DATASET_FORMAT, DEBIAN_PACKAGES, NODE_DEBS, PYTHON_DEBS, TRIXIE_RENAMES, TRIXIE_SOURCES, WEB_DEPS } = sources;

/** The dataset directory: named by a hash of its sources, so editing sources.mjs builds a new one. */
export function datasetDir() {
  const h = createHash('sha256').update(JSON.stringify({ ...sources, T1, T2 })).digest('hex').slice(0, 10);
  return join(cacheDir(), `dataset-${DATASET_FORMAT}-${h}`);
}

/** Resolves and downloads every .deb: bookworm base (v1, v2), trixie successors, python and node runtime packages. */
async function fetchDebian(say) {
  say('resolving Debian versions (apt-cache madison)...');
  const deb = await resolveDebianVersions(DEBIAN_PACKAGES);
  if (deb.resolved.length === 0) throw new Error('apt-cache knows none of the Debian packages: run `apt-get update` once first');
  if (deb.missing.length > 0) say(`apt does not know ${deb.missing.join(', ')}: left out`);
  const extras = await resolveDebianVersions([...PYTHON_DEBS, ...NODE_DEBS]);
  if (extras.missing.length > 0) say(`apt does not know ${extras.missing.join(', ')}: left out of the runtime layers`);
  const point = (names) => extras.resolved.filter((r) => names.includes(r.pkg)).map((r) => ({ pkg: r.pkg, version: r.v1 }));
  const runtimes = { python: point(PYTHON_DEBS), node: point(NODE_DEBS) };
  const files = await fetchDebs([...deb.resolved.flatMap((r) => [{ pkg: r.pkg, version: r.v1 }, { pkg: r.pkg, version: r.v2 }]), ...runtimes.python, ...runtimes.node]);
  const trixieApt = await privateApt('trixie', TRIXIE_SOURCES);
  const trixie = await resolveUpgrade(trixieApt, deb.resolved.map((r) => r.pkg), TRIXIE_RENAMES);
  if (trixie.missing.length > 0) say(`trixie has no successor for ${trixie.missing.join(', ')}: left out of base-trixie`);
  for (const [k, v] of await fetchDebs(trixie.resolved.map((r) => ({ pkg: r.name, version: r.version })), trixieApt)) files.set(k, v);
  const path = (pkg, version) => ({ pkg, path: files.get(`${pkg}=${version}`) });
  return {
    deb,
    trixie,
    runtimes,
    debs: {
      v1: deb.resolved.map((r) => path(r.pkg, r.v1)),
      v2: deb.resolved.map((r) => path(r.pkg, r.v2)),
      trixie: trixie.resolved.map((r) => path(r.name, r.version)),
      python: runtimes.python.map((r) => path(r.pkg, r.version)),
      node: runtimes.node.map((r) => path(r.pkg, r.version)),
    },
  };
}

/** Builds every tree and layer tar, then the pair layouts. */
async function build(dir, log) {
  const say = (m) => log && process.stderr.write(`dataset: ${m}\n`);
  await rm(dir, { recursive: true, force: true });
  const trees = join(dir, 'trees');
  const layersDir = join(dir, 'layers');
  await mkdir(trees, { recursive: true });
  await mkdir(layersDir, { recursive: true });

  const d = await fetchDebian(say);
  const changedDebs = d.deb.resolved.filter((r) => r.v1 !== r.v2);
  say(`${d.deb.resolved.length} Debian packages, ${changedDebs.length} updated in v2, ${d.trixie.resolved.length} in trixie`);
  const npm = await fetchNpm([...WEB_DEPS.flatMap(([n, a, b]) => [[n, a], [n, b]]), ...API_DEPS]);
  const buildTrees = { v1: await npmInstallTree('build', BUILD_DEPS.v1), v2: await npmInstallTree('build', BUILD_DEPS.v2) };

  const layers = {};
  const make = async (name, builder, tarOpts = {}) => {
    const root = join(trees, name);
    say(`building layer ${name}...`);
    const out = await builder(root);
    layers[name] = { name, ...(await tarLayer(root, join(layersDir, `${name}.tar`), tarOpts)) };
    return out;
  };
  const app = { rootOwned: true };
  const baseStanzas = await make('base-v1', (root) => buildRootfs(root, d.debs.v1, T1));
  await make('base-v2', (root) => buildRootfs(root, d.debs.v2, T2));
  await make('base-trixie', (root) => buildRootfs(root, d.debs.trixie, T2));
  await make('web-modules-v1', (root) => buildNodeModules(root, 'web', WEB_DEPS.map(([n, a]) => [n, a]), npm, T1 + 3600), app);
  await make('web-modules-v2', (root) => buildNodeModules(root, 'web', WEB_DEPS.map(([n, , b]) => [n, b]), npm, T2 + 3600), app);
  await make('web-src', (root) => buildAppSource(root, 'web', T_SRC), app);
  await make('api-modules', (root) => buildNodeModules(root, 'api', API_DEPS, npm, T1 + 7200), app);
  await make('api-src', (root) => buildAppSource(root, 'api', T_SRC), app);
  await make('build-modules-v1', (root) => buildInstalledApp(root, buildTrees.v1, T1 + 3600), app);
  await make('build-modules-v2', (root) => buildInstalledApp(root, buildTrees.v2, T2 + 3600), app);
  await make('build-src', (root) => buildAppSource(root, 'build', T_SRC), app);
  await make('py-runtime', (root) => buildDebLayer(root, d.debs.python, baseStanzas, T1 + 1800));
  await make('py-src', (root) => buildAppSource(root, 'pysvc', T_SRC, 'python'), app);
  await make('node-runtime', (root) => buildDebLayer(root, d.debs.node, baseStanzas, T2 + 1800));
  // the no-op rebuild: the same trees as dep-bump's v1, every entry stamped with a new mtime
  for (const [name, tree, rootOwned] of [['noop-base', 'base-v1', false], ['noop-web-modules', 'web-modules-v1', true], ['noop-web-src', 'web-src', true]]) {
    say(`building layer ${name}...`);
    layers[name] = { name, ...(await tarLayer(join(trees, tree), join(layersDir, `${name}.tar`), { mtime: T_NOOP, rootOwned })) };
  }
  await rm(trees, { recursive: true, force: true });

  const pairs = definePairs(layers, { debUpdated: changedDebs.length, debPackages: d.deb.resolved.length, trixie: d.trixie.resolved.length });
  for (const p of pairs) {
    p.layout = join(dir, 'pairs', p.name, 'layout');
    await writeLayout(p.layout, [p.v1, p.v2]);
  }
  const strip = (img) => ({ tag: img.tag, layers: img.layers.map((l) => l.name) });
  return {
    dir,
    format: DATASET_FORMAT,
    built: new Date().toISOString(),
    debian: { packages: d.deb.resolved.length, missing: d.deb.missing, updated: changedDebs.map((r) => `${r.pkg} ${r.v1} -> ${r.v2} (${r.v2Suite})`), versions: d.deb.resolved },
    trixie: { packages: d.trixie.resolved.length, missing: d.trixie.missing, renamed: d.trixie.resolved.filter((r) => r.name !== r.pkg).map((r) => `${r.pkg} -> ${r.name}`), versions: d.trixie.resolved },
    runtimes: d.runtimes,
    npm: { web: WEB_DEPS, api: API_DEPS, webChanged: WEB_DEPS.filter(([, a, b]) => a !== b).length, build: BUILD_DEPS, buildTrees },
    layers,
    pairs: pairs.map((p) => ({ name: p.name, kind: p.kind, title: p.title, layout: p.layout, v1: strip(p.v1), v2: strip(p.v2) })),
  };
}

/**
 * Returns the dataset description, building it first when it is missing (or when `rebuild`).
 * A build needs the npm registry and Debian's mirrors (apt-get update done once); later runs are
 * offline.
 */
export async function buildDataset({ rebuild = false, log = false } = {}) {
  const dir = datasetDir();
  const metaPath = join(dir, 'dataset.json');
  if (!rebuild) {
    const meta = await readJson(metaPath);
    if (meta) return meta;
  }
  const t0 = performance.now();
  const tmp = `${dir}.building`;
  const meta = await build(tmp, log);
  // paths were recorded under the temp name: rewrite them to the final one
  const fix = (p) => p.replace(tmp, dir);
  for (const l of Object.values(meta.layers)) l.file = fix(l.file);
  for (const p of meta.pairs) p.layout = fix(p.layout);
  meta.dir = dir;
  meta.buildSeconds = (performance.now() - t0) / 1000;
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  await writeJson(metaPath, meta);
  if (log) process.stderr.write(`dataset: built in ${meta.buildSeconds.toFixed(0)} s at ${dir}\n`);
  return meta;
}

/** Prints what the dataset holds. */
export function printDataset(meta) {
  console.log(`\n== dataset ${meta.dir}`);
  console.log(`  Debian: ${meta.debian.packages} packages, ${meta.debian.updated.length} updated in v2:`);
  for (const u of meta.debian.updated) console.log(`    ${u}`);
  console.log(`  trixie: ${meta.trixie.packages} packages (renamed: ${meta.trixie.renamed.join(', ')}${meta.trixie.missing.length ? `; no successor: ${meta.trixie.missing.join(', ')}` : ''})`);
  console.log(`  npm: web app ${meta.npm.web.length} packages (${meta.npm.webChanged} bumped), api app ${meta.npm.api.length} packages, build app ${Object.keys(meta.npm.build.v1).length} direct dependencies with their npm install trees, majors bumped`);
  for (const l of Object.values(meta.layers)) console.log(`    layer ${l.name.padEnd(18)} ${String(l.entries).padStart(6)} entries ${(l.size / 1e6).toFixed(1).padStart(7)} MB tar ${(l.gzip6 / 1e6).toFixed(1).padStart(6)} MB gzip -6`);
}
