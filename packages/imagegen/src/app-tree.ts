/**
 * The upper layers of an application image: `/app` (a node-style tree with node_modules, a main
 * binary, vendored versioned libraries, static assets and plugins) and a small config layer in
 * `/etc/<app>`. Packages in node_modules come from one registry shared by every app of a seed, so
 * two apps that use the same package version carry identical files (cross-image deduplication).
 */
import { literal, type ContentKind, type GeneratedBody } from './body.js';
import { DAY, layerBudgets, resolveGenOptions, type ImageGenOptions, type ResolvedGenOptions } from './options.js';
import { hashSeed, Rng } from './rng.js';
import { fillToBudget, shrinkBodies } from './sizing.js';
import { tarSize, TreeBuilder, type FileEntry, type TreeEntry } from './tree.js';
import { coinName, identifier, NamePool, sentence, word } from './words.js';

const KIB = 1024;

/** The mtime npm gives every file it extracts from a package tarball (1985-10-26T08:15:00Z). */
export const NPM_MTIME = 499162500;

/** Owner of everything under /app (the image's unprivileged user). */
const APP_OWNER = { uid: 1000, gid: 1000 };

interface AppCtx {
  o: ResolvedGenOptions;
  rng: Rng;
  b: TreeBuilder;
  names: NamePool;
  arch: string;
}

/** One package of the shared npm-like registry. */
interface NpmPackage {
  name: string;
  version: string;
}

/** The registry every app of a seed draws its node_modules from, most popular first. */
function registry(seed: number, size: number): NpmPackage[] {
  const rng = Rng.derive(seed, 'npm-registry');
  const names = new NamePool();
  const out: NpmPackage[] = [];
  for (let i = 0; i < size; i++) {
    const base = names.unique(rng, (r) => (r.chance(0.3) ? `${word(r)}-${coinName(r, 2)}` : coinName(r, r.int(2, 3))));
    const name = rng.chance(0.15) ? `@${coinName(rng, 2)}/${base}` : base;
    out.push({ name, version: `${rng.int(0, 9)}.${rng.int(0, 30)}.${rng.int(0, 12)}` });
  }
  return out;
}

function appBody(c: AppCtx, kind: ContentKind, size: number, id: string): GeneratedBody {
  if (kind === 'elf') return { kind, seed: hashSeed(c.o.seed, 'app', c.o.appName, id, c.arch), size, arch: c.arch };
  return { kind, seed: hashSeed(c.o.seed, 'app', c.o.appName, id), size };
}

/** A package's files; their bodies depend only on (seed, name, version), never on the app. */
function addNpmPackage(c: AppCtx, dir: string, p: NpmPackage, depth: number): void {
  const { b } = c;
  const rng = Rng.derive(c.o.seed, 'npm', p.name, p.version);
  const seed = (id: string): number => hashSeed(c.o.seed, 'npm', p.name, p.version, id);
  const opt = { ...APP_OWNER, mtime: NPM_MTIME, group: `npm:${p.name}` };
  const root = `${dir}/node_modules/${p.name}`;
  const manifest = { name: p.name, version: p.version, description: sentence(rng), main: 'index.js', license: 'MIT' };
  b.file(`${root}/package.json`, literal(JSON.stringify(manifest, null, 2) + '\n'), opt);
  b.file(`${root}/index.js`, { kind: 'js', seed: seed('index'), size: rng.size(1500, 80, 12 * KIB) }, opt);
  b.file(`${root}/LICENSE`, { kind: 'prose', seed: hashSeed(c.o.seed, 'npm-license', rng.int(0, 2)), size: 1070 }, opt);
  if (rng.chance(0.8)) b.file(`${root}/README.md`, { kind: 'prose', seed: seed('readme'), size: rng.size(4 * KIB, 200, 30 * KIB) }, opt);
  if (rng.chance(0.3)) b.file(`${root}/CHANGELOG.md`, { kind: 'prose', seed: seed('changelog'), size: rng.size(6 * KIB, 300, 60 * KIB) }, opt);
  for (let i = rng.int(0, 8); i > 0; i--) {
    const sub = rng.chance(0.3) ? `${word(rng)}/` : '';
    b.file(`${root}/lib/${sub}${identifier(rng)}.js`, { kind: 'js', seed: seed(`lib${i}`), size: rng.size(5 * KIB, 100, 80 * KIB) }, opt);
  }
  if (rng.chance(0.05)) b.file(`${root}/build/Release/${p.name.replace(/.*\//, '')}.node`, { kind: 'elf', seed: seed(`addon-${c.arch}`), size: rng.size(120 * KIB, 20 * KIB, 800 * KIB), arch: c.arch }, { ...opt, mode: 0o755 });
  if (rng.chance(0.1)) {
    b.file(`${root}/bin/cli.js`, { kind: 'js', seed: seed('cli'), size: rng.size(2 * KIB, 200, 10 * KIB) }, { ...opt, mode: 0o755 });
    const bin = p.name.replace(/.*\//, '');
    if (depth === 0) b.symlink(`${dir}/node_modules/.bin/${bin}`, `../${p.name}/bin/cli.js`, { ...opt, mtime: c.o.mtime });
  }
}

function addNodeModules(c: AppCtx, reg: NpmPackage[]): void {
  const { rng } = c;
  const count = Math.min(reg.length, Math.max(5, Math.round(90 * c.o.fileScale)));
  const picked = new Set<NpmPackage>();
  while (picked.size < count) picked.add(rng.skewed(reg, 1.8));
  for (const p of picked) {
    addNpmPackage(c, 'app', p, 0);
    if (rng.chance(0.1)) {
      const dep = rng.pick(reg);
      addNpmPackage(c, `app/node_modules/${p.name}`, { name: dep.name, version: `${rng.int(0, 3)}.${rng.int(0, 9)}.0` }, 1);
    }
  }
  // One deeply nested dependency chain: paths past 255 bytes need PAX headers, as real ones do.
  let deep = `app/node_modules/@${coinName(rng, 4)}/${coinName(rng, 5)}`;
  while (deep.length < 240) deep += `/node_modules/${coinName(rng, 4)}-${word(rng)}`;
  deep += `/dist/esm/internal/${identifier(rng)}-${identifier(rng)}.js`;
  c.b.file(deep, appBody(c, 'js', 3 * KIB, deep), { ...APP_OWNER, mtime: NPM_MTIME });
}

function addVendoredLib(c: AppCtx, name: string): void {
  const { b, rng } = c;
  const version = `1.${rng.int(0, 9)}.${rng.int(0, 9)}`;
  const root = `app/lib/${name}-${version}`;
  const opt = { ...APP_OWNER, mtime: c.o.mtime + DAY - rng.int(1, 60) * DAY, group: `vendor:${name}` };
  // Bodies are keyed by name, not version, so a version bump can keep most of them identical.
  b.file(`${root}/lib${name}.so`, appBody(c, 'elf', rng.size(200 * KIB, 30 * KIB, 1500 * KIB), `vendor-${name}-so`), { ...opt, mode: 0o755 });
  b.file(`${root}/${name}.js`, appBody(c, 'js', rng.size(12 * KIB, 1 * KIB, 60 * KIB), `vendor-${name}-js`), opt);
  b.file(`${root}/include/${name}.h`, appBody(c, 'js', rng.size(6 * KIB, 500, 30 * KIB), `vendor-${name}-h`), opt);
  b.file(`${root}/README`, appBody(c, 'prose', rng.size(3 * KIB, 300, 10 * KIB), `vendor-${name}-readme`), opt);
  for (let i = rng.int(2, 6); i > 0; i--) b.file(`${root}/data/${coinName(rng, 2)}.dat`, appBody(c, 'data', rng.size(20 * KIB, 1 * KIB, 120 * KIB), `vendor-${name}-dat${i}`), opt);
}

function addAppFiles(c: AppCtx, budget: number, reg: NpmPackage[]): void {
  const { b, rng, o } = c;
  const built = { ...APP_OWNER, mtime: o.mtime + DAY };
  const deps = Object.fromEntries(reg.slice(0, 12).map((p) => [p.name, `^${p.version}`]));
  b.file('app/package.json', literal(JSON.stringify({ name: o.appName, version: '1.0.0', private: true, main: 'dist/main.js', dependencies: deps }, null, 2) + '\n'), built);
  b.file(`app/bin/${o.appName}`, appBody(c, 'elf', Math.max(16 * KIB, Math.round(budget * 0.12)), 'main-binary'), { ...built, mode: 0o755 });
  for (let i = Math.max(3, Math.round(30 * o.fileScale)); i > 0; i--) {
    const path = `app/dist/${c.names.unique(rng, identifier)}.js`;
    b.file(path, appBody(c, 'js', rng.size(10 * KIB, 500, 90 * KIB), path), built);
  }
  for (let i = 0; i < 3; i++) addVendoredLib(c, c.names.unique(rng, (r) => coinName(r, 2)));
  for (let i = Math.max(2, Math.round(12 * o.fileScale)); i > 0; i--) {
    const path = `app/static/img/${c.names.unique(rng, (r) => word(r) + '-' + coinName(r, 1))}.png`;
    b.file(path, appBody(c, 'random', rng.size(14 * KIB, 300, 200 * KIB), path), built);
  }
  b.file('app/static/css/site.css', appBody(c, 'config', 18 * KIB, 'css'), built);
  b.file('app/static/fonts/inter.woff2', appBody(c, 'random', 96 * KIB, 'font'), built);
  // A non-ASCII name: tar-stream writes it with a PAX path record, as GNU tar and BuildKit do.
  b.file('app/static/i18n/r\u00e9sum\u00e9.txt', appBody(c, 'prose', 2 * KIB, 'i18n-resume'), built);
  for (const lang of ['de', 'en', 'fr', 'ja']) b.file(`app/static/i18n/${lang}.json`, appBody(c, 'config', rng.size(6 * KIB, 1 * KIB, 20 * KIB), `i18n-${lang}`), built);
  for (let i = 0; i < 5; i++) {
    const path = `app/plugins/${c.names.unique(rng, (r) => word(r) + '-' + coinName(r, 1))}.js`;
    b.file(path, appBody(c, 'js', rng.size(4 * KIB, 500, 20 * KIB), path), built);
  }
  b.file('app/config/default.json', appBody(c, 'config', 3 * KIB, 'default-config'), built);
  b.file('app/.keep', literal(''), built);
}

function addLargeAsset(c: AppCtx, size: number, i: number): FileEntry {
  const { rng } = c;
  const k = rng.int(0, 2);
  const name = `${word(rng)}-${coinName(rng, 2)}`;
  const path = k === 0 ? `app/static/media/${name}.mp4` : k === 1 ? `app/models/${name}.onnx` : `app/lib/native/lib${name}.so`;
  const kind: ContentKind = k === 0 ? 'random' : k === 1 ? 'data' : 'elf';
  return c.b.file(path, appBody(c, kind, size, `large-${i}-${path}`), { ...APP_OWNER, mtime: c.o.mtime + DAY, mode: k === 2 ? 0o755 : 0o644 });
}

/**
 * The `/app` layer of `opts.appName` for an image generated with `opts`: sized so that base, app
 * and config layers add up to `targetBytes`.
 */
export function generateAppTree(opts: ImageGenOptions = {}): TreeEntry[] {
  const o = resolveGenOptions(opts);
  const budget = layerBudgets(o).upper - tarSize(generateConfigTree(opts));
  const b = new TreeBuilder({ mtime: o.mtime + DAY, ...APP_OWNER });
  const c: AppCtx = { o, rng: Rng.derive(o.seed, 'app-tree', o.appName), b, names: new NamePool(), arch: o.platform.architecture };
  const reg = registry(o.seed, Math.max(40, Math.round(160 * o.fileScale)));
  b.dir('app', { uid: 1000, gid: 1000 });
  addNodeModules(c, reg);
  addAppFiles(c, budget, reg);
  shrinkBodies(b, Math.round(budget * 0.8));
  fillToBudget(b, budget, c.rng, (size, i) => addLargeAsset(c, size, i));
  return b.finish();
}

/** The config layer: a handful of files in `/etc/<appName>`. */
export function generateConfigTree(opts: ImageGenOptions = {}): TreeEntry[] {
  const o = resolveGenOptions(opts);
  const rng = Rng.derive(o.seed, 'config-tree', o.appName);
  const b = new TreeBuilder({ mtime: o.mtime + DAY });
  const dir = `etc/${o.appName}`;
  const seed = (id: string): number => hashSeed(o.seed, 'config', o.appName, id);
  b.file(`${dir}/${o.appName}.conf`, { kind: 'config', seed: seed('main'), size: rng.size(4 * KIB, 1 * KIB, 8 * KIB) });
  for (let i = 1; i <= 4; i++) b.file(`${dir}/conf.d/${i}0-${word(rng)}.conf`, { kind: 'config', seed: seed(`conf.d-${i}`), size: rng.size(700, 100, 3 * KIB) });
  b.file(`${dir}/env`, literal(`APP_NAME=${o.appName}\nAPP_PORT=8080\nLOG_LEVEL=info\n`));
  const pem = Buffer.alloc(900);
  rng.fill(pem);
  b.file(`${dir}/tls/ca.pem`, literal(`-----BEGIN CERTIFICATE-----\n${pem.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`));
  b.file(`${dir}/features.json`, literal(JSON.stringify({ telemetry: false, cache: { size: 64 }, channels: ['stable'] }, null, 2) + '\n'));
  b.dir(`${dir}/empty.d`);
  return b.finish();
}
