// Dataset bench input: image pairs built from REAL published artifacts (npm tarballs, Debian
// bookworm .debs), cached outside the repo in $FERRY_BENCH_CACHE (default ~/.cache/ferry-bench)
// and never committed. Each pair is one OCI layout with tags v1 (what the device holds) and v2
// (the target), uncompressed layers.
//
//   dep-bump         app's node_modules at one lockfile vs a later one (35 packages, 2 versions)
//   security-update  Debian base rebuilt with bookworm-security/-updates versions, app layer on top
//   noop-rebuild     v2 = v1's layers re-tarred with new mtimes, same contents
//   cross-image      device holds another app (api) on the same base; target is the web app
import { createHash } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir, readJson, writeJson } from './lib/util.mjs';
import { buildRootfs, fetchDebs, resolveDebianVersions } from './dataset/debian.mjs';
import { buildAppSource, buildNodeModules, fetchNpm } from './dataset/npm.mjs';
import { tarLayer, writeLayout } from './dataset/oci.mjs';
import { API_DEPS, DATASET_FORMAT, DEBIAN_PACKAGES, WEB_DEPS } from './dataset/sources.mjs';

const DAY = 86400;
/** App sources checked out 2024-01-01; base v1 built 2025-05-17, v2 thirty days later. */
const T_SRC = 1704067200;
const T1 = 1747440000;
const T2 = T1 + 30 * DAY;
const T_NOOP = T1 + DAY;

/** The dataset directory: named by a hash of its sources, so editing sources.mjs builds a new one. */
export function datasetDir() {
  const h = createHash('sha256').update(JSON.stringify({ DATASET_FORMAT, WEB_DEPS, API_DEPS, DEBIAN_PACKAGES, T1, T2 })).digest('hex').slice(0, 10);
  return join(cacheDir(), `dataset-${DATASET_FORMAT}-${h}`);
}

const NODE_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NODE_ENV=production'];

/** Builds every tree and layer tar, then the four pair layouts. */
async function build(dir, log) {
  const say = (m) => log && process.stderr.write(`dataset: ${m}\n`);
  await rm(dir, { recursive: true, force: true });
  const trees = join(dir, 'trees');
  const layersDir = join(dir, 'layers');
  await mkdir(trees, { recursive: true });
  await mkdir(layersDir, { recursive: true });

  say('resolving Debian versions (apt-cache madison)...');
  const deb = await resolveDebianVersions(DEBIAN_PACKAGES);
  if (deb.resolved.length === 0) throw new Error('apt-cache knows none of the Debian packages: run `apt-get update` once first');
  if (deb.missing.length > 0) say(`apt does not know ${deb.missing.join(', ')}: left out`);
  const debFiles = await fetchDebs(deb.resolved.flatMap((r) => [{ pkg: r.pkg, version: r.v1 }, { pkg: r.pkg, version: r.v2 }]));
  const changedDebs = deb.resolved.filter((r) => r.v1 !== r.v2);
  say(`${deb.resolved.length} Debian packages, ${changedDebs.length} updated in v2`);
  const npm = await fetchNpm([...WEB_DEPS.flatMap(([n, a, b]) => [[n, a], [n, b]]), ...API_DEPS]);

  const layers = {};
  const make = async (name, builder, tarOpts = {}) => {
    const root = join(trees, name);
    say(`building layer ${name}...`);
    await builder(root);
    layers[name] = { name, ...(await tarLayer(root, join(layersDir, `${name}.tar`), tarOpts)) };
    return root;
  };
  const baseV1 = await make('base-v1', (root) => buildRootfs(root, deb.resolved.map((r) => ({ pkg: r.pkg, path: debFiles.get(`${r.pkg}=${r.v1}`) })), T1));
  await make('base-v2', (root) => buildRootfs(root, deb.resolved.map((r) => ({ pkg: r.pkg, path: debFiles.get(`${r.pkg}=${r.v2}`) })), T2));
  const webV1 = await make('web-modules-v1', (root) => buildNodeModules(root, 'web', WEB_DEPS.map(([n, a]) => [n, a]), npm, T1 + 3600), { rootOwned: true });
  await make('web-modules-v2', (root) => buildNodeModules(root, 'web', WEB_DEPS.map(([n, , b]) => [n, b]), npm, T2 + 3600), { rootOwned: true });
  const webSrc = await make('web-src', (root) => buildAppSource(root, 'web', T_SRC), { rootOwned: true });
  await make('api-modules', (root) => buildNodeModules(root, 'api', API_DEPS, npm, T1 + 7200), { rootOwned: true });
  await make('api-src', (root) => buildAppSource(root, 'api', T_SRC), { rootOwned: true });
  // the no-op rebuild: the same trees as dep-bump's v1, every entry stamped with a new mtime
  for (const [name, root, rootOwned] of [['noop-base', baseV1, false], ['noop-web-modules', webV1, true], ['noop-web-src', webSrc, true]]) {
    say(`building layer ${name}...`);
    layers[name] = { name, ...(await tarLayer(root, join(layersDir, `${name}.tar`), { mtime: T_NOOP, rootOwned })) };
  }
  await rm(trees, { recursive: true, force: true });

  const created = { 'base-v1': 'ADD rootfs.tar /', 'base-v2': 'ADD rootfs.tar /', 'noop-base': 'ADD rootfs.tar /' };
  const L = (name) => ({ ...layers[name], createdBy: created[name] ?? (name.includes('modules') ? 'RUN npm ci --omit=dev' : 'COPY . /app') });
  const image = (tag, names, t, cmd = ['node', 'server.js']) => ({ tag, created: t, layers: names.map(L), cmd, env: NODE_ENV, workingDir: '/app' });
  const pairs = [
    {
      name: 'dep-bump',
      title: 'dependency bump: web app node_modules at a later lockfile',
      v1: image('v1', ['base-v1', 'web-modules-v1', 'web-src'], T1 + 3600),
      v2: image('v2', ['base-v1', 'web-modules-v2', 'web-src'], T2 + 3600),
    },
    {
      name: 'security-update',
      title: `Debian base security update (${changedDebs.length} of ${deb.resolved.length} packages), api app on top`,
      v1: image('v1', ['base-v1', 'api-modules', 'api-src'], T1 + 7200),
      v2: image('v2', ['base-v2', 'api-modules', 'api-src'], T2 + 7200),
    },
    {
      name: 'noop-rebuild',
      title: 'no-op rebuild: every layer re-tarred with new mtimes, same contents',
      v1: image('v1', ['base-v1', 'web-modules-v1', 'web-src'], T1 + 3600),
      v2: image('v2', ['noop-base', 'noop-web-modules', 'noop-web-src'], T_NOOP),
    },
    {
      name: 'cross-image',
      title: 'cross-image: device runs the api app; target is the web app (v2 deps) on the same base',
      v1: image('v1', ['base-v1', 'api-modules', 'api-src'], T1 + 7200),
      v2: image('v2', ['base-v1', 'web-modules-v2', 'web-src'], T2 + 3600),
    },
  ];
  for (const p of pairs) {
    p.layout = join(dir, 'pairs', p.name, 'layout');
    await writeLayout(p.layout, [p.v1, p.v2]);
  }
  const strip = (img) => ({ tag: img.tag, layers: img.layers.map((l) => l.name) });
  return {
    dir,
    format: DATASET_FORMAT,
    built: new Date().toISOString(),
    debian: { packages: deb.resolved.length, missing: deb.missing, updated: changedDebs.map((r) => `${r.pkg} ${r.v1} -> ${r.v2} (${r.v2Suite})`), versions: deb.resolved },
    npm: { web: WEB_DEPS, api: API_DEPS, webChanged: WEB_DEPS.filter(([, a, b]) => a !== b).length },
    layers: Object.fromEntries(Object.entries(layers).map(([k, v]) => [k, { ...v, file: v.file }])),
    pairs: pairs.map((p) => ({ name: p.name, title: p.title, layout: p.layout, v1: strip(p.v1), v2: strip(p.v2) })),
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
  console.log(`  npm: web app ${meta.npm.web.length} packages (${meta.npm.webChanged} bumped), api app ${meta.npm.api.length} packages`);
  for (const l of Object.values(meta.layers)) console.log(`    layer ${l.name.padEnd(18)} ${String(l.entries).padStart(6)} entries ${(l.size / 1e6).toFixed(1).padStart(7)} MB tar ${(l.gzip6 / 1e6).toFixed(1).padStart(6)} MB gzip -6`);
}
