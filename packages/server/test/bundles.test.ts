/**
 * Assignment and bundles: an agent holding v1 checks in for a channel whose release is v2, is told
 * "building", then gets the built bundle; a second agent with the same baseline shares it (built
 * once); the header is signed by the server's bundle key around the release engineer's
 * statement, and the bundle fetched over HTTP applies to a device store (same image ID).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store, applyBundle, chunkPath, decodeLimited, headerPath, inventoryDigest, openBundleDir, parseEnvelope, parsePublicKey, rolePolicy, verifyHeader, type CheckinAnswer, type Digest, type StoredImage } from '@ferry/core';
import { channelSummaries } from '../src/index.js';
import { agent, call, makeLayout, seedStore, signRelease, startTestServer, token, type TestServer } from './helpers.js';

let work: string;
let layout: string;
let t: TestServer;
let images: Record<'v1' | 'v2', StoredImage>;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-bundles-'));
  layout = await makeLayout(work);
  t = await startTestServer({ seed: (dir) => seedStore(dir, layout, ['v1', 'v2']).then(() => undefined), build: { pollMs: 100, workers: 1, level: 3 }, buildRetryAfter: 1 });
  const store = await Store.open(join(t.dir, 'store'));
  images = { v1: await store.resolve('app:v1'), v2: await store.resolve('app:v2') };
  const publisher = await token(t, 'publisher', 'ci');
  const r = await call(t.url, 'POST', '/v1/releases', { token: publisher, json: { envelope: signRelease(images.v2, t.releaseKey, 'stable', 2), urgent: true } });
  expect(r.status, r.text).toBe(201);
});

afterAll(async () => {
  await t?.close();
  await rm(work, { recursive: true, force: true });
});

const layersOf = (img: StoredImage): Digest[] => img.layers.map((l) => l.diffId);

async function checkin(id: string, tok: string, counter: number, layers: Digest[], installed: Record<string, { release: number; manifest: Digest }> = {}, srv = t): Promise<CheckinAnswer> {
  const a = await call(srv.url, 'POST', `/v1/agents/${id}/checkin`, { token: tok, json: { counter, channels: ['stable'], installed, inventory: { digest: inventoryDigest(layers), layers } } });
  expect(a.status, a.text).toBe(200);
  return a.json as CheckinAnswer;
}

async function untilReady(id: string, tok: string, first: number, layers: Digest[], srv = t): Promise<{ answer: CheckinAnswer; states: string[] }> {
  const states: string[] = [];
  for (let counter = first; counter < first + 600; counter++) {
    const answer = await checkin(id, tok, counter, layers, {}, srv);
    states.push(answer.assignments[0]!.state);
    if (answer.assignments[0]!.state !== 'building') return { answer, states };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('bundle never became ready');
}

async function download(url: string, path: string, to: string): Promise<Buffer> {
  const res = await fetch(`${url}${path}`);
  expect(res.status).toBe(200);
  expect(res.headers.get('etag')).toBe(`"${path.split('/').at(-1)}"`);
  const bytes = Buffer.from(await res.arrayBuffer());
  await mkdir(join(to, path, '..'), { recursive: true });
  await writeFile(join(to, path), bytes);
  return bytes;
}

/** The signed bytes of a header envelope, decoded: a version 4 wrapper or the plain document. */
function signedOf(envelope: Uint8Array): Record<string, unknown> {
  const { signed } = parseEnvelope('header', envelope);
  return decodeLimited(signed, { maxStrLength: 4096, maxBinLength: 1 << 24, maxArrayLength: 1 << 16, maxMapLength: 64 }, 'test') as Record<string, unknown>;
}

describe('assignment', () => {
  it('builds the bundle for an agent\'s baseline once, shares it, and it applies on the device', async () => {
    const tokA = await agent(t, 'edge-1');
    const tokB = await agent(t, 'edge-2');
    const v1 = layersOf(images.v1);
    const { answer, states } = await untilReady('edge-1', tokA, 1, v1);
    expect(states[0]).toBe('building');
    const a = answer.assignments[0]!;
    expect(a).toMatchObject({ channel: 'stable', release: 2, ref: 'app:v2', urgent: true, state: 'ready', repository: `${t.url}/repo/` });
    // same baseline: the same bundle at once, nothing rebuilt
    const b = (await checkin('edge-2', tokB, 1, v1)).assignments[0]!;
    expect(b.bundle?.id).toBe(a.bundle!.id);
    const rows = await t.server.state.bundles.list();
    expect(rows.map((r) => [r.state, r.builds])).toEqual([['ready', 1]]);
    expect(t.server.builder.built).toBe(1);

    // the header: the server's bundle key signed it around the engineer's release statement
    const dl = join(work, 'dl');
    const header = await download(a.repository!, headerPath(a.bundle!.id), dl);
    const trust = { release: rolePolicy([t.releaseKey.publicKey]), header: rolePolicy([parsePublicKey(await readFile(join(t.dir, 'keys', 'bundle.pub')))]) };
    const h = verifyHeader(header, { trust });
    expect([h.release.release, h.release.channel, h.chunks.length, h.payloadSize]).toEqual([2, 'stable', a.bundle!.chunks, a.bundle!.payloadSize]);
    expect(signedOf(header)).toMatchObject({ type: 'ferry-bundle', v: 4 });
    expect(() => verifyHeader(header, { trust: { ...trust, header: trust.release } })).toThrow(expect.objectContaining({ code: 'FERRY_ERR_SIGNATURE_INVALID' }));
    for (const c of new Set(h.chunks)) await download(a.repository!, chunkPath(c), dl);

    const device = await seedStore(join(work, 'device'), layout, ['v1']);
    const result = await applyBundle(device, await openBundleDir(dl, a.bundle!.id), { trust });
    expect(result.configDigest).toBe(images.v2.configDigest);
    expect((await device.resolve('app:v2')).configDigest).toBe(images.v2.configDigest);

    // once it runs the release, the agent is current
    const done = await checkin('edge-1', tokA, 1000, v1, { stable: { release: 2, manifest: images.v2.manifestDigest } });
    expect(done.assignments[0]!.state).toBe('current');
    const [stable] = await channelSummaries(t.server.state);
    expect([stable?.name, stable?.release?.release, stable?.agents, stable?.current]).toEqual(['stable', 2, 2, 1]);
  });

  it('an agent holding a superset of a built baseline gets that bundle; an unknown channel is "none"', async () => {
    const tok = await agent(t, 'edge-3');
    const more = [...layersOf(images.v1), ...layersOf(images.v2).slice(0, 1)];
    const a = (await checkin('edge-3', tok, 1, more)).assignments[0]!;
    expect(a.state).toBe('ready');
    const other = await call(t.url, 'POST', '/v1/agents/edge-3/checkin', { token: tok, json: { counter: 2, channels: ['nightly'], inventory: { digest: inventoryDigest(more) } } });
    expect(other.json.assignments[0]).toMatchObject({ channel: 'nightly', state: 'none' });
  });

  it('asks for the inventory when it does not know the digest', async () => {
    const tok = await agent(t, 'edge-4');
    const a = await call(t.url, 'POST', '/v1/agents/edge-4/checkin', { token: tok, json: { counter: 1, channels: ['stable'], inventory: { digest: inventoryDigest([images.v1.configDigest]) } } });
    expect([a.status, a.json.needInventory, a.json.assignments]).toEqual([200, true, []]);
  });

  it('a bundle that cannot be built is "none" with the reason, not "building" forever', async () => {
    const tok = await agent(t, 'edge-5');
    const publisher = await token(t, 'publisher', 'ci-2');
    expect((await call(t.url, 'POST', '/v1/releases', { token: publisher, json: { envelope: signRelease(images.v1, t.releaseKey, 'broken', 1) } })).status).toBe(201);
    // the server's store lost a content the full bundle needs
    const store = await Store.open(join(t.dir, 'store'));
    const skeleton = await store.openSkeleton(images.v1.layers[0]!.diffId);
    let victim: Digest | undefined;
    for await (const e of skeleton.entries) if (e.digest && !victim) victim = e.digest;
    await rm(store.contentPath(victim!));
    let state = 'building';
    let last: CheckinAnswer | undefined;
    for (let counter = 1; state === 'building' && counter < 600; counter++) {
      const r = await call(t.url, 'POST', '/v1/agents/edge-5/checkin', { token: tok, json: { counter, channels: ['broken'], inventory: { digest: inventoryDigest([]), layers: [] } } });
      last = r.json as CheckinAnswer;
      state = last.assignments[0]!.state;
      if (state === 'building') await new Promise((r2) => setTimeout(r2, 100));
    }
    expect(last!.assignments[0]).toMatchObject({ channel: 'broken', state: 'none', error: { code: 'FERRY_ERR_INTERNAL' } });
    expect(last!.assignments[0]!.error!.message).toContain(victim!);
  });
});

describe('build.plainHeader', () => {
  it('signs the plain header document, for agents older than header version 4; it applies', async () => {
    const p = await startTestServer({ seed: (dir) => seedStore(dir, layout, ['v1', 'v2']).then(() => undefined), build: { pollMs: 100, workers: 1, level: 3, plainHeader: true }, buildRetryAfter: 1 });
    try {
      const publisher = await token(p, 'publisher', 'ci');
      expect((await call(p.url, 'POST', '/v1/releases', { token: publisher, json: { envelope: signRelease(images.v2, p.releaseKey, 'stable', 2) } })).status).toBe(201);
      const tok = await agent(p, 'old-1');
      const a = (await untilReady('old-1', tok, 1, layersOf(images.v1), p)).answer.assignments[0]!;
      const dl = join(work, 'dl-plain');
      const header = await download(a.repository!, headerPath(a.bundle!.id), dl);
      const doc = signedOf(header);
      expect(doc.type).toBe('ferry-bundle');
      expect(doc.v).toBeLessThan(4);
      expect(doc).not.toHaveProperty('z');
      const trust = { release: rolePolicy([p.releaseKey.publicKey]), header: rolePolicy([parsePublicKey(await readFile(join(p.dir, 'keys', 'bundle.pub')))]) };
      for (const c of new Set(verifyHeader(header, { trust }).chunks)) await download(a.repository!, chunkPath(c), dl);
      const device = await seedStore(join(work, 'device-plain'), layout, ['v1']);
      expect((await applyBundle(device, await openBundleDir(dl, a.bundle!.id), { trust })).configDigest).toBe(images.v2.configDigest);
    } finally {
      await p.close();
    }
  });
});
