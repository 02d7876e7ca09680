/**
 * The operator API (docs/protocol.md section 5) on a real server, after real check-ins and
 * reports: every agent with its last report and staleness (an injected clock moves time), pages
 * of agents, one agent's history, each channel's target and how many agents run it, releases, and
 * bundles against docker pull (the compressed sizes the pushed image's source declared). Bad
 * requests get one code each and change nothing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store, inventoryDigest, openImage, parsePlatform, type Digest, type StoredImage } from '@ferry/core';
import { protocol } from '@ferry/core/protocol';
import { agent, call, makeLayout, report, seedStore, signRelease, startTestServer, statusCode, token, type TestServer } from './helpers.js';

let work: string;
let layout: string;
let t: TestServer;
let images: Record<'v1' | 'v2', StoredImage>;
let operator: string;
let publisher: string;
/** Added to the real time: the server's clock (a test moves it forward). */
let skew = 0;
const tokens: Record<string, string> = {};

const layersOf = (img: StoredImage): Digest[] => img.layers.map((l) => l.diffId);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-operator-'));
  layout = await makeLayout(work);
  t = await startTestServer({ seed: (dir) => seedStore(dir, layout, ['v1', 'v2']).then(() => undefined), build: { pollMs: 100, workers: 1, level: 3 }, buildRetryAfter: 1, checkinInterval: 60, now: () => Date.now() + skew, rateLimit: false });
  const store = await Store.open(join(t.dir, 'store'));
  images = { v1: await store.resolve('app:v1'), v2: await store.resolve('app:v2') };
  operator = await token(t, 'operator', 'ops');
  publisher = await token(t, 'publisher', 'ci');
  for (const id of ['edge-1', 'edge-2', 'edge-3']) tokens[id] = await agent(t, id);
});

afterAll(async () => {
  await t?.close();
  await rm(work, { recursive: true, force: true });
});

async function checkin(id: string, counter: number, layers: Digest[], installed = {}): Promise<any> {
  const a = await call(t.url, 'POST', `/v1/agents/${id}/checkin`, { token: tokens[id], json: { counter, channels: ['stable'], installed, inventory: { digest: inventoryDigest(layers), layers } } });
  expect(a.status, a.text).toBe(200);
  return a.json.assignments[0];
}

async function untilReady(id: string, first: number, layers: Digest[]): Promise<{ bundle: Digest; counter: number }> {
  for (let counter = first; counter < first + 600; counter++) {
    const a = await checkin(id, counter, layers);
    if (a.state === 'ready') return { bundle: a.bundle.id, counter };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the bundle was not built');
}

const get = async (path: string, tok = operator) => {
  const a = await call(t.url, 'GET', path, { token: tok });
  expect(a.status, a.text).toBe(200);
  return a.json;
};

describe('operator API', () => {
  let bundle: Digest;
  let declared: Map<Digest, number>;

  it('shows every agent, channel, release and bundle after real reports', async () => {
    // the push's last step declares the source's compressed layer sizes (as ferry push does)
    const source = await openImage(layout, { ref: 'v2', platform: parsePlatform('linux/amd64') });
    declared = new Map(source.layers.map((l) => [l.diffId, l.size!]));
    const layers = source.layers.map((l) => ({ diffId: l.diffId, mediaType: l.mediaType!, size: l.size! }));
    expect((await call(t.url, 'PUT', '/v1/refs/app:v2', { token: publisher, json: { manifest: images.v2.manifestDigest, source: { layers } } })).status).toBe(200);
    expect((await call(t.url, 'POST', '/v1/releases', { token: publisher, json: { envelope: signRelease(images.v2, t.releaseKey, 'stable', 1) } })).status).toBe(201);

    const v1 = layersOf(images.v1);
    const ready = await untilReady('edge-1', 1, v1);
    bundle = ready.bundle;
    const link = { bytesReceived: 4000, requests: 3, failures: 1, stalls: 0, resets: 1, rtt: 0.5 };
    const error = { code: 'FERRY_ERR_NETWORK', message: 'connection reset' };
    const r = await call(t.url, 'POST', '/v1/agents/edge-1/reports', { token: tokens['edge-1'], json: { counter: ready.counter + 2, reports: [report(ready.counter + 1, { state: 'fetching', channel: 'stable', release: 1, bundle, bytesDone: 3000, bytesTotal: 10_000, chunksDone: 1, chunksTotal: 4, rate: 1500, eta: 5, error, link })] } });
    expect(r.json).toEqual({ accepted: 1, dropped: 0 });
    await checkin('edge-2', 1, layersOf(images.v2), { stable: { release: 1, manifest: images.v2.manifestDigest } });
    await call(t.url, 'POST', '/v1/agents/edge-2/reports', { token: tokens['edge-2'], json: { counter: 3, reports: [report(2, { state: 'committed', channel: 'stable', release: 1, bytesDone: 10, bytesTotal: 10 })] } });

    const list = protocol.agentsAnswer(await get('/v1/agents'));
    expect(list.agents.map((a) => [a.id, a.state, a.stale])).toEqual([['edge-1', 'fetching', false], ['edge-2', 'committed', false], ['edge-3', 'new', false]]);
    const e1 = list.agents[0]!;
    expect([e1.channel, e1.release, e1.bundle, e1.bytesDone, e1.bytesTotal, e1.chunksDone, e1.chunksTotal, e1.rate, e1.eta]).toEqual(['stable', 1, bundle, 3000, 10_000, 1, 4, 1500, 5]);
    expect([e1.error, e1.link, e1.interval]).toEqual([error, link, 60]);
    expect(Math.abs(e1.lastSeen! - list.now)).toBeLessThanOrEqual(2);
    expect(e1.staleAt).toBe(e1.lastSeen! + 180);
    expect(list.agents[2]!.lastSeen).toBeNull();
    expect(list.next).toBeNull();

    const detail = protocol.agentDetailAnswer(await get('/v1/agents/edge-1'));
    expect([detail.inventory?.digest, detail.inventory?.layers, detail.reports.map((x) => x.bytesDone)]).toEqual([inventoryDigest(v1), new Set(v1).size, [3000]]);

    const channels = protocol.channelsAnswer(await get('/v1/channels'));
    expect(channels.channels.map((c) => [c.name, c.release?.release, c.release?.ref, c.release?.config, c.release?.urgent, c.agents, c.current])).toEqual([['stable', 1, 'app:v2', images.v2.configDigest, false, 2, 1]]);
    expect(protocol.releasesAnswer(await get('/v1/releases')).releases.map((x) => [x.channel, x.release])).toEqual([['stable', 1]]);

    const bundles = protocol.bundlesAnswer(await get('/v1/bundles'));
    const b = bundles.bundles.find((x) => x.id === bundle)!;
    const rebuilt = layersOf(images.v2).filter((d) => !v1.includes(d));
    const pull = rebuilt.reduce((a, d) => a + declared.get(d)!, 0);
    expect([b.state, b.ref, b.agents, b.baseline]).toEqual(['ready', 'app:v2', 1, new Set(v1).size]);
    expect(b.vsPull).toEqual({ transfer: b.payloadSize! + b.headerSize!, pull, saved: pull - b.payloadSize! - b.headerSize! });
    expect(bundles.totals.fleet).toEqual({ ...b.vsPull, agents: 1 });
    expect(bundles.totals.bundles).toEqual({ ...b.vsPull, count: 1 });
  });

  it('pages through agents by id', async () => {
    const first = protocol.agentsAnswer(await get('/v1/agents?limit=2'));
    expect([first.agents.map((a) => a.id), first.next]).toEqual([['edge-1', 'edge-2'], 'edge-2']);
    const rest = protocol.agentsAnswer(await get(`/v1/agents?limit=2&after=${first.next}`));
    expect([rest.agents.map((a) => a.id), rest.next]).toEqual([['edge-3'], null]);
  });

  it('marks an agent stale once it misses 3 of its check-in intervals', async () => {
    const before = protocol.agentsAnswer(await get('/v1/agents')).agents.find((a) => a.id === 'edge-2')!;
    // edge-2 was told to come back in 60 s; just before 3 intervals it is not stale, after it is
    skew += (before.staleAt! - before.lastSeen! - 2) * 1000;
    expect(protocol.agentsAnswer(await get('/v1/agents')).agents.find((a) => a.id === 'edge-2')!.stale).toBe(false);
    skew += 4000;
    const after = protocol.agentsAnswer(await get('/v1/agents')).agents;
    expect(after.filter((a) => a.stale).map((a) => a.id)).toEqual(['edge-1', 'edge-2']);
    // a check-in makes it fresh again
    await checkin('edge-2', 10, layersOf(images.v2), { stable: { release: 1, manifest: images.v2.manifestDigest } });
    expect(protocol.agentsAnswer(await get('/v1/agents')).agents.find((a) => a.id === 'edge-2')!.stale).toBe(false);
  });

  it('refuses other tokens and malformed requests with one code each', async () => {
    expect(statusCode(await call(t.url, 'GET', '/v1/agents'))).toEqual([401, 'FERRY_ERR_AUTH_REQUIRED']);
    expect(statusCode(await call(t.url, 'GET', '/v1/bundles', { token: tokens['edge-1'] }))).toEqual([403, 'FERRY_ERR_AUTH_FORBIDDEN']);
    expect(statusCode(await call(t.url, 'GET', '/v1/agents?limit=0', { token: operator }))).toEqual([400, 'FERRY_ERR_PROTOCOL_INVALID']);
    expect(statusCode(await call(t.url, 'GET', '/v1/agents?limit=1001', { token: operator }))).toEqual([400, 'FERRY_ERR_PROTOCOL_INVALID']);
    expect(statusCode(await call(t.url, 'GET', '/v1/agents?after=..%2Fx', { token: operator }))).toEqual([400, 'FERRY_ERR_PROTOCOL_INVALID']);
    expect(statusCode(await call(t.url, 'GET', '/v1/agents/edge-9', { token: operator }))).toEqual([404, 'FERRY_ERR_NOT_FOUND']);
    expect(statusCode(await call(t.url, 'GET', '/v1/agents/Not_An_Id', { token: operator }))).toEqual([400, 'FERRY_ERR_PROTOCOL_INVALID']);
    // publisher and admin tokens read the views too
    expect((await call(t.url, 'GET', '/v1/channels', { token: publisher })).status).toBe(200);
    expect((await call(t.url, 'GET', '/v1/channels', { token: t.admin })).status).toBe(200);
  });

  it('refuses declared source layers that are not the image\'s, and keeps the ones it had', async () => {
    const stranger = { diffId: `sha256:${'e'.repeat(64)}`, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: 5 };
    const a = await call(t.url, 'PUT', '/v1/refs/app:v2', { token: publisher, json: { manifest: images.v2.manifestDigest, source: { layers: [stranger] } } });
    expect(statusCode(a)).toEqual([400, 'FERRY_ERR_PROTOCOL_INVALID']);
    const kept = (await t.server.state.images.sourceLayers([images.v2.manifestDigest])).get(images.v2.manifestDigest)!;
    expect([...kept.values()].map((l) => l.size).sort()).toEqual([...declared.values()].sort());
  });
});
