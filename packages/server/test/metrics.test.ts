/**
 * Prometheus metrics at /metrics on a real server: the numbers move with what happens (requests
 * by route and status, check-in latency observations, agents by state, repository bytes sent,
 * bundles built and their build time), and the endpoint needs a token.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store, inventoryDigest, type Digest, type StoredImage } from '@ferry/core';
import { agent, call, makeLayout, report, seedStore, signRelease, startTestServer, statusCode, token, type TestServer } from './helpers.js';

let work: string;
let t: TestServer;
let operator: string;
let images: Record<'v1' | 'v2', StoredImage>;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-metrics-'));
  const layout = await makeLayout(work);
  t = await startTestServer({ seed: (dir) => seedStore(dir, layout, ['v1', 'v2']).then(() => undefined), build: { pollMs: 100, workers: 1, level: 3 }, buildRetryAfter: 1, rateLimit: false });
  const store = await Store.open(join(t.dir, 'store'));
  images = { v1: await store.resolve('app:v1'), v2: await store.resolve('app:v2') };
  operator = await token(t, 'operator', 'ops');
});

afterAll(async () => {
  await t?.close();
  await rm(work, { recursive: true, force: true });
});

/** Every sample of a scrape, by `name{labels}` as Prometheus prints it. */
async function scrape(): Promise<Map<string, number>> {
  const a = await call(t.url, 'GET', '/metrics', { token: operator });
  expect(a.status).toBe(200);
  expect(a.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const out = new Map<string, number>();
  for (const line of a.text.split('\n')) {
    const m = /^([a-z_:]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

const CHECKINS = 'ferry_http_requests_total{method="POST",route="/v1/agents/:id/checkin",status="200"}';
const v = (m: Map<string, number>, key: string): number => m.get(key) ?? 0;

describe('metrics', () => {
  it('need an operator, publisher or admin token', async () => {
    expect(statusCode(await call(t.url, 'GET', '/metrics'))).toEqual([401, 'FERRY_ERR_AUTH_REQUIRED']);
  });

  it('count requests, check-in latency, agents by state and bundles built as they happen', async () => {
    const before = await scrape();
    const tok = await agent(t, 'edge-1');
    const publisher = await token(t, 'publisher', 'ci');
    expect((await call(t.url, 'POST', '/v1/releases', { token: publisher, json: { envelope: signRelease(images.v2, t.releaseKey, 'stable', 1) } })).status).toBe(201);
    const layers: Digest[] = images.v1.layers.map((l) => l.diffId);
    let checkins = 0;
    let state = '';
    for (let counter = 1; state !== 'ready' && counter < 600; counter++) {
      const a = await call(t.url, 'POST', '/v1/agents/edge-1/checkin', { token: tok, json: { counter, channels: ['stable'], inventory: { digest: inventoryDigest(layers), layers } } });
      checkins++;
      state = a.json.assignments[0].state;
      if (state !== 'ready') await new Promise((r) => setTimeout(r, 100));
    }
    expect(statusCode(await call(t.url, 'POST', '/v1/agents/edge-1/checkin', { token: tok, json: { counter: 1, channels: ['stable'], inventory: { digest: inventoryDigest(layers) } } }))).toEqual([409, 'FERRY_ERR_PROTOCOL_REPLAY']);
    await call(t.url, 'POST', '/v1/agents/edge-1/reports', { token: tok, json: { counter: 1000, reports: [report(999, { state: 'fetching' })] } });

    const after = await scrape();
    expect(v(after, CHECKINS) - v(before, CHECKINS)).toBe(checkins);
    expect(v(after, 'ferry_http_requests_total{method="POST",route="/v1/agents/:id/checkin",status="409"}')).toBe(1);
    expect(v(after, 'ferry_checkin_duration_seconds_count') - v(before, 'ferry_checkin_duration_seconds_count')).toBe(checkins);
    expect(v(after, 'ferry_checkin_duration_seconds_bucket{le="+Inf"}')).toBe(v(after, 'ferry_checkin_duration_seconds_count'));
    expect(v(after, 'ferry_bundles_built_total{result="ready"}')).toBe(1);
    expect(v(after, 'ferry_bundle_build_seconds_count')).toBe(1);
    expect(v(after, 'ferry_bundle_build_seconds_sum')).toBeGreaterThan(0);
    expect(v(after, 'ferry_agents{state="fetching"}')).toBe(1);

    await call(t.url, 'POST', '/v1/agents/edge-1/reports', { token: tok, json: { counter: 1002, reports: [report(1001, { state: 'committed' })] } });
    const done = await scrape();
    expect([v(done, 'ferry_agents{state="fetching"}'), v(done, 'ferry_agents{state="committed"}')]).toEqual([0, 1]);
  });

  it('count the bytes of repository responses sent in full, ranges included', async () => {
    const bytes = randomBytes(50_000);
    const hex = createHash('sha256').update(bytes).digest('hex');
    await writeFile(join(t.dir, 'repo', 'chunks', hex), bytes);
    const key = 'ferry_repo_bytes_served_total{kind="chunks"}';
    const before = v(await scrape(), key);
    expect((await call(t.url, 'GET', `/repo/chunks/${hex}`)).status).toBe(200);
    expect((await call(t.url, 'GET', `/repo/chunks/${hex}`, { headers: { range: 'bytes=100-199' } })).status).toBe(206);
    expect((await call(t.url, 'HEAD', `/repo/chunks/${hex}`)).status).toBe(200);
    expect((await call(t.url, 'GET', `/repo/chunks/${'0'.repeat(64)}`)).status).toBe(404);
    const after = await scrape();
    expect(v(after, key) - before).toBe(50_000 + 100);
    expect(v(after, 'ferry_http_requests_total{method="GET",route="/repo/:kind/:hex",status="404"}')).toBe(1);
  });
});
