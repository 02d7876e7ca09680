// apt access for the dataset: the machine's own configuration (bookworm, as installed) or a
// private one for another suite (trixie) that never touches the machine's apt state. A private
// configuration has its own sources list, empty sources.list.d and preferences.d, its own lists,
// cache and an empty dpkg status, all under <cache>/apt/<name>; every apt-get / apt-cache call
// passes the same `-o` options, so `update`, `madison` and `download` all see only that suite.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cacheDir, run } from '../lib/util.mjs';

const exec = promisify(execFile);

/** The machine's apt, as configured (bookworm and its security/updates suites here). */
export const SYSTEM_APT = Object.freeze({ name: 'system', args: [] });

/**
 * A private apt configuration named `name` whose only sources are `sourceLines` (one-line
 * `deb ...` entries); runs `apt-get update` for it (about 10 MB for trixie main). Returns
 * `{ name, args }`, `args` being the `-o` options to give every apt command.
 */
export async function privateApt(name, sourceLines) {
  const dir = join(cacheDir(), 'apt', name);
  const etc = join(dir, 'etc');
  const state = join(dir, 'state');
  const cache = join(dir, 'cache');
  for (const d of [join(etc, 'sources.list.d'), join(etc, 'preferences.d'), join(state, 'lists', 'partial'), join(cache, 'archives', 'partial')]) await mkdir(d, { recursive: true });
  await writeFile(join(etc, 'sources.list'), `${sourceLines.join('\n')}\n`);
  await writeFile(join(state, 'status'), '');
  const args = [
    ['Dir::Etc::SourceList', join(etc, 'sources.list')],
    ['Dir::Etc::SourceParts', join(etc, 'sources.list.d')],
    ['Dir::Etc::Preferences', join(etc, 'preferences')],
    ['Dir::Etc::PreferencesParts', join(etc, 'preferences.d')],
    ['Dir::State', state],
    // absolute by default (/var/lib/dpkg/status): an empty one, so the machine's installed
    // packages neither show up as offers nor count as already downloaded
    ['Dir::State::status', join(state, 'status')],
    ['Dir::Cache', cache],
  ].flatMap(([k, v]) => ['-o', `${k}=${v}`]);
  process.stderr.write(`dataset: apt-get update (private ${name} configuration in ${dir})...\n`);
  await run('apt-get', [...args, '-q', 'update']);
  return { name, args };
}

/**
 * Every version `apt` offers for each of `pkgs`, with the suite it comes from (`bookworm/main`,
 * `trixie-security/main`, ...): a map name -> [{version, suite}], empty for a name apt does not
 * know. One apt-cache call for all names (each call loads every package list).
 */
export async function madison(apt, pkgs) {
  const out = new Map(pkgs.map((p) => [p, []]));
  const { stdout } = await exec('apt-cache', [...apt.args, 'madison', ...pkgs], { maxBuffer: 64 * 1024 * 1024 });
  for (const line of stdout.split('\n')) {
    const [name, version, source] = line.split('|').map((s) => s.trim());
    if (!out.has(name) || !version || !source || !source.endsWith('Packages')) continue;
    const suite = source.split(/\s+/)[1] ?? '';
    out.get(name).push({ version, suite });
  }
  return out;
}

/** `apt-get download` of `specs` (PKG=VER) into `dir`. */
export async function aptDownload(apt, specs, dir) {
  await run('apt-get', [...apt.args, 'download', '-q', ...specs], { cwd: dir });
}

/** `a` < `b` in dpkg version order. */
export async function versionLess(a, b) {
  try {
    await exec('dpkg', ['--compare-versions', a, 'lt', b]);
    return true;
  } catch {
    return false;
  }
}

/** The highest version among `offers` ([{version, suite}]). */
export async function newest(offers) {
  let best = offers[0];
  for (const o of offers.slice(1)) if (await versionLess(best.version, o.version)) best = o;
  return best;
}
