// Debian base rootfs trees from real bookworm .deb packages: versions resolved with
// `apt-cache madison`, fetched with `apt-get download PKG=VER` into the cache, unpacked with
// `dpkg-deb -x`, plus the dpkg database (status, info/*.list, md5sums, maintainer scripts) as a
// real image has, and merged /usr (bin, sbin, lib* are symlinks into usr/ as in bookworm images).
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile, cp, lstat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cacheDir, run } from '../lib/util.mjs';

const exec = promisify(execFile);

/** `a` < `b` in dpkg version order. */
async function versionLess(a, b) {
  try {
    await exec('dpkg', ['--compare-versions', a, 'lt', b]);
    return true;
  } catch {
    return false;
  }
}

/** Every version apt offers for `pkg`, with the suite it comes from (`bookworm/main`, `bookworm-security/main`, ...). */
async function madison(pkg) {
  const { stdout } = await exec('apt-cache', ['madison', pkg]);
  const out = [];
  for (const line of stdout.split('\n')) {
    const [name, version, source] = line.split('|').map((s) => s.trim());
    if (name !== pkg || !version || !source || !source.endsWith('Packages')) continue;
    const suite = source.split(/\s+/)[1] ?? '';
    out.push({ version, suite });
  }
  return out;
}

/**
 * Resolves each package to (v1, v2): v1 = the version in the bookworm point release
 * (`bookworm/main`), v2 = the highest version offered by any suite (bookworm-security or
 * bookworm-updates when they carry a newer one: what `apt-get upgrade` installs). Packages apt
 * does not know are left out and reported.
 */
export async function resolveDebianVersions(pkgs) {
  const resolved = [];
  const missing = [];
  for (const pkg of pkgs) {
    const offers = await madison(pkg);
    if (offers.length === 0) {
      missing.push(pkg);
      continue;
    }
    let newest = offers[0];
    for (const o of offers.slice(1)) if (await versionLess(newest.version, o.version)) newest = o;
    const point = offers.find((o) => o.suite === 'bookworm/main') ?? newest;
    resolved.push({ pkg, v1: point.version, v2: newest.version, v2Suite: newest.suite });
  }
  return { resolved, missing };
}

/** File name apt-get download gives PKG=VER (epoch colon encoded). */
function debPrefix(pkg, version) {
  return `${pkg}_${version.replace(':', '%3a')}_`;
}

/** Downloads the .debs not yet in the cache; returns a map `pkg=ver` -> path. */
export async function fetchDebs(wanted) {
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
    process.stderr.write(`dataset: apt-get download ${todo.length} .debs...\n`);
    await run('apt-get', ['download', '-q', ...todo], { cwd: dir });
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

/** Moves bin, sbin and lib* into usr/ and leaves symlinks, as bookworm's merged-/usr images have. */
async function mergeUsr(root) {
  for (const d of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) {
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
    await symlink(`usr/${d}`, p);
  }
}

/**
 * Builds a rootfs tree at `root` from `debs` ([{pkg, path}]), stamped as built at `buildTime`
 * (directories and the dpkg database get that mtime; packaged files keep theirs).
 */
export async function buildRootfs(root, debs, buildTime) {
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  const scratch = `${root}.ctl`;
  await mkdir(scratch, { recursive: true });
  const stanzas = [];
  for (const { pkg, path } of [...debs].sort((a, b) => a.pkg.localeCompare(b.pkg))) stanzas.push(await unpackDeb(path, root, pkg, scratch));
  await rm(scratch, { recursive: true, force: true });
  await writeFile(join(root, 'var', 'lib', 'dpkg', 'status'), stanzas.join('\n'));
  for (const d of ['proc', 'sys', 'dev', 'run', 'tmp', 'root', 'home', 'mnt', 'srv', 'opt', 'media', 'var/tmp', 'var/log', 'var/cache']) await mkdir(join(root, d), { recursive: true });
  await run('chmod', ['1777', join(root, 'tmp'), join(root, 'var', 'tmp')]);
  await run('chmod', ['700', join(root, 'root')]);
  await mergeUsr(root);
  const at = `@${buildTime}`;
  await run('find', [join(root, 'var', 'lib', 'dpkg'), '-type', 'f', '-exec', 'touch', '-h', '-d', at, '{}', '+']);
  await run('find', [root, '-type', 'd', '-exec', 'touch', '-h', '-d', at, '{}', '+']);
  for (const d of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) await run('touch', ['-c', '-h', '-d', at, join(root, d)]).catch(() => {});
}
