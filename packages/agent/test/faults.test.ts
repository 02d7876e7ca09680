/**
 * Fault tests of fetching (issue 9 item 6) against a faulty repository server on port 0. Each ends
 * with every chunk verified in the cache and the bytes received over the wire checked against the
 * payload: exactly the payload where nothing had to be thrown away, else the payload plus the
 * bytes the fault made us discard (counted), within a stated bound.
 */
import { randomBytes } from 'node:crypto';
import { open, readdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FerryError } from '@ferry/core';
import { cacheHolds, makeRepo, scratchDir, startRepoServer, startSwitchLink, type RepoServer, type TestRepo } from '@ferry/test-support';
import { ChunkFetcher, type FetchEvent, type FetcherOptions, type FetchSummary } from '../src/index.js';

const SIZE = 16 * 1024;
let work: { dir: string; remove(): Promise<void> };
let repo: TestRepo;
let server: RepoServer;
const closers: { close(): unknown }[] = [];
let events: FetchEvent[];

beforeEach(async () => {
  work = await scratchDir('faults');
  repo = await makeRepo(join(work.dir, 'repo'), 9, SIZE, 7000);
  server = await startRepoServer(repo.dir);
  closers.push(server);
  events = [];
});
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c.close();
  await work.remove();
});

const cacheDir = (): string => join(work.dir, 'cache');

async function fetchAll(options: Partial<FetcherOptions> = {}, signal?: AbortSignal): Promise<FetchSummary> {
  const f = await ChunkFetcher.open({ cacheDir: cacheDir(), sources: [server.url], minRetryMs: 20, maxRetryMs: 200, onEvent: (e) => events.push(e), ...options });
  closers.push(f);
  try {
    return await f.fetch(repo.chunks, signal ? { signal } : {});
  } finally {
    f.close();
  }
}

const failures = (): FerryError[] => events.flatMap((e) => (e.type === 'failure' ? [e.error] : []));
const firstRequest = { match: (r: { rangeStart: number | undefined }) => r.rangeStart === undefined };

/**
 * Every chunk verified, no partial left, and the bytes received are the payload plus what was
 * discarded (at most `extra`): every byte received and not discarded is in the cache.
 */
async function expectComplete(s: FetchSummary, extra = 0): Promise<void> {
  expect(await cacheHolds(cacheDir(), repo)).toBe(true);
  expect(s.progress.chunksDone).toBe(repo.chunks.length);
  expect(s.progress.link.bytesReceived - s.progress.link.bytesDiscarded).toBe(repo.payload);
  expect(s.progress.link.bytesDiscarded).toBeLessThanOrEqual(extra);
  await expectNoPartials();
}

async function expectNoPartials(): Promise<void> {
  expect(await readdir(join(cacheDir(), 'partial'))).toEqual([]);
}

async function until(ok: () => boolean): Promise<void> {
  while (!ok()) await delay(10);
}

describe('fetching through faults', () => {
  it('half of the answers are 500, 503 or 408 without Retry-After: retried with backoff, no byte wasted', async () => {
    server.faults.push({ fault: { kind: 'status', status: [500, 503, 408] }, rate: 0.5 });
    const s = await fetchAll();
    await expectComplete(s);
    expect(server.stats.statuses[500]! + server.stats.statuses[503]! + server.stats.statuses[408]!).toBe(server.stats.statuses[200]! - 1);
    expect(new Set(failures().map((e) => e.code))).toEqual(new Set(['FERRY_ERR_FETCH_HTTP']));
    expect(server.stats.bodyBytes).toBe(repo.payload);
  });

  it('honours Retry-After in seconds and as an HTTP date', async () => {
    const date = new Date(Date.now() + 2500).toUTCString();
    server.faults.push({ fault: { kind: 'status', status: 503, retryAfter: '1' }, times: 2 }, { fault: { kind: 'status', status: 429, retryAfter: date }, times: 1 });
    const s = await fetchAll();
    await expectComplete(s);
    const log = server.stats.log;
    const retried = log.flatMap((r, i) => (r.status === 503 || r.status === 429 ? [{ r, next: log.slice(i + 1).find((x) => x.hex === r.hex)! }] : []));
    expect(retried).toHaveLength(3);
    for (const { r, next } of retried) {
      if (r.status === 503) expect(next.at - r.at).toBeGreaterThanOrEqual(990);
      else expect(next.wall).toBeGreaterThanOrEqual(Date.parse(date) - 5);
    }
  });

  it('a stall before the first byte is detected, dropped and retried', async () => {
    server.faults.push({ fault: { kind: 'stall' }, times: 2 });
    const s = await fetchAll({ stallTimeoutMs: 300 });
    await expectComplete(s);
    expect(s.progress.link.stalls).toBe(2);
    expect(failures().filter((e) => e.code === 'FERRY_ERR_FETCH_STALLED')).toHaveLength(2);
  });

  it('a 1 byte/s trickle is dropped as a slow link and the next source resumes where it stopped', async () => {
    const good = await startRepoServer(repo.dir);
    closers.push(good);
    server.faults.push({ fault: { kind: 'trickle', bytesPerSecond: 1 } });
    const s = await fetchAll({ sources: [server.url, good.url], lowSpeedBytes: 100, lowSpeedWindowMs: 1500 });
    await expectComplete(s);
    expect(s.progress.link.stalls).toBeGreaterThanOrEqual(repo.chunks.length);
    expect(failures().every((e) => e.code === 'FERRY_ERR_FETCH_STALLED')).toBe(true);
    // bytes the trickle delivered were kept: the good source was asked only for the rest
    expect(good.stats.rangeStarts.length).toBeGreaterThan(0);
    expect(good.stats.bodyBytes + server.stats.bodyBytes).toBeGreaterThanOrEqual(repo.payload);
  });

  it('after an outage, the link is used again within one probe however long the backoff has grown', async () => {
    const link = await startSwitchLink(server.url);
    closers.push(link);
    // a 10-minute backoff: only the probe can end the wait before the test times out
    const fetching = fetchAll({ sources: [link.url], minRetryMs: 600_000, maxRetryMs: 600_000, probeMs: 50 });
    await until(() => link.refused >= 6); // every chunk failed at once, and probes kept knocking
    expect(server.stats.requests).toBe(0);
    link.up = true;
    const s = await fetching;
    await expectComplete(s);
    // the first request through is the probe (one byte of a chunk), then the chunks, each once
    expect(server.stats.log[0]).toMatchObject({ rangeStart: 0, status: 206 });
    expect(server.stats.log.slice(1).map((r) => [r.rangeStart, r.status])).toEqual(repo.chunks.map(() => [undefined, 200]));
  }, 20_000);

  it('a TCP reset mid-chunk resumes with Range and refetches no byte', async () => {
    server.faults.push({ fault: { kind: 'reset', afterBytes: 6000 }, ...firstRequest, times: repo.chunks.length });
    const s = await fetchAll();
    await expectComplete(s);
    expect(s.progress.link.bytesReceived).toBe(repo.payload);
    expect(s.progress.link.resets).toBeGreaterThanOrEqual(repo.chunks.length);
    expect(server.stats.rangeStarts.length).toBeGreaterThan(0);
    expect(server.stats.rangeStarts.every((start) => start > 0 && start <= 6000)).toBe(true);
  });

  it('a 200 answering a Range request restarts that chunk from byte 0, never appends', async () => {
    server.faults.push({ fault: { kind: 'reset', afterBytes: 5000 }, ...firstRequest, times: repo.chunks.length }, { fault: { kind: 'ignore-range' } });
    const s = await fetchAll();
    await expectComplete(s, repo.chunks.length * 5000);
    expect(s.progress.link.restarts).toBe(server.stats.rangeStarts.length);
    expect(server.stats.statuses[206]).toBeUndefined();
  });

  it('a 206 starting at the wrong offset is refused and the chunk restarted', async () => {
    server.faults.push({ fault: { kind: 'reset', afterBytes: 5000 }, ...firstRequest, times: repo.chunks.length }, { fault: { kind: 'wrong-offset', shift: -100 }, match: (r) => r.rangeStart !== undefined, times: 3 });
    const s = await fetchAll();
    await expectComplete(s, repo.chunks.length * 5000);
    expect(failures().filter((e) => e.code === 'FERRY_ERR_FETCH_RANGE')).toHaveLength(3);
    expect(s.progress.link.restarts).toBe(3);
  });

  it('another release\'s chunk at this URL is refused by its digest and fetched from the next source', async () => {
    const good = await startRepoServer(repo.dir);
    closers.push(good);
    const target = repo.chunks[4]!.digest.slice(7);
    server.faults.push({ fault: { kind: 'substitute', body: randomBytes(SIZE) }, match: (r) => r.hex === target });
    const s = await fetchAll({ sources: [server.url, good.url] });
    await expectComplete(s, SIZE);
    expect(s.progress.link.digestFailures).toBe(1);
    expect([...good.stats.bodyBytesByChunk]).toEqual([[target, SIZE]]);
    expect(events.some((e) => e.type === 'discard' && e.reason === 'digest mismatch')).toBe(true);
  });

  it('a flipped bit is caught by the digest; the chunk is discarded and fetched again from the same source', async () => {
    server.faults.push({ fault: { kind: 'flip-bit' }, times: 3 });
    const s = await fetchAll();
    await expectComplete(s, 3 * SIZE);
    expect(s.progress.link.digestFailures).toBe(3);
    expect(s.progress.link.bytesDiscarded).toBeGreaterThan(0);
  });

  it('an answer longer than the chunk is cut off and refused', async () => {
    server.faults.push({ fault: { kind: 'too-long', extra: 100_000 }, times: 1 });
    const s = await fetchAll();
    await expectComplete(s, SIZE + 100_000);
    expect(failures().map((e) => e.code)).toEqual(['FERRY_ERR_CHUNK_INVALID']);
    // reading stopped at the first read past the size, not at the end of the 116 KiB answer
    expect(s.progress.link.bytesDiscarded).toBeLessThan(SIZE + 100_000);
  });

  it('a truncated or garbage journal, and damaged partial bytes, restart only those chunks', async () => {
    server.faults.push({ fault: { kind: 'trickle', bytesPerSecond: 20_000 } });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 600);
    await fetchAll({ checkpointMs: 50 }, ac.signal).catch(() => undefined);
    server.faults.length = 0;
    const partial = join(cacheDir(), 'partial');
    const journals = (await readdir(partial)).filter((n) => n.endsWith('.journal')).map((n) => join(partial, n));
    expect(journals.length).toBe(3);
    await truncate(journals[0]!, 20); // truncated journal
    await writeFile(journals[1]!, randomBytes(48)); // garbage journal of the right length
    const data = await open(journals[2]!.replace(/\.journal$/, ''), 'r+'); // a damaged byte in the partial bytes
    await data.write(Buffer.from([0xff, 0x00, 0xff]), 0, 3, 10);
    await data.close();
    events = [];
    const cached = await readdir(join(cacheDir(), 'chunks'));
    const s = await fetchAll();
    expect(await cacheHolds(cacheDir(), repo)).toBe(true);
    await expectNoPartials();
    // the three damaged partials were dropped (their bytes counted as discarded) and fetched whole
    const cachedBytes = cached.reduce((n, hex) => n + repo.chunks.find((c) => c.digest.endsWith(hex))!.size, 0);
    expect(s.progress.link.bytesReceived).toBe(repo.payload - cachedBytes);
    const reasons = events.flatMap((e) => (e.type === 'discard' ? [e.reason] : [])).sort();
    expect(reasons).toEqual(['garbage journal', 'journal 20 bytes, not 48', 'partial bytes do not match their journal']);
    expect(s.progress.link.restarts).toBe(3);
  });
});
