/**
 * The base layer: a small Debian-like root file system. Packages each bring binaries, shared
 * libraries with their soname symlinks, man pages, docs, locale catalogs, config files and dpkg
 * metadata; python3 packages bring modules and a versioned dist-info directory.
 */
import { createHash } from 'node:crypto';
import { bodyKey, literal, type ContentKind, type GeneratedBody } from './body.js';
import { DAY, layerBudgets, resolveGenOptions, type ImageGenOptions, type ResolvedGenOptions } from './options.js';
import { hashSeed, Rng } from './rng.js';
import { fillToBudget, shrinkBodies } from './sizing.js';
import { TreeBuilder, type FileEntry, type TreeEntry } from './tree.js';
import { coinName, NamePool, sentence } from './words.js';

const KIB = 1024;

/** Debian multiarch triplet of an OCI architecture. */
export function multiarchTriplet(arch: string): string {
  const t: Record<string, string> = { amd64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', arm: 'arm-linux-gnueabihf', '386': 'i386-linux-gnu', ppc64le: 'powerpc64le-linux-gnu', s390x: 's390x-linux-gnu', riscv64: 'riscv64-linux-gnu' };
  return t[arch] ?? `${arch}-linux-gnu`;
}

/** State shared by the base layer's generators. */
interface BaseCtx {
  o: ResolvedGenOptions;
  rng: Rng;
  b: TreeBuilder;
  names: NamePool;
  arch: string;
  lib: string;
}

/** A seeded body for base-layer content `id`; ELF bodies also depend on the architecture. */
function body(c: BaseCtx, kind: ContentKind, size: number, id: string): GeneratedBody {
  if (kind === 'elf') return { kind, seed: hashSeed(c.o.seed, 'base', id, c.arch), size, arch: c.arch };
  return { kind, seed: hashSeed(c.o.seed, 'base', id), size };
}

/** A fake but stable md5 of a body, for dpkg md5sums (changes whenever the body does). */
function fakeMd5(e: FileEntry): string {
  return createHash('md5').update(bodyKey(e.body)).digest('hex');
}

/** The dpkg `.list` and `.md5sums` of a package, from its files. */
export function dpkgLists(files: readonly TreeEntry[]): { list: string; md5sums: string } {
  const paths = new Set<string>(['/.']);
  for (const f of files) {
    const parts = f.path.split('/');
    for (let i = 1; i <= parts.length; i++) paths.add(`/${parts.slice(0, i).join('/')}`);
  }
  const md5sums = files.filter((f): f is FileEntry => f.type === 'file').map((f) => `${fakeMd5(f)}  ${f.path}\n`);
  return { list: [...paths].sort().join('\n') + '\n', md5sums: md5sums.join('') };
}

function addSkeleton(c: BaseCtx): void {
  const { b, o } = c;
  const root = { mtime: o.mtime - 30 * DAY };
  for (const d of ['boot', 'dev', 'etc', 'home', 'media', 'mnt', 'opt', 'proc', 'root', 'run', 'srv', 'sys', 'usr/local/bin', 'usr/local/lib', 'usr/local/share', 'usr/include', 'usr/libexec', 'usr/share/zoneinfo/Etc', 'var/cache', 'var/log', 'var/mail', 'var/spool', 'var/lib/dpkg/info', 'var/lib/dpkg/alternatives', 'etc/alternatives', 'etc/default']) b.dir(d, root);
  b.dir('tmp', { ...root, mode: 0o1777 });
  b.dir('var/tmp', { ...root, mode: 0o1777 });
  b.dir('root', { ...root, mode: 0o700 });
  for (const d of ['bin', 'sbin', 'lib']) b.symlink(d, `usr/${d}`, root);
  b.symlink(c.arch === 'amd64' ? 'lib64' : 'lib32', c.arch === 'amd64' ? 'usr/lib64' : 'usr/lib32', root);
  const text = (path: string, content: string, mode = 0o644): void => void b.file(path, literal(content), { ...root, mode });
  text('etc/hostname', 'localhost\n');
  text('etc/hosts', '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  text('etc/debian_version', '12.4\n');
  text('usr/lib/os-release', 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n');
  b.symlink('etc/os-release', '../usr/lib/os-release', root);
  text('etc/passwd', 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\napp:x:1000:1000::/app:/bin/sh\n');
  text('etc/group', 'root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\napp:x:1000:\n');
  text('etc/shadow', 'root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n', 0o640);
  text('etc/environment', '');
  text('etc/machine-id', '');
  b.symlink('etc/localtime', '/usr/share/zoneinfo/Etc/UTC', root);
  b.file('usr/share/zoneinfo/Etc/UTC', body(c, 'data', 114, 'tz-utc'), root);
  b.file('etc/nsswitch.conf', body(c, 'config', 500, 'nsswitch'), root);
  b.file('etc/bash.bashrc', body(c, 'shell', 2 * KIB, 'bashrc'), root);
  b.file(`usr/lib/${c.lib}/libc.so.6`, body(c, 'elf', 1900 * KIB, 'libc'), root);
  const loader = c.arch === 'amd64' ? 'ld-linux-x86-64.so.2' : c.arch === 'arm64' ? 'ld-linux-aarch64.so.1' : 'ld-linux.so.3';
  b.file(`usr/lib/${c.lib}/${loader}`, body(c, 'elf', 210 * KIB, 'ld.so'), root);
  if (c.arch === 'amd64') b.symlink(`usr/lib64/${loader}`, `../lib/${c.lib}/${loader}`, root);
  for (const lic of ['Apache-2.0', 'GPL-2', 'GPL-3', 'LGPL-2.1', 'MIT']) b.file(`usr/share/common-licenses/${lic}`, body(c, 'prose', c.rng.size(18 * KIB, 1 * KIB, 40 * KIB), `license-${lic}`), root);
}

function addBinary(c: BaseCtx, pkg: string, dir: string, name: string, mtime: number): void {
  const { b, rng } = c;
  const path = `${dir}/${name}`;
  b.file(path, body(c, 'elf', rng.size(48 * KIB, 6 * KIB, 600 * KIB), path), { mode: 0o755, mtime, group: pkg });
  const section = dir.endsWith('sbin') ? 8 : 1;
  b.file(`usr/share/man/man${section}/${name}.${section}.gz`, body(c, 'random', rng.size(2 * KIB, 300, 12 * KIB), `man-${name}`), { mtime, group: pkg });
  if (rng.chance(0.08)) b.hardlink(`${path}${rng.int(1, 5)}.${rng.int(0, 40)}`, path, { mtime, group: pkg });
  if (rng.chance(0.06)) {
    const alt = c.names.unique(rng, (r) => coinName(r, 2));
    b.symlink(`etc/alternatives/${alt}`, `/${path}`, { mtime, group: pkg });
    b.symlink(`usr/bin/${alt}`, `/etc/alternatives/${alt}`, { mtime, group: pkg });
  }
}

function addLibrary(c: BaseCtx, pkg: string, name: string, mtime: number): void {
  const { b, rng } = c;
  const major = rng.int(0, 9);
  const real = `lib${name}.so.${major}.${rng.int(0, 30)}.${rng.int(0, 9)}`;
  const path = `usr/lib/${c.lib}/${real}`;
  b.file(path, body(c, 'elf', rng.size(90 * KIB, 8 * KIB, 900 * KIB), path), { mtime, group: pkg });
  b.symlink(`usr/lib/${c.lib}/lib${name}.so.${major}`, real, { mtime, group: pkg });
}

/** One dpkg package with its docs, payload and dpkg metadata. */
function addPackage(c: BaseCtx, index: number): void {
  const { b, rng, o } = c;
  const pkg = c.names.unique(rng, (r) => coinName(r, r.int(2, 3)));
  const mtime = o.mtime - rng.int(10, 900) * DAY - rng.int(0, DAY - 1);
  const opt = { mtime, group: pkg };
  const licence = rng.chance(0.35) ? `license-shared-${rng.int(0, 3)}` : `copyright-${pkg}`;
  b.file(`usr/share/doc/${pkg}/copyright`, body(c, 'prose', rng.size(4 * KIB, 600, 30 * KIB), licence), opt);
  b.file(`usr/share/doc/${pkg}/changelog.Debian.gz`, body(c, 'random', rng.size(1500, 200, 16 * KIB), `changelog-${pkg}`), opt);
  if (rng.chance(0.25)) b.file(`usr/share/doc/${pkg}/README.Debian`, body(c, 'prose', rng.size(2 * KIB, 300, 12 * KIB), `readme-${pkg}`), opt);
  if (rng.chance(0.45)) for (let i = rng.int(1, 2); i > 0; i--) addLibrary(c, pkg, i === 1 ? pkg : `${pkg}-${coinName(rng, 1)}`, mtime);
  if (rng.chance(0.55)) for (let i = rng.int(1, 4); i > 0; i--) addBinary(c, pkg, 'usr/bin', c.names.unique(rng, (r) => (i === 1 ? pkg : `${pkg}-${coinName(r, 1)}`)), mtime);
  if (rng.chance(0.08)) addBinary(c, pkg, 'usr/sbin', c.names.unique(rng, () => `${pkg}d`), mtime);
  if (rng.chance(0.2)) b.file(`etc/${pkg}/${pkg}.conf`, body(c, 'config', rng.size(1500, 100, 10 * KIB), `conf-${pkg}`), opt);
  if (rng.chance(0.06)) b.file(`etc/${pkg}/.placeholder`, literal(''), opt);
  if (rng.chance(0.1)) b.file(`etc/default/${pkg}`, body(c, 'shell', rng.size(600, 100, 3 * KIB), `default-${pkg}`), opt);
  if (rng.chance(0.15)) {
    for (const lang of ['de', 'es', 'fr', 'ja', 'pt_BR', 'ru', 'zh_CN'].slice(0, rng.int(2, 7))) {
      b.file(`usr/share/locale/${lang}/LC_MESSAGES/${pkg}.mo`, body(c, 'data', rng.size(12 * KIB, 1 * KIB, 60 * KIB), `mo-${pkg}-${lang}`), opt);
    }
  }
  if (rng.chance(0.1)) for (let i = rng.int(1, 3); i > 0; i--) b.file(`usr/share/${pkg}/${coinName(rng, 2)}.dat`, body(c, 'data', rng.size(20 * KIB, 1 * KIB, 200 * KIB), `dat-${pkg}-${i}`), opt);
  if (index % 50 === 7) b.file(`usr/share/${pkg}/empty.conf`, literal(''), opt);
  addDpkgInfo(c, pkg);
}

/** `var/lib/dpkg/info/<pkg>.*` for everything the builder holds in group `pkg`. */
export function addDpkgInfo(c: { b: TreeBuilder; rng: Rng; o: ResolvedGenOptions }, pkg: string): void {
  const { b, rng } = c;
  const files = b.group(pkg);
  const { list, md5sums } = dpkgLists(files);
  const opt = { mtime: c.o.mtime - rng.int(1, 20) * DAY, group: pkg };
  b.file(`var/lib/dpkg/info/${pkg}.list`, literal(list), opt);
  b.file(`var/lib/dpkg/info/${pkg}.md5sums`, literal(md5sums), opt);
  if (rng.chance(0.3)) b.file(`var/lib/dpkg/info/${pkg}.postinst`, { kind: 'shell', seed: hashSeed(c.o.seed, 'postinst', pkg), size: rng.size(900, 120, 6 * KIB) }, { ...opt, mode: 0o755 });
  const conffiles = files.filter((e) => e.path.startsWith('etc/') && e.type === 'file').map((e) => `/${e.path}\n`);
  if (conffiles.length > 0) b.file(`var/lib/dpkg/info/${pkg}.conffiles`, literal(conffiles.join('')), opt);
}

/** A python3 package: modules plus `<name>-<version>.dist-info/`. */
function addPythonPackage(c: BaseCtx): void {
  const { b, rng, o } = c;
  const name = c.names.unique(rng, (r) => coinName(r, 2));
  const pkg = `python3-${name}`;
  const version = `${rng.int(0, 4)}.${rng.int(0, 20)}.${rng.int(0, 9)}`;
  const mtime = o.mtime - rng.int(10, 700) * DAY;
  const opt = { mtime, group: pkg };
  const root = `usr/lib/python3/dist-packages/${name}`;
  b.file(`${root}/__init__.py`, body(c, 'python', rng.size(900, 0, 6 * KIB), `${root}/__init__.py`), opt);
  const record: string[] = [];
  for (let i = rng.int(2, 10); i > 0; i--) {
    const sub = rng.chance(0.2) ? `${coinName(rng, 1)}/` : '';
    const path = `${root}/${sub}${coinName(rng, 2)}.py`;
    b.file(path, body(c, 'python', rng.size(7 * KIB, 300, 60 * KIB), path), opt);
    record.push(`${path.slice(30)},sha256=${rng.hex(43)},${rng.int(300, 60000)}`);
  }
  if (rng.chance(0.3)) b.file(`${root}/py.typed`, literal(''), opt);
  const info = `usr/lib/python3/dist-packages/${name}-${version}.dist-info`;
  b.file(`${info}/METADATA`, body(c, 'prose', rng.size(2500, 400, 12 * KIB), `${pkg}-metadata`), opt);
  b.file(`${info}/RECORD`, literal(record.join('\n') + '\n'), opt);
  b.file(`${info}/WHEEL`, literal('Wheel-Version: 1.0\nGenerator: bdist_wheel (0.40.0)\nRoot-Is-Purelib: true\nTag: py3-none-any\n'), opt);
  b.file(`${info}/top_level.txt`, literal(`${name}\n`), opt);
  b.file(`usr/share/doc/${pkg}/copyright`, body(c, 'prose', rng.size(3 * KIB, 600, 20 * KIB), `license-shared-${rng.int(0, 3)}`), opt);
  addDpkgInfo(c, pkg);
}

/** A large file that fills the budget: big libraries, data files, archives. */
function addLarge(c: BaseCtx, size: number, i: number): FileEntry {
  const { b, rng } = c;
  const k = rng.int(0, 3);
  const name = coinName(rng, 3);
  const path =
    k <= 1 ? `usr/lib/${c.lib}/lib${name}.so.${rng.int(1, 20)}` : k === 2 ? `usr/share/${name}/${name}.db` : `usr/lib/${c.lib}/${name}/${name}-data.pack`;
  const kind: ContentKind = k <= 1 ? 'elf' : k === 2 ? 'data' : 'random';
  return b.file(path, body(c, kind, size, `large-${i}-${path}`), { mtime: c.o.mtime - rng.int(10, 400) * DAY, group: `large-${name}` });
}

/**
 * The base layer of an image generated with `opts`: a Debian-like rootfs taking about 60% of
 * `targetBytes`, in tar walk order. Pure: the same options give the same tree.
 */
export function generateBaseTree(opts: ImageGenOptions = {}): TreeEntry[] {
  const o = resolveGenOptions(opts);
  const budget = layerBudgets(o).base;
  const arch = o.platform.architecture;
  const b = new TreeBuilder({ mtime: o.mtime - 30 * DAY, uname: 'root', gname: 'root' });
  const c: BaseCtx = { o, rng: Rng.derive(o.seed, 'base-tree'), b, names: new NamePool(), arch, lib: multiarchTriplet(arch) };
  addSkeleton(c);
  const packages = Math.max(3, Math.round(140 * o.fileScale));
  for (let i = 0; i < packages; i++) addPackage(c, i);
  const pythons = Math.max(1, Math.round(18 * o.fileScale));
  for (let i = 0; i < pythons; i++) addPythonPackage(c);
  const status = [...new Set(b.list().map((e) => e.group).filter((g): g is string => g !== undefined && !g.startsWith('large-')))]
    .map((p) => `Package: ${p}\nStatus: install ok installed\nArchitecture: ${arch}\nVersion: 1.${p.length}-1\nDescription: ${sentence(c.rng)}\n`)
    .join('\n');
  b.file('var/lib/dpkg/status', literal(status), { mtime: o.mtime });
  shrinkBodies(b, Math.round(budget * 0.75));
  fillToBudget(b, budget, c.rng, (size, i) => addLarge(c, size, i));
  return b.finish();
}
