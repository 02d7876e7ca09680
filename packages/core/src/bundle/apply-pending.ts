/**
 * Pending-apply records (docs/format.md section 1): what gc must keep for an apply that has
 * started rebuilding layers and not committed yet (DESIGN.md section 6, "gc keeps the layers of an
 * uncommitted apply"). One directory per bundle, `pending/<bundle hex>/`, holds:
 *
 *   apply.json                      the record: bundle, ref, channel, release, expiry, baseline
 *                                   layers and target layers (all of them roots while it lives)
 *   progress-<layer hex 16>-<pid>-<random>
 *                                   32-byte digests of the contents an unfinished layer has
 *                                   written, appended each time its rebuild releases the lock to
 *                                   wait for the network (roots too: resume progress)
 *   .tmp-<pid>-<random>             working files of a rebuild in progress (the staged skeleton,
 *                                   a large body being streamed): kept while process <pid> lives
 *
 * A record lives until commitApply or abandonApply removes its directory, or until it is dead:
 * its header expired, or its channel has since installed a release at least as high (a crash
 * between the channel update and the removal leaves such a record). gc removes dead records.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, toFerryError } from '../errors.js';
import { bytesToDigest, digestHex, digestToBytes, isDigest, type Digest } from '../util/digest.js';
import { fsyncDir, writeFileAtomic } from '../util/fs.js';
import type { ChannelState, Store } from '../store/store.js';

/** The record of an uncommitted apply. */
export interface PendingApply {
  bundle: Digest;
  ref: string;
  channel: string;
  release: number;
  /** Unix seconds: the header's expiry, after which the record is dead. */
  expires: number;
  /** When the first layer rebuild started (ISO time). */
  started: string;
  /** Baseline layers the payload reads (roots, with their contents). */
  baseline: Digest[];
  /** Every target layer (roots once present, with their contents). */
  layers: Digest[];
}

const RECORD = 'apply.json';
const PROGRESS_RE = /^progress-[0-9a-f]{16}-\d+-[0-9a-f]+$/;
const WORK_RE = /^\.tmp-(\d+)-/;

/** The pending directory of the store. */
export function pendingRoot(store: Store): string {
  return join(store.root, 'pending');
}

/** The directory of one bundle's pending apply. */
export function pendingDir(store: Store, bundle: Digest): string {
  return join(pendingRoot(store), digestHex(bundle));
}

function bad(what: string): FerryError {
  return new FerryError('FERRY_ERR_OBJECT_CORRUPT', `pending-apply record ${what} is malformed`);
}

function parseRecord(text: string, what: string): PendingApply {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw bad(what);
  }
  const digests = (x: unknown): Digest[] => {
    if (!Array.isArray(x) || !x.every(isDigest)) throw bad(what);
    return x;
  };
  if (!v || !isDigest(v.bundle) || typeof v.ref !== 'string' || typeof v.channel !== 'string' || !Number.isSafeInteger(v.release) || !Number.isSafeInteger(v.expires) || typeof v.started !== 'string') throw bad(what);
  return { bundle: v.bundle, ref: v.ref, channel: v.channel, release: v.release as number, expires: v.expires as number, started: v.started, baseline: digests(v.baseline), layers: digests(v.layers) };
}

/** Reads a bundle's record: undefined when there is none; malformed: FERRY_ERR_OBJECT_CORRUPT. */
export async function readPending(store: Store, bundle: Digest): Promise<PendingApply | undefined> {
  let text: string;
  try {
    text = await readFile(join(pendingDir(store, bundle), RECORD), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw toFerryError(err, `reading the pending apply of ${bundle}`);
  }
  return parseRecord(text, bundle);
}

/** Writes a record (durably: the directory entry of its directory is synced too). */
export async function writePending(store: Store, rec: PendingApply): Promise<void> {
  const dir = pendingDir(store, rec.bundle);
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw toFerryError(err, 'creating the pending-apply directory');
  }
  await writeFileAtomic(join(dir, RECORD), JSON.stringify(rec) + '\n');
  await fsyncDir(pendingRoot(store));
}

/** Removes a bundle's pending directory (record, progress lists, working files). */
export async function removePending(store: Store, bundle: Digest): Promise<boolean> {
  const dir = pendingDir(store, bundle);
  const had = await stat(dir).then(() => true, () => false);
  if (!had) return false;
  await rm(dir, { recursive: true, force: true });
  await fsyncDir(pendingRoot(store));
  return true;
}

/** One directory under pending/: its record, or why it could not be read. */
export interface PendingEntry {
  dir: string;
  name: string;
  record?: PendingApply | undefined;
  problem?: string | undefined;
}

/** Every pending directory of the store (none when pending/ does not exist). */
export async function listPending(store: Store): Promise<PendingEntry[]> {
  const root = pendingRoot(store);
  const names = await readdir(root).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw toFerryError(err, 'listing pending applies');
  });
  const out: PendingEntry[] = [];
  for (const name of names.sort()) {
    const dir = join(root, name);
    if (!/^[0-9a-f]{64}$/.test(name)) {
      out.push({ dir, name, problem: 'not a pending-apply directory' });
      continue;
    }
    try {
      const text = await readFile(join(dir, RECORD), 'utf8');
      const record = parseRecord(text, name);
      out.push({ dir, name, record, problem: record.bundle === `sha256:${name}` ? undefined : 'record names another bundle' });
    } catch (err) {
      out.push({ dir, name, problem: err instanceof FerryError ? err.message : `unreadable (${(err as Error).message})` });
    }
  }
  return out;
}

/** Whether a record still protects its apply, and why. */
export function pendingLiveness(rec: PendingApply, installed: ChannelState | undefined, now: number): { live: boolean; reason: string } {
  if (rec.expires <= now) return { live: false, reason: `its header expired at ${new Date(rec.expires * 1000).toISOString()}` };
  if (installed && installed.release >= rec.release) return { live: false, reason: `channel ${rec.channel} has release ${installed.release} installed` };
  return { live: true, reason: `uncommitted apply of ${rec.ref} (release ${rec.release} on channel ${rec.channel}), expires ${new Date(rec.expires * 1000).toISOString()}` };
}

/**
 * Appends digests to a progress list and syncs it: after this, gc keeps those contents for as
 * long as the record lives, whatever happens to this process.
 */
export async function appendProgress(file: string, digests: readonly Digest[]): Promise<void> {
  if (digests.length === 0) return;
  const bytes = Buffer.concat(digests.map(digestToBytes));
  const fh = await open(file, 'a');
  try {
    await fh.write(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A new progress list name for one layer of this process. */
export function progressFile(dir: string, diffId: Digest): string {
  return join(dir, `progress-${digestHex(diffId).slice(0, 16)}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Removes the progress lists of one layer (its skeleton, now committed, names those contents). */
export async function removeProgress(dir: string, diffId: Digest): Promise<void> {
  const prefix = `progress-${digestHex(diffId).slice(0, 16)}-`;
  for (const f of await readdir(dir).catch(() => [] as string[])) if (f.startsWith(prefix)) await rm(join(dir, f), { force: true });
}

/** The contents every progress list of a pending directory names (a torn last digest is ignored). */
export async function readProgress(dir: string): Promise<Digest[]> {
  const out: Digest[] = [];
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    if (!PROGRESS_RE.test(f)) continue;
    const bytes = await readFile(join(dir, f));
    for (let i = 0; i + 32 <= bytes.length; i += 32) out.push(bytesToDigest(bytes.subarray(i, i + 32)));
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The working files (`.tmp-<pid>-...`) of a pending directory whose process is gone: a crashed
 * rebuild's staged skeleton and partial bodies, which nothing will finish. A pid reused by an
 * unrelated process keeps its files until that one ends too (harmless: the next gc takes them).
 */
export async function deadWorkFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    const m = WORK_RE.exec(f);
    if (m && !alive(Number(m[1]))) out.push(join(dir, f));
  }
  return out;
}
