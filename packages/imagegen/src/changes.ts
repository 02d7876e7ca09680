/**
 * Release edits (how a file changes between versions) and the file-level comparison of two images
 * after their layers are flattened with OCI whiteout semantics.
 */
import { bodyKey, bodySize, literal, type BodyEdit, type BodySpec } from './body.js';
import { hashSeed, type Rng } from './rng.js';
import { parentPath, type FileEntry, type TreeEntry } from './tree.js';

/** Prefix of an OCI whiteout file (image-spec layer.md, "Whiteouts"). */
export const WHITEOUT_PREFIX = '.wh.';

/** Name of an OCI opaque-directory marker. */
export const OPAQUE_WHITEOUT = '.wh..wh..opq';

/**
 * Sorted, non-overlapping edits over a body of `size` bytes: `ops` operations each touching at
 * most `maxLen` bytes, none before `from` (ELF bodies keep their header).
 */
function makeEdits(rng: Rng, size: number, ops: number, maxLen: number, from: number, allowResize: boolean): BodyEdit[] {
  if (size <= from + 16) return [{ op: 'replace', offset: Math.max(0, size - Math.min(size, 8)), length: Math.min(size, 8), seed: rng.next() }];
  const offsets = new Set<number>();
  for (let i = 0; i < ops; i++) offsets.add(rng.int(from, size - 1));
  const sorted = [...offsets].sort((a, b) => a - b);
  const edits: BodyEdit[] = [];
  sorted.forEach((offset, i) => {
    const room = (sorted[i + 1] ?? size) - offset;
    const length = Math.max(1, Math.min(room, rng.int(1, maxLen)));
    const k = allowResize ? rng.int(0, 9) : 0;
    const op = k === 8 ? 'insert' : k === 9 ? 'delete' : 'replace';
    edits.push({ op, offset, length: op === 'insert' ? rng.int(1, maxLen) : length, seed: rng.next() });
  });
  return edits;
}

/**
 * A release's change to one body. Generated bodies get byte edits: a few bytes (a version string),
 * a few hundred bytes, or a few percent in scattered places, with occasional inserts and deletes;
 * ELF headers are kept. Literal bodies get a changed line.
 */
export function editBody(body: BodySpec, rng: Rng): BodySpec {
  if (body.kind === 'literal') {
    // Bump the first version number (package.json, dpkg status); otherwise append a line.
    const text = Buffer.from(body.data).toString('utf8');
    const bumped = text.replace(/(\d+)\.(\d+)\.(\d+)/, (_m, a: string, b: string, c: string) => `${a}.${b}.${Number(c) + 1}`);
    return literal(bumped !== text ? bumped : `${text}# rebuilt ${rng.hex(8)}\n`);
  }
  const size = bodySize(body);
  const from = body.kind === 'elf' ? Math.min(512, size >> 1) : 0;
  const tier = rng.int(0, 2);
  const budget = tier === 0 ? 8 : tier === 1 ? Math.max(16, Math.round(size * 0.003)) : Math.max(32, Math.round(size * rng.int(1, 3) * 0.01));
  const ops = tier === 0 ? 1 : rng.int(2, 8);
  const edits = makeEdits(rng, body.size, ops, Math.max(1, Math.ceil(budget / ops)), from, tier !== 0);
  return { ...body, edits: [...(body.edits ?? []), ...edits].sort((a, b) => a.offset - b.offset) };
}

/** A completely new body of the same kind and similar size (a regenerated asset). */
export function replaceBody(body: BodySpec, rng: Rng, salt: string): BodySpec {
  if (body.kind === 'literal') return literal(`${Buffer.from(body.data).toString('utf8')}${salt}\n`);
  return { ...body, edits: [], seed: hashSeed(body.seed, salt), size: Math.max(1, Math.round(body.size * (0.8 + rng.float() * 0.4))) };
}

/** `e` with an edited body and a new mtime. */
export function editFile(e: FileEntry, rng: Rng, mtime: number): FileEntry {
  return { ...e, body: editBody(e.body, rng), mtime };
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function removeTree(state: Map<string, TreeEntry>, path: string, keepRoot: boolean): void {
  if (!keepRoot) state.delete(path);
  const prefix = `${path}/`;
  for (const key of [...state.keys()]) if (key.startsWith(prefix)) state.delete(key);
}

/**
 * The file system an image's layers describe: each layer's whiteouts (`.wh.<name>`) and opaque
 * markers (`.wh..wh..opq`) remove entries of the layers below it, then its own entries are laid
 * on top (image-spec layer.md, "Whiteouts").
 */
export function flattenLayers(layers: ReadonlyArray<readonly TreeEntry[]>): Map<string, TreeEntry> {
  const state = new Map<string, TreeEntry>();
  for (const layer of layers) {
    for (const e of layer) {
      const name = basename(e.path);
      if (name === OPAQUE_WHITEOUT) removeTree(state, parentPath(e.path), true);
      else if (name.startsWith(WHITEOUT_PREFIX)) {
        const dir = parentPath(e.path);
        removeTree(state, `${dir === '' ? '' : dir + '/'}${name.slice(WHITEOUT_PREFIX.length)}`, false);
      }
    }
    for (const e of layer) if (!basename(e.path).startsWith(WHITEOUT_PREFIX)) state.set(e.path, e);
  }
  return state;
}

/** Regular files that differ between two flattened images. */
export interface FileChanges {
  /** In both, with different bytes. */
  edited: string[];
  /** Only in the newer image. */
  added: string[];
  /** Only in the older image. */
  removed: string[];
  /** In both with identical bytes. */
  unchanged: number;
}

/** Compares the regular files of two flattened images by body identity. */
export function diffFiles(before: ReadonlyMap<string, TreeEntry>, after: ReadonlyMap<string, TreeEntry>): FileChanges {
  const out: FileChanges = { edited: [], added: [], removed: [], unchanged: 0 };
  for (const [path, a] of before) {
    if (a.type !== 'file') continue;
    const b = after.get(path);
    if (b === undefined || b.type !== 'file') out.removed.push(path);
    else if (bodyKey(a.body) !== bodyKey(b.body)) out.edited.push(path);
    else out.unchanged++;
  }
  for (const [path, b] of after) if (b.type === 'file' && before.get(path)?.type !== 'file') out.added.push(path);
  return out;
}
