/**
 * The chunk fetcher against a real repository server on port 0 and real directories: verified
 * chunks land in the cache's `chunks/<hex>`, sources are tried in order, local directory sources
 * are read as bounded regular files, nothing verified is fetched twice, the chunk source waits for
 * chunks as they arrive, and the bandwidth cap holds.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { digestHex, isFerryError, sha256, type FerryError } from '@ferry/core';
import { cacheHolds, makeRepo, scratchDir, startRepoServer, type RepoServer, type TestRepo } from '@ferry/test-support';
import { ChunkFetcher, type FetcherOptions, type FetchProgress } from '../src/index.js';

let work: { dir: string; remove(): Promise<void> };
let repo: TestRepo;
let server: RepoServer;
const fetchers: ChunkFetcher[] = [];

beforeEach(async () => {
  work = await scratchDir('fetcher');
  repo = await makeRepo(join(work.dir, 'repo'), 12, 16 * 1024, 5000);
  server = await startRepoServer(repo.dir);
});
afterEach(async () => {
  for (const f of fetchers.splice(0)) f.close();
  await server.close();
  await work.remove();
});

async function fetcher(options: Partial<FetcherOptions> = {}): Promise<ChunkFetcher> {
  const f = await ChunkFetcher.open({ cacheDir: join(work.dir, 'cache'), sources: [server.url], minRetryMs: 10, maxRetryMs: 50, ...options });
  fetchers.push(f);
  return f;
}

describe('ChunkFetcher', () => {
  it('fetches every chunk into chunks/<hex>, verified, and fetches none of them again', async () => {
    const f = await fetcher();
    const first = await f.fetch(repo.chunks);
    expect(first).toMatchObject({ chunks: 12, fetched: 12, cached: 0 });
    expect(await cacheHolds(join(work.dir, 'cache'), repo)).toBe(true);
    expect(first.progress).toMatchObject({ bytesDone: repo.payload, bytesTotal: repo.payload, chunksDone: 12, chunksTotal: 12, eta: 0 });
    expect(first.progress.link.bytesReceived).toBe(repo.payload);
    expect(first.progress.link.wireBytesReceived).toBeGreaterThan(repo.payload);
    expect(await readdir(join(work.dir, 'cache', 'partial'))).toEqual([]);
    const sent = server.stats.bodyBytes;
    const again = await (await fetcher()).fetch(repo.chunks);
    expect(again).toMatchObject({ fetched: 0, cached: 12 });
    expect(server.stats.bodyBytes).toBe(sent);
  });

  it('fetches a digest listed twice once', async () => {
    const f = await fetcher();
    const chunks = [repo.chunks[0]!, repo.chunks[1]!, repo.chunks[0]!];
    const s = await f.fetch(chunks);
    expect(s).toMatchObject({ chunks: 3, fetched: 2 });
    expect(s.progress.bytesTotal).toBe(2 * repo.chunks[0]!.size + repo.chunks[1]!.size);
    expect(server.stats.bodyBytes).toBe(repo.chunks[0]!.size + repo.chunks[1]!.size);
  });

  it('takes chunks from a local directory first when it is listed first, and the rest from the server', async () => {
    const usb = await makeRepo(join(work.dir, 'usb'), 0, 0);
    for (const i of [0, 3, 7]) await writeFile(join(usb.dir, 'chunks', digestHex(repo.chunks[i]!.digest)), repo.bytes[i]!);
    const f = await fetcher({ sources: [usb.dir, server.url] });
    const s = await f.fetch(repo.chunks);
    expect(s.progress.link.bytesFromFiles).toBe(3 * 16 * 1024);
    expect(server.stats.bodyBytes).toBe(repo.payload - 3 * 16 * 1024);
    expect(await cacheHolds(join(work.dir, 'cache'), repo)).toBe(true);
  });

  it('refuses special files, longer files and wrong bytes in a directory source, and falls back to the server', async () => {
    const usb = join(work.dir, 'usb');
    await mkdir(join(usb, 'chunks'), { recursive: true });
    const at = (i: number): string => join(usb, 'chunks', digestHex(repo.chunks[i]!.digest));
    await symlink('/dev/zero', at(0));
    execFileSync('mkfifo', [at(1)]);
    await writeFile(at(2), Buffer.concat([repo.bytes[2]!, Buffer.from('x')]));
    await writeFile(at(3), Buffer.alloc(repo.bytes[3]!.length));
    const failures: FerryError[] = [];
    const f = await fetcher({ sources: [usb, server.url], onEvent: (e) => e.type === 'failure' && failures.push(e.error) });
    await f.fetch(repo.chunks.slice(0, 4));
    expect(failures.map((e) => e.code)).toEqual(['FERRY_ERR_CHUNK_INVALID', 'FERRY_ERR_CHUNK_INVALID', 'FERRY_ERR_CHUNK_INVALID', 'FERRY_ERR_CHUNK_INVALID']);
    expect(server.stats.bodyBytes).toBe(4 * 16 * 1024);
  });

  it('tries the next source when one lacks a chunk (404)', async () => {
    const empty = await startRepoServer(join(work.dir, 'nothing'));
    try {
      const f = await fetcher({ sources: [empty.url, server.url] });
      const s = await f.fetch(repo.chunks);
      expect(empty.stats.statuses[404]).toBe(12);
      expect(s.progress.link.failures).toBe(12);
      expect(await cacheHolds(join(work.dir, 'cache'), repo)).toBe(true);
    } finally {
      await empty.close();
    }
  });

  it('gives up on a status that retrying cannot fix, with FERRY_ERR_FETCH_HTTP', async () => {
    server.faults.push({ fault: { kind: 'status', status: 403 } });
    const f = await fetcher();
    const err = await f.fetch(repo.chunks).catch((e: unknown) => e);
    expect(isFerryError(err, 'FERRY_ERR_FETCH_HTTP')).toBe(true);
    expect((err as FerryError).retryable).toBe(false);
    expect(server.stats.statuses[403]).toBeLessThanOrEqual(3); // one per chunk in flight, no retries
  });

  it('stops on its signal with FERRY_ERR_ABORTED and keeps what arrived', async () => {
    server.faults.push({ fault: { kind: 'trickle', bytesPerSecond: 2000 } });
    const f = await fetcher();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const err = await f.fetch(repo.chunks, { signal: ac.signal }).catch((e: unknown) => e);
    expect(isFerryError(err, 'FERRY_ERR_ABORTED')).toBe(true);
    const journals = (await readdir(join(work.dir, 'cache', 'partial'))).filter((n) => n.endsWith('.journal'));
    expect(journals.length).toBeGreaterThan(0);
    server.faults.length = 0;
    const s = await (await fetcher()).fetch(repo.chunks);
    expect(s.progress.link.bytesReceived).toBeLessThan(repo.payload);
    expect(server.stats.rangeStarts.length).toBeGreaterThan(0);
    expect(await cacheHolds(join(work.dir, 'cache'), repo)).toBe(true);
  });

  it('under a bandwidth cap, checkpoints the bytes as the cap passes them, and keeps a whole read when stopped', async () => {
    // on loopback a 16 KiB chunk arrives in one read, which the 8 KiB/s cap takes 1.5 s to pass
    const f = await fetcher({ maxBytesPerSecond: 8192, concurrency: 1, checkpointMs: 100 });
    const one = repo.chunks.slice(0, 1);
    const journal = join(work.dir, 'cache', 'partial', `${digestHex(one[0]!.digest)}.journal`);
    const ac = new AbortController();
    // what a kill -9 would resume from (the journal's length, bytes 8-15), watched while the read
    // passes the cap; the fetch is stopped once it shows 8 KiB
    let durable = 0;
    const watch = setInterval(() => {
      void readFile(journal).then((b) => {
        durable = Math.max(durable, Number(b.readBigUInt64BE(8)));
        if (durable >= 8192) ac.abort();
      }, () => undefined);
    }, 25);
    const err = await f.fetch(one, { signal: ac.signal }).catch((e: unknown) => e);
    clearInterval(watch);
    // stopped, not finished: the journal showed 8 KiB of the chunk before the read had passed whole
    expect(isFerryError(err, 'FERRY_ERR_ABORTED')).toBe(true);
    expect(durable).toBeGreaterThanOrEqual(8192);
    expect(durable).toBeLessThan(one[0]!.size);
    // the stop kept the rest of the read (it had crossed the link): the restart fetches nothing
    const sent = server.stats.bodyBytes;
    expect(sent).toBe(one[0]!.size);
    await (await fetcher()).fetch(one);
    expect(server.stats.bodyBytes).toBe(sent);
    expect(await cacheHolds(join(work.dir, 'cache'), { ...repo, chunks: one })).toBe(true);
  });

  it('serves chunks to a reader as they arrive, the awaited one first', async () => {
    server.faults.push({ fault: { kind: 'trickle', bytesPerSecond: 40_000 }, rate: 1 });
    const f = await fetcher({ concurrency: 1 });
    const run = f.fetch(repo.chunks);
    run.catch(() => {}); // awaited below; a failure must not go unhandled meanwhile
    const source = f.chunkSource();
    const last = repo.chunks.length - 1;
    const got = await source.readChunk(last, repo.chunks[last]!.digest, repo.chunks[last]!.size);
    expect(sha256(got)).toBe(repo.chunks[last]!.digest);
    expect(f.progress().chunksDone).toBeLessThan(repo.chunks.length);
    server.faults.length = 0;
    for (const [i, c] of repo.chunks.entries()) expect(sha256(await source.readChunk(i, c.digest, c.size))).toBe(c.digest);
    await run;
    const other = sha256('not in this bundle');
    const err = await source.readChunk(0, other, 10).catch((e: unknown) => e);
    expect(isFerryError(err, 'FERRY_ERR_CHUNK_MISSING')).toBe(true);
  });

  it('says when its first requests are out, without waiting for any byte; at once when nothing is left to fetch', async () => {
    server.faults.push({ fault: { kind: 'stall' } });
    const f = await fetcher({ concurrency: 3, stallTimeoutMs: 60_000, minLeadBytes: 1024 });
    const ac = new AbortController();
    const run = f.fetch(repo.chunks, { signal: ac.signal });
    run.catch(() => {});
    await f.requestsSent();
    expect(f.progress().bytesDone).toBe(0);
    // one request: the others wait until it has little left (pacer.ts), and it has all of it left
    await vi.waitFor(() => expect(server.stats.log.length).toBe(1));
    await delay(100);
    expect(server.stats.log.length).toBe(1);
    ac.abort();
    await run.catch(() => {});
    server.faults.length = 0;
    const g = await fetcher();
    await g.fetch(repo.chunks);
    const before = server.stats.requests;
    const again = g.fetch(repo.chunks);
    await g.requestsSent();
    expect((await again).fetched).toBe(0);
    expect(server.stats.requests).toBe(before);
  });

  it('never receives faster than its bandwidth cap', async () => {
    const f = await fetcher({ maxBytesPerSecond: 100_000, burstBytes: 4096 });
    const t0 = performance.now();
    await f.fetch(repo.chunks);
    const seconds = (performance.now() - t0) / 1000;
    expect(seconds).toBeGreaterThanOrEqual(((repo.payload - 4096 - 64 * 1024) / 100_000) * 0.95);
  });

  it('reports progress as bytes arrive: bytes and chunks done of total, rate, ETA, link statistics', async () => {
    server.faults.push({ fault: { kind: 'trickle', bytesPerSecond: 60_000 } });
    const seen: FetchProgress[] = [];
    const f = await fetcher({ progressMs: 50, onProgress: (p) => seen.push(p) });
    await f.fetch(repo.chunks);
    expect(seen.length).toBeGreaterThan(5);
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i]!.bytesDone).toBeGreaterThanOrEqual(seen[i - 1]!.bytesDone);
      expect(seen[i]!.chunksDone).toBeGreaterThanOrEqual(seen[i - 1]!.chunksDone);
    }
    const mid = seen.filter((p) => p.chunksDone < 12 && p.rate > 0);
    expect(mid.length).toBeGreaterThan(0);
    // partial bytes count before their chunk is verified
    expect(mid.some((p) => p.bytesDone % (16 * 1024) !== 0)).toBe(true);
    expect(mid.every((p) => p.eta !== null && p.eta >= 0 && p.bytesTotal === repo.payload && p.chunksTotal === 12)).toBe(true);
    expect(seen[seen.length - 1]).toMatchObject({ bytesDone: repo.payload, chunksDone: 12, eta: 0, error: null });
    expect(seen[seen.length - 1]!.link).toMatchObject({ requests: 12, failures: 0, bytesReceived: repo.payload });
  });

  it('closes every file and socket it opened, after a failure and after an abort', async () => {
    const fds = async (): Promise<number> => (await readdir('/proc/self/fd')).length;
    const before = await fds();
    server.faults.push({ fault: { kind: 'status', status: 403 } });
    const failing = await fetcher();
    await failing.fetch(repo.chunks).catch(() => undefined);
    failing.close();
    server.faults.splice(0, 1, { fault: { kind: 'trickle', bytesPerSecond: 5000 } });
    const aborted = await fetcher();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    await aborted.fetch(repo.chunks, { signal: ac.signal }).catch(() => undefined);
    aborted.close();
    for (let i = 0; i < 100 && (await fds()) !== before; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await fds()).toBe(before);
  });
});
