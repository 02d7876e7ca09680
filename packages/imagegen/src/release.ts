/**
 * `v2` from `v1`: what a typical release changes. The base layer is rebuilt (every mtime moves, so
 * its diff_id changes) with a security update of a few libraries, one package removed, one added
 * and one python package bumped; the app gets edits, adds, removals, upgraded and new npm packages
 * and a vendored `lib/<name>-1.2.3/` bumped to `-1.2.4/`; the config layer changes a little; and a
 * new top layer deletes lower files with whiteouts and replaces a directory with an opaque marker.
 */
import { NPM_MTIME } from './app-tree.js';
import { addDpkgInfo, dpkgLists } from './base-tree.js';
import { literal } from './body.js';
import { editFile, OPAQUE_WHITEOUT, replaceBody, WHITEOUT_PREFIX } from './changes.js';
import { DAY, type ResolvedGenOptions } from './options.js';
import { hashSeed, Rng } from './rng.js';
import { finishTree, parentPath, TreeBuilder, type FileEntry, type TreeEntry } from './tree.js';
import { coinName } from './words.js';

/** The four layers of `v2`. */
export interface ReleaseTrees {
  base: TreeEntry[];
  app: TreeEntry[];
  config: TreeEntry[];
  /** The new top layer holding whiteouts and an opaque directory. */
  cleanup: TreeEntry[];
  /** Versioned directories renamed by the release (`from`, `to`). */
  renamedDirs: Array<[string, string]>;
}

/** How much later than v1's layers v2's are built. */
export const RELEASE_SHIFT = 14 * DAY;

const VERSION_DIR = /^(.*-)(\d+)\.(\d+)\.(\d+)(\.dist-info)?$/;

/** Moves every entry under `from/` to `to/`, editing about a third of the files. */
function bumpDir(entries: TreeEntry[], from: string, to: string, rng: Rng, mtime: number): TreeEntry[] {
  return entries.map((e) => {
    if (e.path !== from && !e.path.startsWith(`${from}/`)) return e;
    const moved = { ...e, path: to + e.path.slice(from.length), mtime };
    return moved.type === 'file' && rng.chance(0.35) ? editFile(moved, rng, mtime) : moved;
  });
}

function bumpedName(dir: string): string {
  const m = VERSION_DIR.exec(dir.slice(dir.lastIndexOf('/') + 1));
  if (!m) throw new Error(`not a versioned directory: ${dir}`);
  return `${parentPath(dir)}/${m[1]}${m[2]}.${m[3]}.${Number(m[4]) + 1}${m[5] ?? ''}`;
}

/** A size for a file the release adds: as given at the default image size, smaller for smaller images. */
function scaled(o: ResolvedGenOptions, size: number): number {
  return Math.max(64, Math.round(size * Math.min(1, o.fileScale)));
}

/** `count` items spread evenly over `items`. */
function spread<T>(items: readonly T[], count: number): T[] {
  if (items.length === 0) return [];
  const step = Math.max(1, Math.floor(items.length / count));
  return items.filter((_, i) => i % step === step >> 1).slice(0, count);
}

/** dpkg status text without the stanza of `pkg`. */
function dropStanza(status: Uint8Array, pkg: string | undefined): string {
  return Buffer.from(status).toString('utf8').split('\n\n').filter((s) => !s.startsWith(`Package: ${pkg}\n`)).join('\n\n');
}

function groupsOf(entries: readonly TreeEntry[], pred: (g: string) => boolean): string[] {
  return [...new Set(entries.map((e) => e.group).filter((g): g is string => g !== undefined && pred(g)))].sort();
}

/** Regenerates the dpkg lists of `pkg` in place, from its current files. */
function refreshDpkg(entries: TreeEntry[], pkg: string): TreeEntry[] {
  const files = entries.filter((e) => e.group === pkg && !e.path.startsWith('var/lib/dpkg/info/'));
  const { list, md5sums } = dpkgLists(files);
  return entries.map((e) => {
    if (e.type !== 'file' || e.group !== pkg) return e;
    if (e.path.endsWith('.list')) return { ...e, body: literal(list) };
    if (e.path.endsWith('.md5sums')) return { ...e, body: literal(md5sums) };
    return e;
  });
}

function releaseBase(v1: readonly TreeEntry[], o: ResolvedGenOptions, rng: Rng, renamed: Array<[string, string]>): TreeEntry[] {
  const when = o.mtime + RELEASE_SHIFT;
  let out = v1.map((e) => ({ ...e, mtime: e.mtime + RELEASE_SHIFT }));
  // Security update: a few shared libraries change slightly.
  const libs = out.filter((e): e is FileEntry => e.type === 'file' && e.body.kind === 'elf' && /^usr\/lib\/[^/]+-linux-gnu[^/]*\/lib[^/]+\.so\./.test(e.path));
  const updated = new Set(spread(libs, Math.max(2, Math.round(libs.length * 0.03))).map((e) => e.path));
  out = out.map((e) => (e.type === 'file' && updated.has(e.path) ? editFile(e, rng, when) : e));
  for (const g of groupsOf(out.filter((e) => updated.has(e.path)), () => true)) out = refreshDpkg(out, g);
  // A python package moves to the next patch release: its dist-info directory is renamed.
  const info = out.find((e) => e.type === 'dir' && /^usr\/lib\/python3\/dist-packages\/[^/]+-\d+\.\d+\.\d+\.dist-info$/.test(e.path));
  if (info) {
    const to = bumpedName(info.path);
    renamed.push([info.path, to]);
    const group = out.find((e) => e.path.startsWith(`${info.path}/`))?.group;
    out = bumpDir(out, info.path, to, rng, when);
    const mod = info.path.replace(/-\d+\.\d+\.\d+\.dist-info$/, '');
    out = out.map((e) => (e.type === 'file' && e.path.startsWith(`${mod}/`) && rng.chance(0.4) ? editFile(e, rng, when) : e));
    if (group) out = refreshDpkg(out, group);
  }
  // One package is dropped, one is new.
  const dpkg = groupsOf(out, (g) => !g.startsWith('large-') && !g.startsWith('python3-'));
  const dropped = dpkg[Math.floor(dpkg.length / 2)];
  out = out.filter((e) => e.group === undefined || e.group !== dropped);
  out = out.map((e) => (e.path === 'var/lib/dpkg/status' && e.type === 'file' && e.body.kind === 'literal' ? { ...e, body: literal(dropStanza(e.body.data, dropped)) } : e));
  const b = new TreeBuilder({ mtime: when, uname: 'root', gname: 'root' });
  for (const e of out) b.add(e);
  const pkg = `${coinName(rng, 3)}-tools`;
  const arch = o.platform.architecture;
  b.file(`usr/bin/${pkg}`, { kind: 'elf', seed: hashSeed(o.seed, 'release', pkg, arch), size: scaled(o, 70 * 1024), arch }, { mode: 0o755, group: pkg });
  b.file(`usr/share/doc/${pkg}/copyright`, { kind: 'prose', seed: hashSeed(o.seed, 'base', 'license-shared-1'), size: scaled(o, 5000) }, { group: pkg });
  addDpkgInfo({ b, rng, o: { ...o, mtime: when } }, pkg);
  return b.finish();
}

function releaseApp(v1: readonly TreeEntry[], o: ResolvedGenOptions, rng: Rng, renamed: Array<[string, string]>): TreeEntry[] {
  const when = o.mtime + RELEASE_SHIFT + DAY;
  let out = [...v1];
  // A vendored library moves to its next patch release.
  const vendored = out.find((e) => e.type === 'dir' && /^app\/lib\/[^/]+-\d+\.\d+\.\d+$/.test(e.path));
  if (vendored) {
    const to = bumpedName(vendored.path);
    renamed.push([vendored.path, to]);
    out = bumpDir(out, vendored.path, to, rng, when);
  }
  // Two npm packages are removed and two upgraded in place.
  const npm = groupsOf(out, (g) => g.startsWith('npm:'));
  const removed = new Set([npm[1], npm[Math.floor(npm.length / 2)]]);
  const upgraded = new Set([npm[2], npm[npm.length - 2]]);
  const removedDirs = [...removed].map((g) => `app/node_modules/${g?.slice(4)}`);
  out = out.filter((e) => !(e.group !== undefined && removed.has(e.group)) && !removedDirs.some((d) => e.path === d || e.path.startsWith(`${d}/`)));
  const upgrade = (e: TreeEntry): boolean => e.type === 'file' && e.group !== undefined && upgraded.has(e.group) && !e.path.endsWith('/LICENSE');
  out = out.map((e) => (e.type === 'file' && upgrade(e) && (e.path.endsWith('/package.json') || rng.chance(0.6)) ? editFile(e, rng, e.mtime) : e));
  // The app's own code: the main binary and some modules change; one asset is regenerated.
  let assets = 0;
  out = out.map((e) => {
    if (e.type !== 'file') return e;
    if (e.path.startsWith('app/bin/') || e.path === 'app/package.json') return editFile(e, rng, when);
    if (e.path.startsWith('app/dist/') && rng.chance(0.2)) return editFile(e, rng, when);
    if (e.path.startsWith('app/static/img/') && assets++ === 1) return { ...e, body: replaceBody(e.body, rng, 'v2'), mtime: when };
    return e;
  });
  const dist = out.filter((e) => e.path.startsWith('app/dist/') && e.type === 'file');
  const gone = dist[dist.length - 1]?.path;
  out = out.filter((e) => e.path !== gone);
  const b = new TreeBuilder({ mtime: when, uid: 1000, gid: 1000 });
  for (const e of out) b.add(e);
  for (let i = 0; i < 3; i++) {
    const path = `app/dist/${coinName(rng, 3)}-v2.js`;
    b.file(path, { kind: 'js', seed: hashSeed(o.seed, 'release', path), size: scaled(o, rng.size(8 * 1024, 500, 40 * 1024)) });
  }
  for (let i = 0; i < 2; i++) {
    const name = `${coinName(rng, 2)}-${coinName(rng, 2)}`;
    b.file(`app/node_modules/${name}/package.json`, literal(`{\n  "name": "${name}",\n  "version": "0.${i + 1}.0"\n}\n`), { mtime: NPM_MTIME });
    b.file(`app/node_modules/${name}/index.js`, { kind: 'js', seed: hashSeed(o.seed, 'npm', name), size: scaled(o, rng.size(6 * 1024, 500, 30 * 1024)) }, { mtime: NPM_MTIME });
  }
  b.file('app/static/img/release-banner.png', { kind: 'random', seed: hashSeed(o.seed, 'release', 'banner'), size: scaled(o, 48 * 1024) });
  return finishTree(b.list(), { mtime: when, uid: 1000, gid: 1000 });
}

function releaseConfig(v1: readonly TreeEntry[], o: ResolvedGenOptions, rng: Rng): TreeEntry[] {
  const when = o.mtime + RELEASE_SHIFT + DAY;
  const confd = v1.filter((e) => e.path.includes('/conf.d/'));
  const dropped = confd[0]?.path;
  const out: TreeEntry[] = v1
    .filter((e) => e.path !== dropped)
    .map((e) => (e.type === 'file' && (e.path.endsWith(`${o.appName}.conf`) || e.path.endsWith('/env')) ? editFile(e, rng, when) : e));
  const dir = `etc/${o.appName}/conf.d`;
  out.push({ path: `${dir}/90-release.conf`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: when, body: { kind: 'config', seed: hashSeed(o.seed, 'release', 'conf'), size: scaled(o, 900) } });
  return finishTree(out, { mtime: when });
}

/** The v2-only top layer: `RUN rm -rf <doc dir> <binary> /app/plugins/* && cp plugins /app/plugins/`. */
function cleanupLayer(base: readonly TreeEntry[], app: readonly TreeEntry[], o: ResolvedGenOptions, rng: Rng): TreeEntry[] {
  const when = o.mtime + RELEASE_SHIFT + 2 * DAY;
  const meta = { mode: 0o644, uid: 0, gid: 0, mtime: when };
  const out: TreeEntry[] = [];
  const wh = (path: string): void => void out.push({ ...meta, type: 'file', path: `${parentPath(path)}/${WHITEOUT_PREFIX}${path.slice(path.lastIndexOf('/') + 1)}`, body: literal('') });
  const docs = base.filter((e) => e.type === 'dir' && /^usr\/share\/doc\/[^/]+$/.test(e.path));
  const doc = docs[Math.floor(docs.length / 3)];
  if (doc) wh(doc.path);
  const linked = new Set(base.filter((e) => e.type === 'hardlink' || e.type === 'symlink').map((e) => e.target.replace(/^\//, '')));
  const bins = base.filter((e) => e.type === 'file' && e.path.startsWith('usr/bin/') && !linked.has(e.path));
  const bin = bins[Math.floor(bins.length / 2)];
  if (bin) wh(bin.path);
  const plugins = app.filter((e): e is FileEntry => e.type === 'file' && e.path.startsWith('app/plugins/'));
  out.push({ ...meta, type: 'file', path: `app/plugins/${OPAQUE_WHITEOUT}`, body: literal('') });
  const kept = plugins[0];
  if (kept) out.push(editFile({ ...kept, uid: 0, gid: 0 }, rng, when));
  out.push({ ...meta, type: 'file', path: 'app/plugins/metrics-v2.js', body: { kind: 'js', seed: hashSeed(o.seed, 'release', 'plugin'), size: scaled(o, 5 * 1024) } });
  return finishTree(out, { mtime: when });
}

/** Derives `v2`'s layers from `v1`'s (deterministic for a seed). */
export function deriveRelease(v1: { base: readonly TreeEntry[]; app: readonly TreeEntry[]; config: readonly TreeEntry[] }, o: ResolvedGenOptions): ReleaseTrees {
  const rng = Rng.derive(o.seed, 'release');
  const renamedDirs: Array<[string, string]> = [];
  const base = releaseBase(v1.base, o, rng, renamedDirs);
  const app = releaseApp(v1.app, o, rng, renamedDirs);
  const config = releaseConfig(v1.config, o, rng);
  const cleanup = cleanupLayer(base, app, o, rng);
  return { base, app, config, cleanup, renamedDirs };
}
