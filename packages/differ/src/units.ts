/**
 * Units: the package or directory a file belongs to, named so that the same unit in another
 * version or place gets the same key (DESIGN.md section 5, "Matching": the same package or
 * directory, version numbers normalised). A target file's reference set is drawn first from its
 * unit's baseline files, because real updates move content between the files of one package.
 *
 * - npm: `.../node_modules/<name>/...` or `.../node_modules/@scope/<name>/...` (innermost), keyed by
 *   the package name alone, so a package hoisted to another level still matches;
 * - Debian: the package whose `var/lib/dpkg/info/<pkg>.list` names the file, version numbers
 *   normalised (`libpython3.11-stdlib` ~ `libpython3.13-stdlib`);
 * - otherwise the file's directory with version numbers normalised.
 */
import { normalizePath } from '@ferry/core';

/** Version numbers in paths (`foo-1.2.3`, `python3.11`, `libssl.so.3`) collapse to `#`. */
export function versionless(path: string): string {
  return path.replace(/\d+(?:[._~+-]\d+)*/g, '#');
}

/** The last path component. */
export function basename(path: string): string {
  const i = path.lastIndexOf('/');
  return i === -1 ? path : path.slice(i + 1);
}

const NODE_MODULES = '/node_modules/';

/** The npm package name a path lies in (innermost node_modules), or undefined. */
export function npmPackage(path: string): string | undefined {
  const p = `/${path}`;
  const at = p.lastIndexOf(NODE_MODULES);
  if (at === -1) return undefined;
  const rest = p.slice(at + NODE_MODULES.length).split('/');
  if (rest.length < 2) return undefined; // the package directory itself, or a file directly in node_modules
  const name = rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  return rest[0]!.startsWith('@') && rest.length < 3 ? undefined : name;
}

/** Matches a dpkg file list and captures the package name (without `:arch`). */
const DPKG_LIST = /(?:^|\/)var\/lib\/dpkg\/info\/([^/:]+)(?::[^/]+)?\.list$/;

/** The Debian package whose file list this path is, or undefined. */
export function dpkgListPackage(path: string): string | undefined {
  return DPKG_LIST.exec(normalizePath(path))?.[1];
}

/** Paths listed in a dpkg `.list` file body (one absolute path per line), without the leading `/`. */
export function dpkgListPaths(body: Uint8Array): string[] {
  return Buffer.from(body)
    .toString('utf8')
    .split('\n')
    .map((l) => normalizePath(l.replace(/^\/+/, '')))
    .filter((p) => p.length > 0 && p !== '.');
}

/** Path -> Debian package, from every `.list` file seen; paths no list names are asked of `fallback`. */
export class DpkgOwners {
  private readonly owner = new Map<string, string>();

  /** `fallback`: owners asked about paths no list of this one names (a target's lists first, then the baseline's). */
  constructor(private readonly fallback?: DpkgOwners) {}

  /** Records the paths of one package's list. Later lists do not steal paths already owned. */
  add(pkg: string, paths: string[]): void {
    for (const p of paths) if (!this.owner.has(p)) this.owner.set(p, pkg);
  }

  /** The package owning a path, if any list names it. */
  of(path: string): string | undefined {
    const p = normalizePath(path);
    return this.owner.get(p) ?? this.fallback?.of(p);
  }

  get size(): number {
    return this.owner.size;
  }
}

/** The unit key of a path: `npm:<name>`, `deb:<package>` or `dir:<directory>`, version numbers normalised. */
export function unitOf(path: string, owners?: DpkgOwners): string {
  const p = normalizePath(path);
  const npm = npmPackage(p);
  if (npm !== undefined) return `npm:${npm}`;
  const pkg = owners?.of(p);
  if (pkg !== undefined) return `deb:${versionless(pkg)}`;
  const i = p.lastIndexOf('/');
  return `dir:${versionless(i === -1 ? '' : p.slice(0, i))}`;
}
