/**
 * A chunk cache on a disk that fills up while fetching (a tiny tmpfs; root only, as
 * test/full-disk.test.ts): the fetch stops at once with FERRY_ERR_IO (no source or retry can help),
 * every file under `chunks/` is a verified chunk, and once there is room the next fetch completes,
 * having received at most the payload plus what the first one held in partial chunks.
 */
import { execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFerryError } from '@ferry/core';
import { ChunkFetcher } from '@ferry/agent';
import { cacheHolds, makeRepo, scratchDir, startRepoServer, type RepoServer, type TestRepo } from '@ferry/test-support';

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('fetching onto a full disk', () => {
  let work: { dir: string; remove(): Promise<void> };
  let small: string;
  let repo: TestRepo;
  let server: RepoServer;

  beforeAll(async () => {
    work = await scratchDir('fetch-full');
    repo = await makeRepo(join(work.dir, 'repo'), 32, 32 * 1024);
    server = await startRepoServer(repo.dir);
    small = join(work.dir, 'small');
    await mkdir(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=400k', 'tmpfs', small]);
  });

  afterAll(async () => {
    await server.close();
    try {
      execFileSync('umount', [small]);
    } catch {
      // not mounted
    }
    await work.remove();
  });

  it('stops with FERRY_ERR_IO, keeps only verified chunks, and completes once there is room', async () => {
    const cacheDir = join(small, 'cache');
    const first = await ChunkFetcher.open({ cacheDir, sources: [server.url], minRetryMs: 10 });
    const err = await first.fetch(repo.chunks).catch((e: unknown) => e);
    first.close();
    expect(isFerryError(err, 'FERRY_ERR_IO'), String(err)).toBe(true);
    const sentBefore = server.stats.bodyBytes;
    expect(sentBefore).toBeLessThan(repo.payload);
    execFileSync('mount', ['-o', 'remount,size=4m', small]);
    const second = await ChunkFetcher.open({ cacheDir, sources: [server.url] });
    try {
      const s = await second.fetch(repo.chunks);
      expect(s.cached).toBeGreaterThan(0);
      expect(await cacheHolds(cacheDir, repo)).toBe(true);
      expect(s.progress.link.bytesReceived + sentBefore).toBeLessThanOrEqual(repo.payload + 3 * 32 * 1024);
    } finally {
      second.close();
    }
  });
});
