/**
 * The store's writer lock (docs/format.md section 1.1). One file, `lock`, created exclusively
 * (a temp file holding the owner's identity, hard-linked into place: EEXIST when taken) and
 * naming its owner by pid, boot id and process start time, plus a random nonce that makes every
 * lock instance unique. An owner is alive only if it runs in this boot with that pid and that
 * start time, so neither a reboot nor a reused pid keeps a store locked.
 *
 * Taking over a stale lock is verified so that only one contender can win: the contender first
 * creates `lock.takeover-<instance>.<k>` exclusively (k = 0, or the next k when the creator of a
 * marker died mid-takeover), re-reads the lock, and only while it still holds that same instance
 * replaces it by an atomic rename. A marker is never removed while the lock may still hold its
 * instance: the winner removes markers only after its rename, and an instance never comes back.
 * No native addon is needed (Node has no flock; the packages that add one compile at install).
 */
import { link, readFile, rename, rm, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FerryError, toFerryError } from '../errors.js';
import { readRegularFile } from '../util/bounded-read.js';
import { sha256 } from '../util/digest.js';
import { tempPathFor } from '../util/fs.js';

/** Who holds a lock. `boot` and `start` are absent where /proc is not available. */
interface Owner {
  pid: number;
  boot?: string | undefined;
  start?: string | undefined;
}

/** A lock (or marker) file as read: its instance id (hash of its bytes) and owner, if readable. */
interface LockFile {
  id: string;
  content: string;
  owner: Owner | undefined;
}

/** Lock files this process holds (two operations of one process must not share a lock). */
const held = new Set<string>();
/** Markers of abandoned takeovers tried before giving up (each needs a contender to die). */
const MAX_MARKERS = 64;
const MARKER_PREFIX = 'lock.takeover-';

/** This boot's id (Linux), read once. */
let bootId: Promise<string | undefined> | undefined;

function currentBoot(): Promise<string | undefined> {
  bootId ??= readFile('/proc/sys/kernel/random/boot_id', 'utf8').then((s) => s.trim(), () => undefined);
  return bootId;
}

/** Field 22 of /proc/PID/stat: the process start time in clock ticks since boot. */
async function startTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) is in parentheses and may hold spaces or parentheses itself
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

let self: Promise<Owner> | undefined;

function me(): Promise<Owner> {
  self ??= (async () => ({ pid: process.pid, boot: await currentBoot(), start: await startTime(process.pid) }))();
  return self;
}

function parseOwner(content: string): Owner | undefined {
  // a lock written by an earlier ferry holds only the pid
  if (/^\d+\s*$/.test(content)) return { pid: Number(content) };
  try {
    const o = JSON.parse(content) as Record<string, unknown>;
    if (!Number.isSafeInteger(o.pid) || (o.pid as number) <= 0) return undefined;
    return { pid: o.pid as number, boot: typeof o.boot === 'string' ? o.boot : undefined, start: typeof o.start === 'string' ? o.start : undefined };
  } catch {
    return undefined;
  }
}

async function readLockFile(path: string): Promise<LockFile | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(path, { what: 'store lock', notRegular: 'FERRY_ERR_STORE_INVALID', tooBig: 'FERRY_ERR_STORE_INVALID', maxBytes: 4096 });
  } catch (err) {
    if ((err as FerryError).details?.errno === 'ENOENT') return undefined;
    throw err;
  }
  const content = bytes.toString('utf8');
  return { id: instanceId(content), content, owner: parseOwner(content) };
}

/** A lock instance's id: every lock holds a random nonce, so its bytes name it uniquely. */
function instanceId(content: string): string {
  return sha256(content).slice(7, 39);
}

/** True when the lock's owner still runs. Unreadable content has no owner: stale. */
async function alive(o: Owner | undefined): Promise<boolean> {
  if (!o) return false;
  const mine = await me();
  if (mine.boot !== undefined && o.boot !== undefined) {
    if (o.boot !== mine.boot) return false; // written before a reboot
    if (o.start !== undefined && mine.start !== undefined) return (await startTime(o.pid)) === o.start;
  }
  // no /proc, or an old pid-only lock: the pid alone decides; our own pid then names an earlier
  // process (pid 1 in a container), since this process's own operations are in `held`
  if (o.pid === process.pid) return false;
  try {
    process.kill(o.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lockedBy(root: string, o: Owner | undefined, doing = 'is in use by'): FerryError {
  return new FerryError('FERRY_ERR_STORE_LOCKED', `store ${root} ${doing} process ${o?.pid ?? '?'}`, { details: { pid: o?.pid } });
}

const isErrno = (err: unknown, code: string): boolean => (err as NodeJS.ErrnoException).code === code;

/** Removes the markers of lock instances other than `keep` (they can never be used again). */
async function removeMarkers(root: string, keep: string): Promise<void> {
  for (const f of await readdir(root)) {
    if (f.startsWith(MARKER_PREFIX) && !f.startsWith(`${MARKER_PREFIX}${keep}.`)) await rm(join(root, f), { force: true });
  }
}

/**
 * Tries to replace the stale lock `stale` by our own (`tmp`, which holds our identity). True when
 * we hold the lock; false when the lock changed meanwhile (the caller starts over).
 */
async function takeOver(root: string, path: string, stale: LockFile, tmp: string, ownId: string): Promise<boolean> {
  for (let k = 0; k < MAX_MARKERS; k++) {
    const marker = join(root, `${MARKER_PREFIX}${stale.id}.${k}`);
    try {
      await link(tmp, marker);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      const other = await readLockFile(marker);
      if (other === undefined) return false; // markers removed: someone took the lock over
      if (await alive(other.owner)) throw lockedBy(root, other.owner, 'is being taken over by');
      continue; // its creator died mid-takeover: it can never rename, try the next marker
    }
    // we hold marker k of this instance: no other live contender can reach the rename below
    let now: LockFile | undefined;
    try {
      now = await readLockFile(path);
    } catch (err) {
      await rm(marker, { force: true }); // we will not rename: let another contender try
      throw err;
    }
    if (now?.id !== stale.id) {
      await rm(marker, { force: true }); // the lock no longer holds this instance, and never will again
      return false;
    }
    await rename(tmp, path);
    await removeMarkers(root, ownId);
    return true;
  }
  throw new FerryError('FERRY_ERR_STORE_LOCKED', `store ${root}: ${MAX_MARKERS} takeovers of its stale lock were abandoned; remove ${path} and ${MARKER_PREFIX}* by hand`);
}

/** Creates or takes over the lock file; throws FERRY_ERR_STORE_LOCKED when a live owner holds it. */
async function takeFile(root: string, path: string, content: string): Promise<void> {
  const tmp = tempPathFor(path);
  await writeFile(tmp, content, { flag: 'wx' });
  try {
    for (let attempt = 0; attempt < 8; attempt++) {
      try {
        await link(tmp, path);
        return;
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
      }
      const current = await readLockFile(path);
      if (current === undefined) continue; // released meanwhile
      if (await alive(current.owner)) throw lockedBy(root, current.owner);
      if (await takeOver(root, path, current, tmp, instanceId(content))) return;
    }
    throw new FerryError('FERRY_ERR_STORE_LOCKED', `could not take the lock of store ${root} (it keeps changing hands)`);
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * Takes the store's writer lock; returns the function that releases it. A lock whose owner is gone
 * (kill -9, power loss, reboot, a reused pid) is taken over; a live owner gives
 * FERRY_ERR_STORE_LOCKED. Cheap: a few small file operations, so it can be taken and released
 * around every write.
 */
export async function acquireLock(root: string): Promise<() => Promise<void>> {
  const path = join(root, 'lock');
  if (held.has(path)) throw new FerryError('FERRY_ERR_STORE_LOCKED', `store ${root} is in use by another operation of this process`);
  // reserved before the first await, so a second operation of this process never reads the file
  held.add(path);
  let content: string;
  try {
    content = JSON.stringify({ ...(await me()), nonce: randomBytes(16).toString('hex') }) + '\n';
    await takeFile(root, path, content);
  } catch (err) {
    held.delete(path);
    throw toFerryError(err, 'taking the store lock');
  }
  return async () => {
    try {
      // only our own lock is removed: nobody can replace it while we run
      if ((await readLockFile(path))?.content === content) await rm(path, { force: true });
    } finally {
      held.delete(path);
    }
  };
}
