/**
 * The in-memory description of a layer's file system: entries with metadata and body specs, never
 * body bytes. A layer of a million files is a few hundred MB of description at most; a realistic
 * gigabyte image is a few tens of thousands of entries.
 */
import { bodySize, type BodySpec } from './body.js';

/** Metadata every entry has. Paths are relative (`usr/bin/ls`), without leading or trailing slash. */
export interface EntryMeta {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  /** Modification time in whole seconds since the epoch. */
  mtime: number;
  uname?: string;
  gname?: string;
  /** The package or component that owns the entry (used to add or remove whole packages). */
  group?: string;
}

/** A directory. */
export interface DirEntry extends EntryMeta {
  type: 'dir';
}

/** A regular file; its bytes come from `body`. */
export interface FileEntry extends EntryMeta {
  type: 'file';
  body: BodySpec;
}

/** A symbolic link to `target` (absolute or relative, as written). */
export interface SymlinkEntry extends EntryMeta {
  type: 'symlink';
  target: string;
}

/** A hard link to an earlier file of the same layer; `target` is that file's path. */
export interface HardlinkEntry extends EntryMeta {
  type: 'hardlink';
  target: string;
}

/** One entry of a layer tar. */
export type TreeEntry = DirEntry | FileEntry | SymlinkEntry | HardlinkEntry;

/** Owner and time defaults for entries a builder creates. */
export interface EntryDefaults {
  mtime: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
}

/** Per-entry overrides accepted by {@link TreeBuilder} methods. */
export type EntryOverrides = Partial<Pick<EntryMeta, 'mode' | 'uid' | 'gid' | 'mtime' | 'uname' | 'gname' | 'group'>>;

/**
 * Orders paths the way a directory walk with sorted names does (Docker, BuildKit and tar --sort),
 * so `usr/bin/...` comes before `usr/bin-x`.
 */
export function comparePaths(a: string, b: string): number {
  const x = walkKey(a);
  const y = walkKey(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** A string whose plain order is walk order: '/' becomes NUL, which sorts before any name byte. */
function walkKey(path: string): string {
  return path.replaceAll('/', '\0');
}

/** Parent directory of a relative path ('' at the top). */
export function parentPath(path: string): string {
  const i = path.lastIndexOf('/');
  return i === -1 ? '' : path.slice(0, i);
}

/** Collects entries for one layer, creates missing parent directories and sorts on finish. */
export class TreeBuilder {
  private readonly entries = new Map<string, TreeEntry>();
  private readonly groups = new Map<string, TreeEntry[]>();

  constructor(private readonly defaults: EntryDefaults) {}

  private meta(path: string, mode: number, o: EntryOverrides): EntryMeta {
    if (path === '' || path.startsWith('/') || path.endsWith('/')) throw new Error(`bad entry path: ${JSON.stringify(path)}`);
    const d = this.defaults;
    const meta: EntryMeta = { path, mode: o.mode ?? mode, uid: o.uid ?? d.uid ?? 0, gid: o.gid ?? d.gid ?? 0, mtime: o.mtime ?? d.mtime };
    const uname = o.uname ?? d.uname;
    const gname = o.gname ?? d.gname;
    if (uname !== undefined) meta.uname = uname;
    if (gname !== undefined) meta.gname = gname;
    if (o.group !== undefined) meta.group = o.group;
    return meta;
  }

  /** True when `path` already has an entry. */
  has(path: string): boolean {
    return this.entries.has(path);
  }

  /** The entry at `path`, if any. */
  get(path: string): TreeEntry | undefined {
    return this.entries.get(path);
  }

  /** Adds (or replaces) an entry as given. */
  add(entry: TreeEntry): void {
    this.entries.set(entry.path, entry);
    if (entry.group === undefined) return;
    const list = this.groups.get(entry.group);
    if (list) list.push(entry);
    else this.groups.set(entry.group, [entry]);
  }

  /** Adds a regular file (mode 0644 unless overridden). */
  file(path: string, body: BodySpec, o: EntryOverrides = {}): FileEntry {
    const e: FileEntry = { ...this.meta(path, 0o644, o), type: 'file', body };
    this.add(e);
    return e;
  }

  /** Adds a directory (mode 0755 unless overridden). */
  dir(path: string, o: EntryOverrides = {}): DirEntry {
    const e: DirEntry = { ...this.meta(path, 0o755, o), type: 'dir' };
    this.add(e);
    return e;
  }

  /** Adds a symbolic link. */
  symlink(path: string, target: string, o: EntryOverrides = {}): SymlinkEntry {
    const e: SymlinkEntry = { ...this.meta(path, 0o777, o), type: 'symlink', target };
    this.add(e);
    return e;
  }

  /** Adds a hard link to the file at `target` (which must sort before `path`). */
  hardlink(path: string, target: string, o: EntryOverrides = {}): HardlinkEntry {
    const t = this.entries.get(target);
    const e: HardlinkEntry = { ...this.meta(path, t?.mode ?? 0o755, o), type: 'hardlink', target };
    this.add(e);
    return e;
  }

  /** Current entries whose `group` is `group`. */
  group(group: string): TreeEntry[] {
    return (this.groups.get(group) ?? []).filter((e) => this.entries.get(e.path) === e);
  }

  /** All entries so far (unsorted). */
  list(): TreeEntry[] {
    return [...this.entries.values()];
  }

  /** Entries in walk order with every missing parent directory added. */
  finish(): TreeEntry[] {
    return finishTree(this.list(), this.defaults);
  }
}

/**
 * Adds missing parent directories (with the given defaults) and sorts in walk order. Hard links
 * must point at a file that sorts earlier, as in a real tar.
 */
export function finishTree(entries: readonly TreeEntry[], defaults: EntryDefaults): TreeEntry[] {
  const byPath = new Map(entries.map((e) => [e.path, e]));
  for (const e of entries) {
    for (let p = parentPath(e.path); p !== '' && !byPath.has(p); p = parentPath(p)) {
      byPath.set(p, { path: p, type: 'dir', mode: 0o755, uid: defaults.uid ?? 0, gid: defaults.gid ?? 0, mtime: defaults.mtime });
    }
  }
  const keyed = [...byPath.values()].map((e) => ({ key: walkKey(e.path), e }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const sorted = keyed.map((k) => k.e);
  const seen = new Set<string>();
  for (const e of sorted) {
    if (e.type === 'hardlink' && !seen.has(e.target)) throw new Error(`hard link ${e.path} points at ${e.target}, which is not earlier in the layer`);
    seen.add(e.path);
  }
  return sorted;
}

/** The name tar-stream writes for an entry: directories carry a trailing slash, as in docker's tars. */
export function tarName(e: TreeEntry): string {
  return e.type === 'dir' ? `${e.path}/` : e.path;
}

function needsPax(name: string, linkname: string | undefined): boolean {
  // Mirrors tar-stream's ustar encoder: non-ASCII, or no split into prefix (155) + name (100).
  if (Buffer.byteLength(name) !== name.length) return true;
  if (linkname !== undefined && Buffer.byteLength(linkname) > 100) return true;
  if (name.length <= 100) return false;
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
    if (i <= 155 && name.length - i - 1 <= 100) return false;
  }
  return true;
}

function paxBytes(name: string, linkname: string | undefined): number {
  const record = (text: string): number => {
    const len = Buffer.byteLength(text) + 1;
    const digits = String(len + String(len).length).length;
    return len + digits;
  };
  return record(` path=${name}\n`) + (linkname ? record(` linkpath=${linkname}\n`) : 0);
}

/** Bytes one entry takes in a tar written by tar-stream (headers, PAX extension, body, padding). */
export function tarEntrySize(e: TreeEntry): number {
  const name = tarName(e);
  const link = e.type === 'symlink' || e.type === 'hardlink' ? e.target : undefined;
  let n = 512;
  if (needsPax(name, link)) n += 512 + Math.ceil(paxBytes(name, link) / 512) * 512;
  if (e.type === 'file') n += Math.ceil(bodySize(e.body) / 512) * 512;
  return n;
}

/** Size of the tar stream of a layer, end-of-archive blocks included. */
export function tarSize(entries: readonly TreeEntry[]): number {
  let n = 1024;
  for (const e of entries) n += tarEntrySize(e);
  return n;
}
