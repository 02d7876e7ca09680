/**
 * End to end through a relay in front of a real `ferry serve`: the engineer pushes two versions and
 * releases v2; two agents holding v1 check in through the relay (which announces its own
 * repository), fetch the header and the chunks from it at the same moment with the agent's
 * ChunkFetcher, and apply them: the image ID is the publisher's, and the relay fetched each object
 * from the server once. Slow (two devices, a real bundle build): behind FERRY_SLOW_TESTS=1.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkFetcher } from '@ferry/agent';
import { ApiClient, Store, applyBundle, chunkLength, headerPath, inventoryDigest, openBundleDir, parsePublicKey, rolePolicy, verifyHeader, type CheckinAnswer } from '@ferry/core';
import { protocol } from '@ferry/core/protocol';
import { startRelay, type RunningRelay } from '@ferry/relay';
import { startServer, type RunningServer } from '@ferry/server';
import { writeImagePair } from '@ferry/imagegen';
import { ensureBuilt, ferryJsonOk as ferryJson } from '@ferry/test-support';

let work: string;
let server: RunningServer;
let relay: RunningRelay;

beforeAll(async () => {
  if (!process.env.FERRY_SLOW_TESTS) return;
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'ferry-relay-e2e-'));
  await writeImagePair(join(work, 'oci'), { targetBytes: 1024 * 1024, tags: ['v1', 'v2'], platform: 'linux/amd64' });
  await ferryJson(['keygen', '--out', join(work, 'release')]);
  server = await startServer({ dataDir: join(work, 'data'), port: 0, logger: false, releaseKeys: [parsePublicKey(await readFile(join(work, 'release.pub')))], build: { pollMs: 100, level: 3, chunkSize: 16 * 1024 }, buildRetryAfter: 1 });
  relay = await startRelay({ upstream: server.url, cacheDir: join(work, 'relay'), host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await relay?.close();
  await server?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

/** One device: checks in through the relay until its bundle is ready, fetches it from the relay, applies it. */
async function device(name: string, token: string, trust: Parameters<typeof verifyHeader>[1]['trust']): Promise<{ config: string; repository: string | undefined; chunks: string[] }> {
  const store = await Store.open(join(work, name), { create: true });
  await ferryJson(['import', `${join(work, 'oci')}:v1`, '--ref', 'app:v1', '--store', store.root, '--platform', 'linux/amd64']);
  const layers = (await store.resolve('app:v1')).layers.map((l) => l.diffId);
  const client = new ApiClient({ server: relay.url, token });
  let answer: CheckinAnswer | undefined;
  for (let counter = 1; counter < 600; counter++) {
    answer = protocol.checkinAnswer((await client.request({ method: 'POST', path: `/v1/agents/${name}/checkin`, json: { counter, channels: ['stable'], inventory: { digest: inventoryDigest(layers), layers } } })).body);
    if (answer.assignments[0]!.state !== 'building') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const a = answer!.assignments[0]!;
  const cache = join(work, `${name}-cache`);
  const res = await fetch(`${a.repository}${headerPath(a.bundle!.id)}`);
  const headerBytes = Buffer.from(await res.arrayBuffer());
  await mkdir(join(cache, 'headers'), { recursive: true });
  await writeFile(join(cache, headerPath(a.bundle!.id)), headerBytes);
  const h = verifyHeader(headerBytes, { trust });
  const fetcher = await ChunkFetcher.open({ cacheDir: cache, sources: [a.repository!] });
  try {
    await fetcher.fetch(h.chunks.map((digest, i) => ({ digest, size: chunkLength(h, i) })));
  } finally {
    fetcher.close();
  }
  const result = await applyBundle(store, await openBundleDir(cache, a.bundle!.id), { trust, channel: 'stable' });
  return { config: result.configDigest, repository: a.repository, chunks: h.chunks };
}

describe.skipIf(!process.env.FERRY_SLOW_TESTS)('agents through a relay', () => {
  it('two agents holding v1 end up with the exact v2, every object crossing the upstream link once', async () => {
    const remote = ['--server', server.url];
    const publisher = (await ferryJson(['tokens', 'add', '--role', 'publisher', '--name', 'ci', ...remote, '--token', server.admin.token])).token as string;
    const pub = ['--store', join(work, 'cache'), ...remote, '--token', publisher, '--platform', 'linux/amd64'];
    await ferryJson(['push', `${join(work, 'oci')}:v1`, '--ref', 'app:v1', ...pub]);
    const p2 = await ferryJson(['push', `${join(work, 'oci')}:v2`, '--ref', 'app:v2', ...pub]);
    await ferryJson(['release', 'app:v2', '--channel', 'stable', '--key', join(work, 'release.key'), '--store', join(work, 'cache'), ...remote, '--token', publisher]);
    const tokens = [];
    for (const id of ['edge-1', 'edge-2']) tokens.push((await ferryJson(['agents', 'add', id, ...remote, '--token', server.admin.token])).token as string);
    const trust = { release: rolePolicy([parsePublicKey(await readFile(join(work, 'release.pub')))]), header: rolePolicy([parsePublicKey(await readFile(server.paths.bundlePub))]) };

    const results = await Promise.all([device('edge-1', tokens[0]!, trust), device('edge-2', tokens[1]!, trust)]);
    for (const r of results) {
      expect(r.config).toBe(p2.config);
      expect(r.repository).toBe(`${relay.url}/repo/`);
    }
    // the header and every distinct chunk fetched from upstream once, whoever asked first
    expect(relay.cache.stats.fetched).toBe(new Set(results[0]!.chunks).size + 1);
    expect(relay.cache.stats.refused).toBe(0);
  }, 600_000);
});
