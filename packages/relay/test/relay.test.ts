/**
 * The relay against real servers on port 0: a repository server from test-support that counts what
 * it sends for each chunk (the upstream link), a small recording API server (check-ins, reports),
 * and agents' ChunkFetchers pointed at the relay.
 */
import { readdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChunkFetcher } from '@ferry/agent';
import { digestHex } from '@ferry/core';
import { cacheHolds, makeRepo, scratchDir, startRepoServer, type RepoServer, type TestRepo } from '@ferry/test-support';
import { startRelay, type RelayOptions, type RunningRelay } from '../src/index.js';

let work: { dir: string; remove(): Promise<void> };
let repo: TestRepo;
let upstream: RepoServer;
const relays: RunningRelay[] = [];
const fetchers: ChunkFetcher[] = [];

beforeEach(async () => {
  work = await scratchDir('relay');
  repo = await makeRepo(join(work.dir, 'repo'), 8, 32 * 1024, 7000);
  upstream = await startRepoServer(repo.dir);
});
afterEach(async () => {
  for (const f of fetchers.splice(0)) f.close();
  for (const r of relays.splice(0)) await r.close();
  await upstream.close();
  await work.remove();
});

async function relay(options: Partial<RelayOptions> = {}): Promise<RunningRelay> {
  const r = await startRelay({ upstream: `http://127.0.0.1:${upstream.port}/`, cacheDir: join(work.dir, 'relay'), host: '127.0.0.1', port: 0, ...options });
  relays.push(r);
  return r;
}

async function agentFetcher(name: string, r: RunningRelay): Promise<ChunkFetcher> {
  const f = await ChunkFetcher.open({ cacheDir: join(work.dir, name), sources: [`${r.url}/repo/`], minRetryMs: 10, maxRetryMs: 50 });
  fetchers.push(f);
  return f;
}

const hex = (i: number): string => digestHex(repo.chunks[i]!.digest);

describe('relay: repository', () => {
  it('serves N agents fetching the same chunks at the same moment with each chunk crossing upstream once', async () => {
    const r = await relay();
    const agents = await Promise.all(['a1', 'a2', 'a3', 'a4', 'a5'].map((n) => agentFetcher(n, r)));
    const results = await Promise.all(agents.map((f) => f.fetch(repo.chunks)));
    for (const [i, s] of results.entries()) {
      expect(s.fetched).toBe(repo.chunks.length);
      expect(await cacheHolds(join(work.dir, `a${i + 1}`), repo)).toBe(true);
    }
    // each chunk's body once, plus the one byte of the size probe
    for (const c of repo.chunks) expect(upstream.stats.bodyBytesByChunk.get(digestHex(c.digest))).toBe(c.size + 1);
    expect(r.cache.stats.fetched).toBe(repo.chunks.length);
    expect(r.cache.stats.joined + r.cache.stats.hits).toBe(4 * repo.chunks.length);
    expect(await cacheHolds(join(work.dir, 'relay'), repo)).toBe(true);
  });

  it('answers Range requests with 206, Content-Range and the strong ETag, fetching the chunk first when needed', async () => {
    const r = await relay();
    const c = repo.chunks[2]!;
    const res = await fetch(`${r.url}/repo/chunks/${hex(2)}`, { headers: { range: 'bytes=100-1099' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes 100-1099/${c.size}`);
    expect(res.headers.get('etag')).toBe(`"${hex(2)}"`);
    expect(res.headers.get('cache-control')).toContain('immutable');
    expect(Buffer.from(await res.arrayBuffer()).equals(repo.bytes[2]!.subarray(100, 1100))).toBe(true);
    const tail = await fetch(`${r.url}/repo/chunks/${hex(2)}`, { headers: { range: `bytes=${c.size - 10}-`, 'if-range': `"${hex(2)}"` } });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(repo.bytes[2]!.subarray(c.size - 10))).toBe(true);
    expect(upstream.stats.bodyBytesByChunk.get(hex(2))).toBe(c.size + 1);
  });

  it('refuses a chunk upstream corrupts (502 FERRY_ERR_CHUNK_INVALID) and never caches it', async () => {
    const r = await relay({ fetcher: { retries: 0 } });
    upstream.faults.push({ fault: { kind: 'flip-bit' }, match: (q) => q.hex === hex(1) && q.rangeStart === undefined });
    const res = await fetch(`${r.url}/repo/chunks/${hex(1)}`);
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('FERRY_ERR_CHUNK_INVALID');
    expect(await readdir(join(work.dir, 'relay', 'chunks'))).not.toContain(hex(1));
    expect(r.cache.stats.refused).toBe(1);
    upstream.faults.length = 0;
    const again = await fetch(`${r.url}/repo/chunks/${hex(1)}`);
    expect(again.status).toBe(200);
    expect(Buffer.from(await again.arrayBuffer()).equals(repo.bytes[1]!)).toBe(true);
  });

  it('refuses a bad digest before touching anything, and answers 404 for a chunk upstream lacks', async () => {
    const r = await relay();
    const bad = await fetch(`${r.url}/repo/chunks/${'A'.repeat(64)}`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('FERRY_ERR_DIGEST_INVALID');
    const missing = await fetch(`${r.url}/repo/chunks/${'0'.repeat(64)}`);
    expect(missing.status).toBe(404);
    expect(upstream.stats.requests).toBe(1);
  });

  it('keeps serving cached chunks while upstream is down; an uncached one is 503 with Retry-After', async () => {
    const r = await relay({ upstreamTimeoutMs: 2000 });
    expect((await fetch(`${r.url}/repo/chunks/${hex(0)}`)).status).toBe(200);
    await upstream.close();
    const cached = await fetch(`${r.url}/repo/chunks/${hex(0)}`);
    expect(cached.status).toBe(200);
    expect(Buffer.from(await cached.arrayBuffer()).equals(repo.bytes[0]!)).toBe(true);
    const other = await fetch(`${r.url}/repo/chunks/${hex(3)}`);
    expect(other.status).toBe(503);
    expect(other.headers.get('retry-after')).not.toBeNull();
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('FERRY_ERR_UPSTREAM_UNAVAILABLE');
  });

  it('evicts the least recently served chunks past the cache cap', async () => {
    const r = await relay({ maxCacheBytes: 3 * 32 * 1024 });
    for (let i = 0; i < 5; i++) expect((await fetch(`${r.url}/repo/chunks/${hex(i)}`)).status).toBe(200);
    const left = await readdir(join(work.dir, 'relay', 'chunks'));
    expect(left).toContain(hex(4));
    expect(left).not.toContain(hex(0));
    expect(r.cache.stats.bytes).toBeLessThanOrEqual(3 * 32 * 1024);
    expect(r.cache.stats.evicted).toBeGreaterThan(0);
  });

  it('shuts down promptly while a request waits on a stalled upstream: it gets 503, nothing is cached', async () => {
    const r = await relay();
    upstream.faults.push({ fault: { kind: 'stall' }, match: (q) => q.hex === hex(5) && q.rangeStart === undefined });
    const waiting = fetch(`${r.url}/repo/chunks/${hex(5)}`);
    while (!upstream.stats.log.some((e) => e.hex === hex(5) && e.rangeStart === undefined)) await new Promise((res) => setTimeout(res, 20));
    await r.close();
    const res = await waiting;
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('FERRY_ERR_SERVER_BUSY');
    expect(await readdir(join(work.dir, 'relay', 'chunks'))).not.toContain(hex(5));
  });
});
