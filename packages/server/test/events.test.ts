/**
 * The dashboard's live feed, `GET /v1/events`, on a real server: a snapshot first, then an
 * agent's new state after its report or check-in and the channel list after a release; tokens in
 * the query checked like headers and never logged; the number of streams bounded; a client that
 * stops reading dropped once its buffer passes the cap; closing the server ends the streams.
 */
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store, inventoryDigest } from '@ferry/core';
import { agent, call, makeLayout, openEvents, report, seedStore, signRelease, startTestServer, statusCode, token, type TestServer } from './helpers.js';

let work: string;
let t: TestServer;
let operator: string;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-events-'));
  const layout = await makeLayout(work);
  t = await startTestServer({ seed: (dir) => seedStore(dir, layout, ['v2']).then(() => undefined), rateLimit: false, events: { maxClients: 2, flushMs: 30, heartbeatMs: 200, summaryMs: 50, maxBuffered: 32 * 1024 } });
  operator = await token(t, 'operator', 'ops');
  for (const id of ['edge-a', 'edge-b']) tokens[id] = await agent(t, id);
});

afterAll(async () => {
  await t?.close();
  await rm(work, { recursive: true, force: true });
});

const post = (id: string, counter: number, fields: Parameters<typeof report>[1]) => call(t.url, 'POST', `/v1/agents/${id}/reports`, { token: tokens[id], json: { counter: counter + 1, reports: [report(counter, fields)] } });

async function openStreams(): Promise<number> {
  const text = (await call(t.url, 'GET', '/metrics', { token: operator })).text;
  return Number(/^ferry_dashboard_clients (\d+)/m.exec(text)?.[1]);
}

describe('live events', () => {
  it('start with a snapshot, then carry each agent\'s new state and the channels after a release', async () => {
    const s = await openEvents(t.url, operator);
    try {
      expect(s.status).toBe(200);
      const snap = await s.next((e) => e.event === 'snapshot');
      expect(snap.data.agents.map((a: { id: string; state: string }) => [a.id, a.state])).toEqual([['edge-a', 'new'], ['edge-b', 'new']]);
      expect(typeof snap.data.now).toBe('number');

      await post('edge-a', 1, { bytesDone: 100, bytesTotal: 1000 });
      const first = await s.next((e) => e.event === 'agent' && e.data.id === 'edge-a');
      expect([first.data.state, first.data.bytesDone, first.data.bytesTotal]).toEqual(['fetching', 100, 1000]);
      await post('edge-a', 3, { bytesDone: 900, bytesTotal: 1000 });
      expect((await s.next((e) => e.event === 'agent' && e.data.id === 'edge-a')).data.bytesDone).toBe(900);

      const layers = [`sha256:${'a'.repeat(64)}`];
      await call(t.url, 'POST', '/v1/agents/edge-b/checkin', { token: tokens['edge-b'], json: { counter: 1, channels: ['stable'], inventory: { digest: inventoryDigest(layers), layers } } });
      const seen = await s.next((e) => e.event === 'agent' && e.data.id === 'edge-b');
      expect([seen.data.state, seen.data.channels, seen.data.lastSeen !== null]).toEqual(['unknown', ['stable'], true]);

      const image = await (await Store.open(join(t.dir, 'store'))).resolve('app:v2');
      const publisher = await token(t, 'publisher', 'ci');
      expect((await call(t.url, 'POST', '/v1/releases', { token: publisher, json: { envelope: signRelease(image, t.releaseKey, 'stable', 1) } })).status).toBe(201);
      const channels = await s.next((e) => e.event === 'channels' && e.data.some((c: { release: unknown }) => c.release !== null));
      expect(channels.data.map((c: { name: string; release: { release: number }; agents: number }) => [c.name, c.release.release, c.agents])).toEqual([['stable', 1, 1]]);
      expect((await s.next((e) => e.event === 'now')).data.now).toBeGreaterThan(0);
    } finally {
      s.close();
    }
  });

  it('check the token in the query, bound the number of streams, and keep tokens out of the log', async () => {
    expect(statusCode(await call(t.url, 'GET', '/v1/events'))).toEqual([401, 'FERRY_ERR_AUTH_REQUIRED']);
    const asAgent = await fetch(`${t.url}/v1/events?token=${tokens['edge-a']}`);
    expect([asAgent.status, (await asAgent.json()).error.code]).toEqual([403, 'FERRY_ERR_AUTH_FORBIDDEN']);
    const unknown = await fetch(`${t.url}/v1/events?token=fyo_nosuchtoken`);
    expect([unknown.status, (await unknown.json()).error.code]).toEqual([401, 'FERRY_ERR_AUTH_REQUIRED']);
    // a header works as well as the query
    const withHeader = await fetch(`${t.url}/v1/events`, { headers: { authorization: `Bearer ${operator}` } });
    expect(withHeader.status).toBe(200);
    await withHeader.body?.cancel();

    const streams = [await openEvents(t.url, operator), await openEvents(t.url, operator)];
    try {
      await Promise.all(streams.map((s) => s.next((e) => e.event === 'snapshot')));
      const third = await fetch(`${t.url}/v1/events?token=${operator}`);
      expect([third.status, (await third.json()).error.code, Number(third.headers.get('retry-after')) > 0]).toEqual([503, 'FERRY_ERR_SERVER_BUSY', true]);
    } finally {
      for (const s of streams) s.close();
    }

    const lines: string[] = [];
    // requests are logged at debug (errors at info and error, whatever the level)
    const logged = await startTestServer({ logger: { level: 'debug', stream: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }) } });
    try {
      const op = await token(logged, 'operator', 'ops');
      const s = await openEvents(logged.url, op);
      await s.next((e) => e.event === 'snapshot');
      s.close();
    } finally {
      await logged.close();
    }
    const urls = lines.map((l) => JSON.parse(l) as { req?: { url?: string } }).filter((l) => l.req?.url?.startsWith('/v1/events'));
    expect(urls.map((l) => l.req!.url)).toEqual(['/v1/events?token=[redacted]']);
  });

  it('drop a client that stops reading once its socket buffer passes the cap', async () => {
    await expect.poll(openStreams).toBe(0);
    const sock = connect(Number(new URL(t.url).port), '127.0.0.1');
    await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
    sock.write(`GET /v1/events?token=${operator} HTTP/1.1\r\nHost: x\r\n\r\n`);
    sock.pause(); // reads nothing from now on: the kernel buffers fill, then the server's
    let closed = false;
    sock.on('close', () => (closed = true));
    sock.on('error', () => {});
    sock.on('end', () => sock.destroy());
    await expect.poll(openStreams).toBe(1);
    // a client that reads everything stays through the same traffic
    const stop = new AbortController();
    const healthy = await fetch(`${t.url}/v1/events?token=${operator}`, { signal: stop.signal });
    let received = 0;
    const draining = (async () => {
      for await (const c of healthy.body as unknown as AsyncIterable<Uint8Array>) received += c.length;
    })().catch(() => {});
    await expect.poll(openStreams).toBe(2);
    // each check-in naming 64 long channels, each installed, makes an agent event of about 22 KB; six agents check in at once
    const ids = ['edge-a', 'edge-b'];
    for (const id of ['edge-c', 'edge-d', 'edge-e', 'edge-f']) (tokens[id] = await agent(t, id)), ids.push(id);
    const channels = Array.from({ length: 64 }, (_, i) => `${'c'.repeat(120)}-${i}`);
    const layers = [`sha256:${'b'.repeat(64)}`];
    const installed = Object.fromEntries(channels.map((c) => [c, { release: 1, manifest: layers[0] }]));
    for (let i = 0; i < 500 && (i % 5 !== 0 || (await openStreams()) === 2); i++) {
      await Promise.all(ids.map((id) => call(t.url, 'POST', `/v1/agents/${id}/checkin`, { token: tokens[id], json: { counter: 100 + i, channels, installed, inventory: { digest: inventoryDigest(layers), layers } } })));
    }
    expect(await openStreams()).toBe(1);
    // the server closed it: once the client reads again, its stream ends
    sock.resume();
    await expect.poll(() => closed).toBe(true);
    expect(received).toBeGreaterThan(256 * 1024);
    stop.abort();
    await draining;
    await expect.poll(openStreams).toBe(0);
  });

  it('end open streams when the server closes', async () => {
    const own = await startTestServer({ events: { heartbeatMs: 60_000 } });
    const op = await token(own, 'operator', 'ops');
    const s = await openEvents(own.url, op);
    await s.next((e) => e.event === 'snapshot');
    await own.close();
    await expect(s.next((e) => e.event === 'agent')).rejects.toThrow();
  });
});
