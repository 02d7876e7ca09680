/**
 * End to end through the server: the release engineer pushes two versions and releases v2 with
 * the `ferry` command; an agent holding v1 checks in, waits for its bundle, downloads the header
 * and chunks over HTTP (one chunk resumed with Range + If-Range) and applies them with core's
 * applyBundle: the image ID is the publisher's.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, Store, applyBundle, chunkPath, headerPath, inventoryDigest, openBundleDir, parsePublicKey, rolePolicy, verifyHeader, type CheckinAnswer } from '@ferry/core';
import { protocol } from '@ferry/core/protocol';
import { startServer, type RunningServer } from '@ferry/server';
import { writeImagePair } from '@ferry/imagegen';
import { ensureBuilt, ferryJsonOk as ferryJson } from '@ferry/test-support';

let work: string;
let server: RunningServer;

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'ferry-e2e-'));
  await writeImagePair(join(work, 'oci'), { targetBytes: 1024 * 1024, tags: ['v1', 'v2'], platform: 'linux/amd64' });
  await ferryJson(['keygen', '--out', join(work, 'release')]);
  server = await startServer({ dataDir: join(work, 'data'), port: 0, logger: false, releaseKeys: [parsePublicKey(await readFile(join(work, 'release.pub')))], build: { pollMs: 100, level: 3 }, buildRetryAfter: 1 });
});

afterAll(async () => {
  await server?.close();
  await rm(work, { recursive: true, force: true });
});

async function fetchTo(url: string, file: string, headers: Record<string, string> = {}): Promise<Response> {
  const res = await fetch(url, { headers });
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, Buffer.from(await res.arrayBuffer()), { flag: headers.range ? 'a' : 'w' });
  return res;
}

describe('push, release, check in, fetch, apply', () => {
  it('an agent holding v1 ends up with the exact v2 the engineer pushed', async () => {
    const remote = ['--server', server.url];
    const publisher = (await ferryJson(['tokens', 'add', '--role', 'publisher', '--name', 'ci', ...remote, '--token', server.admin.token])).token as string;
    const pub = ['--store', join(work, 'cache'), ...remote, '--token', publisher, '--platform', 'linux/amd64'];
    const p1 = await ferryJson(['push', `${join(work, 'oci')}:v1`, '--ref', 'app:v1', ...pub]);
    const p2 = await ferryJson(['push', `${join(work, 'oci')}:v2`, '--ref', 'app:v2', ...pub]);
    expect(p1.contents.sent).toBe(p1.contents.total);
    // v2 shares most of v1's files: only the contents the server lacks cross
    expect(p2.contents.sent).toBeLessThan(p2.contents.total);
    const again = await ferryJson(['push', `${join(work, 'oci')}:v2`, '--ref', 'app:v2', ...pub]);
    expect([again.layers.sent, again.contents.sent, again.bytesSent]).toEqual([0, 0, 0]);

    const rel = await ferryJson(['release', 'app:v2', '--channel', 'stable', '--key', join(work, 'release.key'), '--store', join(work, 'cache'), ...remote, '--token', publisher]);
    expect([rel.release, rel.config]).toEqual([1, p2.config]);
    const agentToken = (await ferryJson(['agents', 'add', 'edge-1', ...remote, '--token', server.admin.token])).token as string;

    // the device: a store holding v1
    const device = await Store.open(join(work, 'device'), { create: true });
    await ferryJson(['import', `${join(work, 'oci')}:v1`, '--ref', 'app:v1', '--store', device.root, '--platform', 'linux/amd64']);
    const layers = (await device.resolve('app:v1')).layers.map((l) => l.diffId);
    const client = new ApiClient({ server: server.url, token: agentToken });
    let answer: CheckinAnswer | undefined;
    for (let counter = 1; counter < 600; counter++) {
      answer = protocol.checkinAnswer((await client.request({ method: 'POST', path: '/v1/agents/edge-1/checkin', json: { counter, channels: ['stable'], inventory: { digest: inventoryDigest(layers), layers } } })).body);
      if (answer.assignments[0]!.state !== 'building') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const a = answer!.assignments[0]!;
    expect(a.state).toBe('ready');

    const dl = join(work, 'dl');
    await fetchTo(`${a.repository}${headerPath(a.bundle!.id)}`, join(dl, headerPath(a.bundle!.id)));
    const trust = { release: rolePolicy([parsePublicKey(await readFile(join(work, 'release.pub')))]), header: rolePolicy([parsePublicKey(await readFile(server.paths.bundlePub))]) };
    const h = verifyHeader(await readFile(join(dl, headerPath(a.bundle!.id))), { trust });
    for (const [i, c] of h.chunks.entries()) {
      const file = join(dl, chunkPath(c));
      if (i === 0 && h.payloadSize > 100) {
        // a cut link: the first 100 bytes, then the rest resumed against the immutable URL
        expect((await fetchTo(`${a.repository}${chunkPath(c)}`, file, { range: 'bytes=0-99' })).status).toBe(206);
        const rest = await fetchTo(`${a.repository}${chunkPath(c)}`, file, { range: 'bytes=100-', 'if-range': `"${c.slice(7)}"` });
        expect(rest.status).toBe(206);
      } else await fetchTo(`${a.repository}${chunkPath(c)}`, file);
    }
    const result = await applyBundle(device, await openBundleDir(dl, a.bundle!.id), { trust, channel: 'stable' });
    expect(result.configDigest).toBe(p2.config);
    expect((await device.resolve('app:v2')).configDigest).toBe(p2.config);
  });
});
