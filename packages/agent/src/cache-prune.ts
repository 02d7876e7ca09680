/**
 * Pruning the chunk cache after a commit (DESIGN.md section 6): without it every update's payload
 * stays on the device for ever. A cached header is live while its release is not installed on its
 * channel and it still verifies (trusted keys, not expired); every chunk and partial file no live
 * header names is removed, and so are dead headers. A transfer that was preempted, or one for
 * another channel, keeps its header in the cache and so keeps every byte it has verified.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { headerPath, toFerryError, verifyHeader, type Digest, type Store, type TrustPolicy } from '@ferry/core';
import { readHeaderFile } from './api.js';
import { ChunkCache } from './cache.js';

/** What a prune removed. */
export interface PruneReport {
  headers: number;
  chunks: number;
  partials: number;
  bytes: number;
}

const HEX = /^[0-9a-f]{64}$/;

async function names(dir: string): Promise<string[]> {
  return readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw toFerryError(err, `listing ${dir}`);
  });
}

async function drop(path: string, report: PruneReport): Promise<void> {
  report.bytes += (await stat(path).catch(() => undefined))?.size ?? 0;
  await rm(path, { force: true });
}

/** The chunks a cached header still needs, or undefined when it is dead. */
async function liveChunks(store: Store, bytes: Uint8Array, trust: TrustPolicy, now: number): Promise<Digest[] | undefined> {
  let header;
  try {
    header = verifyHeader(bytes, { trust, now });
  } catch {
    return undefined; // expired, or no longer signed by a trusted key: never applied now
  }
  const installed = await store.getChannel(header.release.channel).catch(() => undefined);
  if (installed && installed.release >= header.release.release) return undefined;
  return header.chunks;
}

/** Removes dead headers and every chunk and partial file that no live header names. */
export async function pruneCache(cacheDir: string, store: Store, trust: TrustPolicy, now = Math.floor(Date.now() / 1000)): Promise<PruneReport> {
  const cache = await ChunkCache.open(cacheDir); // its layout; also clears a crash's temp chunks
  const report: PruneReport = { headers: 0, chunks: 0, partials: 0, bytes: 0 };
  const live = new Set<string>();
  const headersDir = join(cacheDir, 'headers');
  for (const name of await names(headersDir)) {
    const path = join(cacheDir, headerPath(`sha256:${name}`));
    const bytes = HEX.test(name) ? await readHeaderFile(path) : undefined;
    const chunks = bytes ? await liveChunks(store, bytes, trust, now) : undefined;
    if (chunks) {
      for (const d of chunks) live.add(d.slice(7));
      continue;
    }
    await drop(join(headersDir, name), report);
    report.headers++;
  }
  for (const name of await names(cache.chunksDir)) {
    if (live.has(name)) continue;
    await drop(join(cache.chunksDir, name), report);
    report.chunks++;
  }
  for (const name of await names(cache.partialDir)) {
    const hex = name.slice(0, 64);
    if (HEX.test(hex) && live.has(hex)) continue;
    await drop(join(cache.partialDir, name), report);
    if (!name.endsWith('.journal')) report.partials++;
  }
  return report;
}
