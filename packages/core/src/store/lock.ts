import { link, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, toFerryError } from '../errors.js';
import { tempPathFor } from '../util/fs.js';

/** Lock files this process holds (a pid alone cannot tell two operations of one process apart). */
const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Creates the lock file with the pid already in it: the pid goes into a private temp file that is
 * then hard-linked to `path` (atomic, EEXIST when the lock is taken). Opening `path` with 'wx' and
 * then writing left a moment where a rival read an empty lock file and took it for a stale one.
 */
async function createWithPid(path: string): Promise<void> {
  const tmp = tempPathFor(path);
  await writeFile(tmp, String(process.pid), { flag: 'wx' });
  try {
    await link(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * Takes the store's writer lock (a file holding the owner's pid). A lock left by a dead process
 * (kill -9, power loss) is taken over; a live owner gives FERRY_ERR_STORE_LOCKED.
 */
export async function acquireLock(root: string): Promise<() => Promise<void>> {
  const path = join(root, 'lock');
  if (held.has(path)) throw new FerryError('FERRY_ERR_STORE_LOCKED', `store ${root} is in use by another operation of this process`);
  // reserve it in this process before the first await: a lock file with our own pid that we do not
  // hold is stale (a previous process with the same pid, as pid 1 in a container), so a second
  // operation of this process must never get as far as reading the file
  held.add(path);
  try {
    await takeFile(root, path);
  } catch (err) {
    held.delete(path);
    throw err;
  }
  return async () => {
    held.delete(path);
    await rm(path, { force: true });
  };
}

async function takeFile(root: string, path: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await createWithPid(path);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw toFerryError(err, 'taking the store lock');
      const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
        throw new FerryError('FERRY_ERR_STORE_LOCKED', `store ${root} is in use by process ${owner}`, { details: { pid: owner } });
      }
      await rm(path, { force: true }); // stale: its owner is gone
    }
  }
  throw new FerryError('FERRY_ERR_STORE_LOCKED', `could not take the lock of store ${root}`);
}
