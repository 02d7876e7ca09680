// Debian rootfs trees and apt-installed layers from real .deb packages: versions resolved with
// `apt-cache madison`, fetched with `apt-get download PKG=VER` into the cache (the machine's apt
// for bookworm, a private configuration for trixie: apt.mjs), unpacked with `dpkg-deb -x`, plus
// the dpkg database (status, info/*.list, md5sums, maintainer scripts) as a real image has, and
// merged /usr (bin, sbin, lib* are symlinks into usr/ as in bookworm and trixie images).
// Maintainer scripts are recorded, never run (so no .pyc files, no generated caches).
import { mkdir, readdir, readFile, rm, writeFile, cp, lstat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir, run } from '../lib/util.mjs';
import { SYSTEM_APT, aptDownload, madison, newest } from './apt.mjs';

/**
 * Resolves each package to (v1, v2): v1 = the version in the bookworm point release
 * (`bookworm/main`), v2 = the highest version offered by any suite (bookworm-security or
 * bookworm-updates when they carry a newer one: what `apt-get upgrade` installs). Packages apt
 * does not know are left out and reported.
 */
export async function resolveDebianVersions(pkgs) {
  const resolved = [];
  const missing = [];
  const known = await madison(SYSTEM_APT, pkgs);
  for (const pkg of pkgs) {
    const offers = known.get(pkg);
    if (offers.length === 0) {
      missing.push(pkg);
      continue;
    }
    const top = await newest(offers);
    const point = offers.find((o) => o.suite === 'bookworm/main') ?? top;
    resolved.push({ pkg, v1: point.version, v2: top.version, v2Suite: top.suite });
  }
  return { resolved, missing };
}

/**
 * The same package set in another release (`apt`, e.g. the private trixie configuration), at the
 * highest version it offers: each name maps to `renames[name]` when listed (soname and version
 * bumps: libicu72 -> libicu76, python3.11 -> python3.13), else to itself, else to `<name>t64`
 * (the 64-bit time_t library renames). Returns `{ resolved: [{ pkg, name, version, suite }],
 * missing }` where `pkg` is the old name and `name` the new one.
 */
export async function resolveUpgrade(apt, pkgs, renames) {
  const resolved = [];
  const missing = [];
  const candidates = (pkg) => [renames[pkg], pkg, `${pkg}t64`].filter(Boolean);
  const known = await madison(apt, [...new Set(pkgs.flatMap(candidates))]);
  for (const pkg of pkgs) {
    let hit;
    for (const name of candidates(pkg)) {
      const offers = known.get(name);
      if (offers.length === 0) continue;
      const top = await newest(offers);
      hit = { pkg, name, version: top.version, suite: top.suite };
      break;
    }
    if (hit) resolved.push(hit);
    else missing.push(pkg);
  }
  return { resolved, missing };
}

/** File name apt-get download gives PKG=VER (epoch colon encoded). */
function debPrefix(pkg, version) {
  return `${pkg}_${version.replace(':', '%3a')}_`;
}

/**
 * Downloads the .debs of `wanted` ([{pkg, version}]) not yet in the cache (shared by every apt
 * configuration: file names carry the version); returns a map `pkg=ver` -> path.
 */
export async function fetchDebs(wanted, apt = SYSTEM_APT) {
  const dir = join(cacheDir(), 'deb');
  await mkdir(dir, { recursive: true });
  const find = async () => {
    const names = await readdir(dir);
    const map = new Map();
    for (const { pkg, version } of wanted) {
      const hit = names.find((n) => n.startsWith(debPrefix(pkg, version)) && n.endsWith('.deb'));
      if (hit) map.set(`${pkg}=${version}`, join(dir, hit));
    }
    return map;
  };
  let have = await find();
  const todo = [...new Set(wanted.map(({ pkg, version }) => `${pkg}=${version}`))].filter((k) => !have.has(k));
  if (todo.length > 0) {
    process.stderr.write(`dataset: apt-get download ${todo.length} .debs (${apt.name} apt)...\n`);
    await aptDownload(apt, todo, dir);
    have = await find();
  }
  const lost = wanted.filter(({ pkg, version }) => !have.has(`${pkg}=${version}`));
  if (lost.length > 0) throw new Error(`apt-get download did not produce: ${lost.map((w) => `${w.pkg}=${w.version}`).join(', ')}`);
  return have;
}

/** The dpkg status stanza of a package: its control file with the Status line dpkg adds. */
function statusStanza(control) {
  const lines = control.trimEnd().split('\n');
  const at = lines.findIndex((l) => l.startsWith('Package:'));
  lines.splice(at + 1, 0, 'Status: install ok installed');
  return `${lines.join('\n')}\n`;
}

/** Unpacks one .deb into `root` and records it in root/var/lib/dpkg like dpkg would. */
async function unpackDeb(deb, root, pkg, scratch) {
  await run('dpkg-deb', ['-x', deb, root]);
  const ctl = join(scratch, pkg);
  await rm(ctl, { recursive: true, force: true });
  await run('dpkg-deb', ['-e', deb, ctl]);
  const info = join(root, 'var', 'lib', 'dpkg', 'info');
  await mkdir(info, { recursive: true });
  for (const f of await readdir(ctl)) {
    if (f === 'control') continue;
    await cp(join(ctl, f), join(info, `${pkg}.${f}`), { preserveTimestamps: false });
  }
  const control = await readFile(join(ctl, 'control'), 'utf8');
  await rm(ctl, { recursive: true, force: true });
  const { stdout } = await run('bash', ['-o', 'pipefail', '-c', 'dpkg-deb --fsys-tarfile "$1" | tar -t', 'list', deb]);
  const paths = stdout.toString().split('\n').filter(Boolean).map((p) => (p === './' ? '/.' : p.replace(/^\./, '').replace(/\/$/, '')));
  await writeFile(join(info, `${pkg}.list`), `${paths.join('\n')}\n`);
  return statusStanza(control);
}

const USR_MERGED = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];

/**
 * Moves bin, sbin and lib* into usr/. With `links`, leaves symlinks as merged-/usr images have;
 * without (a layer on top of such a base) leaves nothing: dpkg on the base would have followed
 * the base's symlinks, and a directory in the layer would hide them.
 */
async function mergeUsr(root, { links = true } = {}) {
  for (const d of USR_MERGED) {
    const p = join(root, d);
    let st;
    try {
      st = await lstat(p);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) continue;
    await mkdir(join(root, 'usr', d), { recursive: true });
    await run('cp', ['-a', `${p}/.`, join(root, 'usr', d)]);
    await rm(p, { recursive: true, force: true });
    if (links) await symlink(`usr/${d}`, p);
  }
}

/** Unpacks `debs` ([{pkg, path}]) into a fresh `root` in name order; returns their status stanzas ([{pkg, stanza}]). */
async function unpackAll(root, debs) {
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  const scratch = `${root}.ctl`;
  await mkdir(scratch, { recursive: true });
  const stanzas = [];
  for (const { pkg, path } of [...debs].sort((a, b) => a.pkg.localeCompare(b.pkg))) stanzas.push({ pkg, stanza: await unpackDeb(path, root, pkg, scratch) });
  await rm(scratch, { recursive: true, force: true });
  return stanzas;
}

/** Stamps the dpkg database files and every directory of `root` with `buildTime` (packaged files keep theirs). */
async function stamp(root, buildTime) {
  const at = `@${buildTime}`;
  await run('find', [join(root, 'var', 'lib', 'dpkg'), '-type', 'f', '-exec', 'touch', '-h', '-d', at, '{}', '+']);
  await run('find', [root, '-type', 'd', '-exec', 'touch', '-h', '-d', at, '{}', '+']);
  for (const d of USR_MERGED) await run('touch', ['-c', '-h', '-d', at, join(root, d)]).catch(() => {});
}

/**
 * Builds a rootfs tree at `root` from `debs` ([{pkg, path}]), stamped as built at `buildTime`
 * (directories and the dpkg database get that mtime; packaged files keep theirs). Returns the
 * status stanzas, for layers installed on top of it (buildDebLayer).
 */
export async function buildRootfs(root, debs, buildTime) {
  const stanzas = await unpackAll(root, debs);
  await writeFile(join(root, 'var', 'lib', 'dpkg', 'status'), stanzas.map((s) => s.stanza).join('\n'));
  for (const d of ['proc', 'sys', 'dev', 'run', 'tmp', 'root', 'home', 'mnt', 'srv', 'opt', 'media', 'var/tmp', 'var/log', 'var/cache']) await mkdir(join(root, d), { recursive: true });
  await run('chmod', ['1777', join(root, 'tmp'), join(root, 'var', 'tmp')]);
  await run('chmod', ['700', join(root, 'root')]);
  await mergeUsr(root);
  await stamp(root, buildTime);
  return stanzas;
}

/**
 * Builds the tree of a `RUN apt-get install ...` layer at `root`: what `debs` ([{pkg, path}])
 * unpack, their dpkg info files, and the whole dpkg status file (`baseStanzas` from buildRootfs
 * plus theirs, in name order, as dpkg rewrites it), on a merged-/usr base.
 */
export async function buildDebLayer(root, debs, baseStanzas, buildTime) {
  const stanzas = await unpackAll(root, debs);
  const all = [...baseStanzas, ...stanzas].sort((a, b) => a.pkg.localeCompare(b.pkg));
  await writeFile(join(root, 'var', 'lib', 'dpkg', 'status'), all.map((s) => s.stanza).join('\n'));
  await mergeUsr(root, { links: false });
  await stamp(root, buildTime);
}
