/**
 * Check-ins and reports through the relay, against a small recording upstream on port 0 that can be
 * stopped and started again on the same port (upstream down, then back).
 */
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { scratchDir } from '@ferry/test-support';
import { startRelay, type RunningRelay } from '../src/index.js';

interface Seen {
  path: string;
  auth: string | undefined;
  body: { counter: number; reports?: { counter: number }[] };
}

/** Answers check-ins with one ready assignment and records every request. */
class FakeUpstream {
  seen: Seen[] = [];
  port = 0;
  private server: Server | undefined;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let text = '';
      req.on('data', (d: Buffer) => (text += d.toString()));
      req.on('end', () => {
        const body = JSON.parse(text) as Seen['body'];
        this.seen.push({ path: req.url ?? '', auth: req.headers.authorization, body });
        res.setHeader('content-type', 'application/json');
        if (req.headers.authorization !== 'Bearer fya_good') {
          res.statusCode = 401;
          return void res.end(JSON.stringify({ error: { code: 'FERRY_ERR_AUTH_REQUIRED', message: 'unknown token' } }));
        }
        if (req.url?.endsWith('/reports')) return void res.end(JSON.stringify({ accepted: body.reports?.length ?? 0, dropped: 0 }));
        const bundle = { id: `sha256:${'a'.repeat(64)}`, payloadSize: 10, chunkSize: 65536, chunks: 1, baseline: 1 };
        res.end(JSON.stringify({ now: 1, retryAfter: 60, needInventory: false, assignments: [{ channel: 'stable', state: 'ready', release: 2, ref: 'app:v2', urgent: false, bundle, repository: 'http://elsewhere/repo/' }] }));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

let work: { dir: string; remove(): Promise<void> };
let up: FakeUpstream;
const relays: RunningRelay[] = [];

beforeEach(async () => {
  work = await scratchDir('relay-agents');
  up = new FakeUpstream();
  await up.start();
});
afterEach(async () => {
  for (const r of relays.splice(0)) await r.close();
  await up.stop();
  await work.remove();
});

async function relay(): Promise<RunningRelay> {
  const r = await startRelay({ upstream: `http://127.0.0.1:${up.port}`, cacheDir: join(work.dir, 'cache'), host: '127.0.0.1', port: 0, upstreamTimeoutMs: 2000, retryAfterSeconds: 7 });
  relays.push(r);
  return r;
}

const report = (counter: number) => ({ counter, at: '2026-12-01T12:00:00.000Z', state: 'fetching', bytesDone: counter, bytesTotal: 100, chunksDone: 0, chunksTotal: 1, rate: 0, eta: null, error: null });
const checkin = (counter: number, reports: number[] = []) => ({ counter, channels: ['stable'], inventory: { digest: `sha256:${'b'.repeat(64)}` }, reports: reports.map(report) });

async function post(r: RunningRelay, path: string, body: unknown, token = 'fya_good'): Promise<{ status: number; headers: Headers; json: any }> {
  const res = await fetch(`${r.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, json: await res.json() };
}

describe('relay: agent API', () => {
  it('forwards check-ins with the token, announces its own repository, and passes upstream errors through', async () => {
    const r = await relay();
    const a = await post(r, '/v1/agents/edge-1/checkin', checkin(1));
    expect(a.status).toBe(200);
    expect(a.json.assignments[0].repository).toBe(`${r.url}/repo/`);
    expect(up.seen).toEqual([{ path: '/v1/agents/edge-1/checkin', auth: 'Bearer fya_good', body: expect.objectContaining({ counter: 1 }) }]);
    const denied = await post(r, '/v1/agents/edge-1/checkin', checkin(2), 'fya_bad');
    expect(denied.status).toBe(401);
    expect(denied.json.error.code).toBe('FERRY_ERR_AUTH_REQUIRED');
    const malformed = await post(r, '/v1/agents/edge-1/checkin', { counter: 'x' });
    expect(malformed.status).toBe(400);
    expect(up.seen).toHaveLength(2);
  });

  it('buffers reports durably while upstream is down and delivers them in order when it returns, across a relay restart', async () => {
    let r = await relay();
    expect((await post(r, '/v1/agents/edge-1/checkin', checkin(1))).status).toBe(200);
    await up.stop();
    for (const c of [2, 3, 4]) {
      const q = await post(r, '/v1/agents/edge-1/reports', { counter: c, reports: [report(c)] });
      expect(q.status).toBe(202);
      expect(q.json).toMatchObject({ accepted: 0, queued: 1 });
    }
    // a check-in like the last one gets the remembered answer; its reports are queued too
    const stale = await post(r, '/v1/agents/edge-1/checkin', checkin(5, [5]));
    expect(stale.status).toBe(200);
    expect(stale.headers.get('x-ferry-relay')).toBe('stale');
    expect(stale.json.assignments[0]).toMatchObject({ state: 'ready', release: 2, repository: `${r.url}/repo/` });
    // another token, or another question, gets a retryable 503
    const other = await post(r, '/v1/agents/edge-1/checkin', checkin(6), 'fya_other');
    expect(other.status).toBe(503);
    expect(other.headers.get('retry-after')).toBe('7');
    expect(other.json.error.code).toBe('FERRY_ERR_UPSTREAM_UNAVAILABLE');
    expect((await post(r, '/v1/agents/edge-2/checkin', checkin(1))).status).toBe(503);
    expect(r.queue.length).toBe(4);

    await r.close();
    relays.length = 0;
    r = await relay();
    expect(r.queue.length).toBe(4);
    expect(await r.drain()).toBe(false); // still down
    await up.start();
    const before = up.seen.length;
    const next = await post(r, '/v1/agents/edge-1/reports', { counter: 7, reports: [report(7)] });
    expect(next.status).toBe(200);
    const after = up.seen.slice(before);
    expect(after.map((s) => s.body.counter)).toEqual([2, 3, 4, 5, 7]);
    expect(after.every((s) => s.path === '/v1/agents/edge-1/reports' && s.auth === 'Bearer fya_good')).toBe(true);
    expect(r.queue.length).toBe(0);
  });

  it('bounds the report queue: past it, reports are refused with a retryable 503 and the agent keeps them', async () => {
    const r = await startRelay({ upstream: `http://127.0.0.1:${up.port}`, cacheDir: join(work.dir, 'cache'), host: '127.0.0.1', port: 0, maxQueuedRequests: 2, upstreamTimeoutMs: 2000 });
    relays.push(r);
    await up.stop();
    expect((await post(r, '/v1/agents/edge-1/reports', { counter: 1, reports: [report(1)] })).status).toBe(202);
    expect((await post(r, '/v1/agents/edge-1/reports', { counter: 2, reports: [report(2)] })).status).toBe(202);
    const full = await post(r, '/v1/agents/edge-1/reports', { counter: 3, reports: [report(3)] });
    expect(full.status).toBe(503);
    expect(full.json.error.code).toBe('FERRY_ERR_UPSTREAM_UNAVAILABLE');
    expect(r.queue.length).toBe(2);
  });
});
