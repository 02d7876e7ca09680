/**
 * Fetching over an emulated DIL link (ferry linksim between the fetcher and a repository server on
 * loopback): outages every two seconds (stalled or reset), connection resets at a rate, and
 * corrupted bytes. Each ends with every chunk verified in the cache, the payload bytes received
 * exactly once (plus what a fault made us discard, counted), and the bytes on the wire (HTTP
 * headers included) within a stated overhead per request.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChunkFetcher, type FetcherOptions, type FetchSummary } from '@ferry/agent';
import { startLinkSim, type LinkSim, type LinkSimOptions } from '@ferry/linksim';
import { cacheHolds, makeRepo, scratchDir, startRepoServer, type RepoServer, type TestRepo } from '@ferry/test-support';

/** Response headers plus the request line and headers, per request: a generous bound. */
const OVERHEAD_PER_REQUEST = 512;
const CHUNK = 32 * 1024;

let work: { dir: string; remove(): Promise<void> };
let repo: TestRepo;
let server: RepoServer;
const closers: { close(): unknown }[] = [];

beforeEach(async () => {
  work = await scratchDir('fetch-link');
  repo = await makeRepo(join(work.dir, 'repo'), 24, CHUNK, 3000);
  server = await startRepoServer(repo.dir);
  closers.push(server);
});
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c.close();
  await work.remove();
});

async function overLink(link: Omit<LinkSimOptions, 'target'>, options: Partial<FetcherOptions> = {}): Promise<{ s: FetchSummary; sim: LinkSim }> {
  const sim = await startLinkSim({ target: { host: '127.0.0.1', port: server.port }, ...link });
  closers.push(sim);
  const f = await ChunkFetcher.open({ cacheDir: join(work.dir, 'cache'), sources: [`http://127.0.0.1:${sim.port}/repo/`], minRetryMs: 100, maxRetryMs: 1000, retries: 30, ...options });
  try {
    return { s: await f.fetch(repo.chunks), sim };
  } finally {
    f.close();
  }
}

async function expectVerified(s: FetchSummary, discardedAtMost: number): Promise<void> {
  expect(await cacheHolds(join(work.dir, 'cache'), repo)).toBe(true);
  const l = s.progress.link;
  expect(l.bytesReceived - l.bytesDiscarded).toBe(repo.payload);
  expect(l.bytesDiscarded).toBeLessThanOrEqual(discardedAtMost);
  expect(l.wireBytesReceived).toBeLessThanOrEqual(l.bytesReceived + l.requests * OVERHEAD_PER_REQUEST);
}

describe('fetching over an emulated DIL link', () => {
  it('paces its requests: the first chunk has the link to itself, the chunks arrive in payload order, each next request out before the one ahead ends', async () => {
    // per verified chunk: its index, when (this process's clock, as the server's log), and the
    // bytes the other chunks held then
    const verified: { index: number; at: number; othersHeld: number }[] = [];
    let f: ChunkFetcher | undefined;
    const onEvent: FetcherOptions['onEvent'] = (e) => {
      if (e.type !== 'chunk') return;
      const p = f!.progress();
      verified.push({ index: e.index, at: performance.now(), othersHeld: p.bytesDone - (p.chunksDone + 1) * CHUNK });
    };
    const n = 6;
    const chunks = repo.chunks.slice(0, n);
    // 1 Mbit/s: a 32 KiB chunk takes 0.26 s, the lead (16 KiB) half of it
    const sim = await startLinkSim({ target: { host: '127.0.0.1', port: server.port }, rateDown: 1_000_000, rateUp: 1_000_000 });
    closers.push(sim);
    f = await ChunkFetcher.open({ cacheDir: join(work.dir, 'cache'), sources: [`http://127.0.0.1:${sim.port}/repo/`], concurrency: 3, onEvent });
    closers.push(f);
    await f.fetch(chunks);
    expect(verified.map((v) => v.index)).toEqual([...Array(n).keys()]);
    // 3 requests sharing the link from the start would hold about a chunk each when the first ends;
    // paced, the second went out when the first had the lead left, and holds its share of it
    expect(verified[0]!.othersHeld).toBeLessThan(CHUNK);
    const sent = (i: number): number => server.stats.log.find((r) => r.hex === chunks[i]!.digest.slice(7))!.at;
    for (let i = 1; i < n; i++) expect(sent(i)).toBeLessThan(verified[i - 1]!.at);
    expect(server.stats.requests).toBe(n);
  });

  it('up 1.2 s / down 0.8 s with bytes held while down: the same connections carry on, nothing refetched', async () => {
    const { s, sim } = await overLink({ rateDown: 2_000_000, rateUp: 256_000, latencyDownMs: 50, latencyUpMs: 50, schedule: { kind: 'fixed', upMs: 1200, downMs: 800 }, downMode: 'stall' }, { stallTimeoutMs: 5000 });
    await expectVerified(s, 0);
    expect(sim.stats().outages).toBeGreaterThanOrEqual(1);
    expect(s.progress.link.resets).toBe(0);
  });

  it('up 1.2 s / down 0.8 s with connections reset while down: resumes by Range, nothing refetched', async () => {
    const { s, sim } = await overLink({ rateDown: 2_000_000, rateUp: 256_000, latencyDownMs: 50, latencyUpMs: 50, schedule: { kind: 'fixed', upMs: 1200, downMs: 800 }, downMode: 'reset' });
    await expectVerified(s, 0);
    expect(sim.stats().resets + sim.stats().refused).toBeGreaterThanOrEqual(1);
    expect(server.stats.rangeStarts.length).toBeGreaterThan(0);
  });

  it('connections reset mid-transfer every ~300 ms: resumes by Range, nothing refetched', async () => {
    const { s, sim } = await overLink({ rateDown: 2_000_000, resetEveryMs: 300, seed: 7 });
    await expectVerified(s, 0);
    expect(sim.stats().resets).toBeGreaterThanOrEqual(2);
    expect(s.progress.link.resets).toBeGreaterThanOrEqual(1);
  });

  it('corrupted bytes are caught by the digests; only the damaged chunks are fetched again', async () => {
    const { s, sim } = await overLink({ rateDown: 4_000_000, corruptRate: 2e-6, seed: 11 }, { stallTimeoutMs: 2000 });
    expect(sim.stats().corruptedBytes).toBeGreaterThan(0);
    // a flipped bit in a body discards that chunk; one in a header fails that answer
    await expectVerified(s, (s.progress.link.digestFailures + s.progress.link.restarts) * CHUNK);
    expect(s.progress.link.failures).toBeGreaterThan(0);
  });
});
