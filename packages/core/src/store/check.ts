/**
 * fsck and gc (DESIGN.md section 4). fsck re-hashes every object and checks every ref's closure;
 * gc removes what no ref reaches, and leftover temp files.
 */
import { stat, rm, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, isFerryError } from '../errors.js';
import type { Digest } from '../util/digest.js';
import { readSkeletonFile } from '../tar/skeleton-file.js';
import { deadWorkFiles, pendingRoot } from '../bundle/apply-pending.js';
import type { Progress } from './import.js';
import { channelFromFileName } from './refs.js';
import type { Store } from './store.js';
import { pendingStates, type PendingSummary } from './pending-roots.js';

export type { PendingSummary } from './pending-roots.js';

/** One problem fsck found. */
export interface FsckProblem {
  kind: 'content' | 'skeleton' | 'blob' | 'ref' | 'channel' | 'pending';
  /** The object's digest (for refs: the ref). */
  id: string;
  path?: string | undefined;
  problem: string;
}

/** What fsck found. */
export interface FsckReport {
  ok: boolean;
  checked: { contents: number; skeletons: number; blobs: number; refs: number; channels: number };
  problems: FsckProblem[];
  /** Temp files left by an interrupted write; harmless, gc removes them. */
  leftovers: string[];
  /** Applies that started rebuilding and have not committed (docs/format.md section 1). */
  pending: PendingSummary[];
}


const TEMP_RE = /^\.(tmp|incoming)-/;

/** Reads an object to its end (reading is the check), stopping at once on an abort. */
async function drain(it: AsyncIterable<unknown>, signal: AbortSignal | undefined): Promise<void> {
  for await (const _ of it) signal?.throwIfAborted();
}

function why(err: unknown): string {
  return isFerryError(err) ? `${err.code}: ${err.message}` : String(err);
}

/** Checks every channel state file (name and contents); returns how many were checked. */
async function checkChannels(store: Store, problems: FsckProblem[], leftovers: string[]): Promise<number> {
  const dir = join(store.root, 'channels');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT') return 0;
    problems.push({ kind: 'channel', id: 'channels', path: dir, problem: errno === 'ENOTDIR' ? 'not a directory (applies from any channel fail until it is removed)' : why(err) });
    return 0;
  }
  let checked = 0;
  for (const f of names) {
    if (TEMP_RE.test(f)) leftovers.push(join(dir, f));
    if (f.startsWith('.')) continue;
    checked++;
    const channel = channelFromFileName(f);
    if (channel === undefined) {
      problems.push({ kind: 'channel', id: f, path: join(dir, f), problem: 'file name is not an encoded channel name' });
      continue;
    }
    try {
      await store.getChannel(channel);
    } catch (err) {
      problems.push({ kind: 'channel', id: channel, path: join(dir, f), problem: why(err) });
    }
  }
  return checked;
}

/** Re-hashes every object and checks that every ref's image is complete. */
export async function fsck(store: Store, opts: { onProgress?: (p: Progress) => void; signal?: AbortSignal } = {}): Promise<FsckReport> {
  const problems: FsckProblem[] = [];
  const leftovers: string[] = [];
  const checked = { contents: 0, skeletons: 0, blobs: 0, refs: 0, channels: 0 };
  const contents = await store.listObjects('contents');
  const skeletons = await store.listObjects('skeletons');
  const blobs = await store.listObjects('blobs');
  const total = contents.length + skeletons.length + blobs.length;
  let done = 0;
  const tick = (phase: string): void => opts.onProgress?.({ phase, done: ++done, total });
  for (const o of contents) {
    opts.signal?.throwIfAborted();
    if (TEMP_RE.test(o.name)) leftovers.push(o.path);
    else if (!o.digest) problems.push({ kind: 'content', id: o.name, path: o.path, problem: 'file name is not a digest' });
    else {
      checked.contents++;
      try {
        await drain(store.openContent(o.digest), opts.signal);
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        problems.push({ kind: 'content', id: o.digest, path: o.path, problem: why(err) });
      }
    }
    tick('contents');
  }
  const referenced = new Set<Digest>();
  for (const o of skeletons) {
    opts.signal?.throwIfAborted();
    if (TEMP_RE.test(o.name)) leftovers.push(o.path);
    else if (!o.digest) problems.push({ kind: 'skeleton', id: o.name, path: o.path, problem: 'file name is not a digest' });
    else {
      checked.skeletons++;
      try {
        const r = readSkeletonFile(o.path);
        for await (const e of r.entries) {
          opts.signal?.throwIfAborted();
          if (e.digest) referenced.add(e.digest);
        }
        if (r.trailer().diffId !== o.digest) throw new FerryError('FERRY_ERR_OBJECT_CORRUPT', `skeleton names layer ${r.trailer().diffId}`);
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        problems.push({ kind: 'skeleton', id: o.digest, path: o.path, problem: why(err) });
      }
    }
    tick('skeletons');
  }
  for (const d of referenced) {
    if (!(await store.hasContent(d))) problems.push({ kind: 'content', id: d, path: store.contentPath(d), problem: 'missing (a skeleton needs it)' });
  }
  for (const o of blobs) {
    opts.signal?.throwIfAborted();
    if (TEMP_RE.test(o.name)) leftovers.push(o.path);
    else if (!o.digest) problems.push({ kind: 'blob', id: o.name, path: o.path, problem: 'file name is not a digest' });
    else {
      checked.blobs++;
      try {
        await store.getBlob(o.digest);
      } catch (err) {
        problems.push({ kind: 'blob', id: o.digest, path: o.path, problem: why(err) });
      }
    }
    tick('blobs');
  }
  // each ref file on its own: one unreadable ref must be reported, not hide the others
  // (store.listRefs fails as a whole on the first bad one)
  for (const f of await readdir(join(store.root, 'refs'))) {
    if (TEMP_RE.test(f)) leftovers.push(join(store.root, 'refs', f));
  }
  for (const { file, path, ref } of await store.listRefFiles()) {
    opts.signal?.throwIfAborted();
    checked.refs++;
    if (ref === undefined) {
      problems.push({ kind: 'ref', id: file, path, problem: 'file name is not an encoded name:tag (images skips it; remove or rename it)' });
      continue;
    }
    try {
      const img = await store.resolve(ref);
      for (const l of img.layers) {
        if (!(await store.hasSkeleton(l.diffId))) problems.push({ kind: 'ref', id: ref, path, problem: `layer ${l.diffId} has no skeleton` });
      }
    } catch (err) {
      problems.push({ kind: 'ref', id: ref, path, problem: why(err) });
    }
  }
  checked.channels = await checkChannels(store, problems, leftovers);
  const pending: PendingSummary[] = [];
  for (const p of await pendingStates(store)) {
    pending.push(p.summary);
    if (!p.entry.record || p.entry.problem) problems.push({ kind: 'pending', id: p.entry.name, path: p.entry.dir, problem: p.summary.reason });
    leftovers.push(...p.deadFiles);
  }
  leftovers.push(...(await deadWorkFiles(pendingRoot(store))));
  return { ok: problems.length === 0, checked, problems, leftovers, pending };
}

/** What gc removed, and the pending applies it kept or dropped. */
export interface GcReport {
  removed: { contents: number; skeletons: number; blobs: number; temps: number };
  freedBytes: number;
  /** Uncommitted applies whose layers, baseline and partial contents gc kept (and why). */
  kept: PendingSummary[];
  /** Pending applies that were dead (expired, or superseded on their channel): their records went. */
  dropped: PendingSummary[];
}

type Live = { contents: Set<string>; skeletons: Set<string>; blobs: Set<string> };

/** Adds a layer and every content its skeleton names to the live set. */
async function keepLayer(store: Store, live: Live, diffId: Digest, signal?: AbortSignal): Promise<void> {
  if (live.skeletons.has(diffId)) return;
  live.skeletons.add(diffId);
  const r = await store.openSkeleton(diffId);
  for await (const e of r.entries) {
    signal?.throwIfAborted();
    if (e.digest) live.contents.add(e.digest);
  }
}

async function sizeOf(path: string): Promise<number> {
  return (await stat(path).catch(() => undefined))?.size ?? 0;
}

/** Removes a file or directory (unless dry) and returns the bytes it held. */
async function drop(path: string, dryRun: boolean | undefined): Promise<number> {
  let bytes = await sizeOf(path);
  const st = await stat(path).catch(() => undefined);
  if (st?.isDirectory()) for (const f of await readdir(path)) bytes += await sizeOf(join(path, f));
  if (!dryRun) await rm(path, { recursive: true, force: true });
  return bytes;
}

/** Roots of live pending applies; dead ones are removed and reported. */
async function pendingRoots(store: Store, live: Live, report: GcReport, dryRun: boolean | undefined): Promise<void> {
  for (const p of await pendingStates(store)) {
    if (!p.entry.record || p.entry.problem) continue; // not ours to judge: fsck reports it
    if (!p.summary.live) {
      report.freedBytes += await drop(p.entry.dir, dryRun);
      report.dropped.push(p.summary);
      continue;
    }
    for (const d of p.skeletons) await keepLayer(store, live, d);
    for (const d of p.contents) live.contents.add(d);
    for (const f of p.deadFiles) {
      report.freedBytes += await drop(f, dryRun);
      report.removed.temps++;
    }
    report.kept.push(p.summary);
  }
  for (const f of await deadWorkFiles(pendingRoot(store))) {
    report.freedBytes += await drop(f, dryRun);
    report.removed.temps++;
  }
}

/**
 * Removes objects that no ref and no live pending apply reaches, temp files, and dead pending
 * records. Holds the writer lock; the working files of a rebuild waiting for the network (its
 * process alive) are left alone.
 */
export async function gc(store: Store, opts: { dryRun?: boolean; signal?: AbortSignal } = {}): Promise<GcReport> {
  return store.withLock(async () => {
    const live: Live = { contents: new Set<string>(), skeletons: new Set<string>(), blobs: new Set<string>() };
    // every ref file is a root, whatever its name: a malformed name (fsck reports it) must not
    // make gc free the image it points at
    for (const { file, ref } of await store.listRefFiles()) {
      opts.signal?.throwIfAborted();
      const what = ref ?? `file ${file}`;
      const img = await store.imageByManifest(what, await store.readRefFile(file, what));
      live.blobs.add(img.manifestDigest).add(img.configDigest);
      for (const l of img.layers) await keepLayer(store, live, l.diffId, opts.signal);
    }
    const report: GcReport = { removed: { contents: 0, skeletons: 0, blobs: 0, temps: 0 }, freedBytes: 0, kept: [], dropped: [] };
    await pendingRoots(store, live, report, opts.dryRun);
    // referrers go first (skeletons before the contents they name), so a gc cut short by a signal
    // or a crash never leaves a skeleton naming a removed content
    for (const kind of ['blobs', 'skeletons', 'contents'] as const) {
      for (const o of await store.listObjects(kind)) {
        opts.signal?.throwIfAborted();
        const temp = TEMP_RE.test(o.name);
        if (!temp && o.digest && live[kind].has(o.digest)) continue;
        if (!temp && !o.digest) continue; // not ours: leave it, fsck reports it
        report.freedBytes += await sizeOf(o.path);
        if (temp) report.removed.temps++;
        else report.removed[kind]++;
        if (!opts.dryRun) await rm(o.path, { force: true });
      }
    }
    // an interrupted ref update leaves its temp file in refs/ (fsck lists it as a leftover)
    for (const f of await readdir(join(store.root, 'refs'))) {
      if (!TEMP_RE.test(f)) continue;
      report.freedBytes += await drop(join(store.root, 'refs', f), opts.dryRun);
      report.removed.temps++;
    }
    return report;
  });
}
