/**
 * The store marker `ferry-store.json` (docs/format.md section 1): read when a store is opened,
 * written last when one is created, so a creation cut short is finished by the next `create`.
 */
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, toFerryError } from '../errors.js';
import { readRegularFile } from '../util/bounded-read.js';
import { exists, writeFileAtomic } from '../util/fs.js';

const MARKER = { format: 'ferry-store', version: 1 };
/** Directories a creation makes before it writes the marker. */
const STORE_DIRS = ['contents', 'skeletons', 'blobs', 'refs'];

/**
 * The marker, or undefined when there is none. A marker that is not a small regular JSON file is
 * FERRY_ERR_STORE_INVALID; one that cannot be read (EACCES, EIO) is FERRY_ERR_IO.
 */
async function readMarker(root: string, path: string): Promise<unknown> {
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(path, { what: 'store marker', notRegular: 'FERRY_ERR_STORE_INVALID', tooBig: 'FERRY_ERR_STORE_INVALID', maxBytes: 4096 });
  } catch (err) {
    const errno = (err as FerryError).details?.errno;
    if (errno === 'ENOENT') return undefined;
    if (errno === 'ENOTDIR') throw new FerryError('FERRY_ERR_STORE_INVALID', `${root} is not a ferry store (not a directory)`, { cause: err });
    throw err;
  }
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new FerryError('FERRY_ERR_STORE_INVALID', `${path} is not valid JSON`, { cause: err });
  }
}

/** Creates the store's directories, then its marker; refuses a directory holding anything else. */
async function create(root: string, markerPath: string): Promise<void> {
  try {
    await mkdir(root, { recursive: true });
    // the store's own directories without a marker: a creation that was cut short, finished here
    const leftovers = (await readdir(root)).filter((f) => !f.startsWith('.') && !STORE_DIRS.includes(f));
    if (leftovers.length > 0) throw new FerryError('FERRY_ERR_STORE_INVALID', `${root} is not empty and not a ferry store`);
    for (const d of ['skeletons', 'blobs', 'refs']) await mkdir(join(root, d), { recursive: true });
    // the 256 fan-out directories exist from the start, so content writes never mkdir
    for (let i = 0; i < 256; i++) await mkdir(join(root, 'contents', i.toString(16).padStart(2, '0')), { recursive: true });
    await writeFileAtomic(markerPath, JSON.stringify(MARKER) + '\n');
  } catch (err) {
    throw toFerryError(err, `creating store ${root}`);
  }
}

/**
 * Checks that `root` is a ferry store of a known version; with `createIfMissing`, a missing or
 * empty directory (or one whose creation was cut short) becomes one. FERRY_ERR_STORE_INVALID
 * otherwise.
 */
export async function checkMarker(root: string, createIfMissing: boolean): Promise<void> {
  const markerPath = join(root, 'ferry-store.json');
  let marker = await readMarker(root, markerPath);
  if (marker === undefined) {
    if (!createIfMissing) {
      if (!(await exists(root))) throw new FerryError('FERRY_ERR_STORE_INVALID', `there is no ferry store at ${root} (no such directory)`, { details: { missing: true } });
      throw new FerryError('FERRY_ERR_STORE_INVALID', `${root} is not a ferry store (no ferry-store.json)`);
    }
    await create(root, markerPath);
    marker = MARKER;
  }
  const m = marker as Record<string, unknown>;
  if (m?.format !== MARKER.format || m.version !== MARKER.version) throw new FerryError('FERRY_ERR_STORE_INVALID', `${root} has an unknown store format ${JSON.stringify(m)}`);
}
