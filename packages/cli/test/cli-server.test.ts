/**
 * The server commands as a user runs them: `ferry push` killed mid-push resumes without resending
 * finished contents; `ferry release` refusals (rollback, untrusted key, bad token, no server) print
 * one line with their exit code; `ferry serve` shuts down gracefully on SIGTERM (the request in
 * flight completes, the database closes cleanly).
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store, parsePublicKey, sha256, zstdCompress, type Digest } from '@ferry/core';
import { writeImagePair } from '@ferry/imagegen';
import { createServer, type RunningServer } from '@ferry/server';
import { ensureBuilt, MAIN, ferry, ferryJson } from '@ferry/test-support';
import { expectOneError } from './helpers/bundles.js';

let work: string;
let layout: string;
let server: Omit<RunningServer, 'url'>;
let url: string;
let publisher: string;
let delayMs = 0;

async function contentFiles(root: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const d of await readdir(join(root, 'contents'))) {
    for (const f of await readdir(join(root, 'contents', d))) if (/^[0-9a-f]{64}$/.test(f)) out.set(f, (await stat(join(root, 'contents', d, f))).size);
  }
  return out;
}

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'ferry-cli-server-'));
  layout = join(work, 'oci');
  await writeImagePair(layout, { targetBytes: 1024 * 1024, tags: ['v1', 'v2'], platform: 'linux/amd64' });
  expect((await ferry(['keygen', '--out', join(work, 'release')])).code).toBe(0);
  expect((await ferry(['keygen', '--out', join(work, 'stranger')])).code).toBe(0);
  const s = await createServer({ dataDir: join(work, 'data'), port: 0, logger: false, releaseKeys: [parsePublicKey(await readFile(join(work, 'release.pub')))] });
  // slow every content upload down, so a kill lands in the middle of a push
  s.app.addHook('onRequest', async (req) => {
    if (delayMs > 0 && req.method === 'PUT' && req.url.startsWith('/v1/contents/')) await new Promise((r) => setTimeout(r, delayMs));
  });
  url = await s.listen();
  server = s;
  publisher = (await ferryJson<{ token: string }>(['tokens', 'add', '--role', 'publisher', '--server', url, '--token', s.admin.token])).json.token;
});

afterAll(async () => {
  await server?.close();
  await rm(work, { recursive: true, force: true });
});

describe('ferry push', () => {
  it('killed mid-push, resumes without resending the contents the server already has', async () => {
    const cache = join(work, 'cache');
    const args = [MAIN, '--store', cache, 'push', `${layout}:v1`, '--ref', 'app:v1', '--platform', 'linux/amd64', '--server', url, '--token', publisher];
    delayMs = 40;
    const child = spawn(process.execPath, args, { stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    const serverStore = join(work, 'data', 'store');
    for (let i = 0; i < 2000 && (await contentFiles(serverStore)).size < 10; i++) await new Promise((r) => setTimeout(r, 25));
    child.kill('SIGKILL');
    await exited;
    delayMs = 0;
    const before = await contentFiles(serverStore);
    const image = await (await Store.open(cache)).resolve('app:v1');
    const all = new Map<Digest, number>();
    for (const l of image.layers) for await (const e of (await (await Store.open(cache)).openSkeleton(l.diffId)).entries) if (e.digest) all.set(e.digest, (await stat((await Store.open(cache)).contentPath(e.digest))).size);
    expect(before.size).toBeGreaterThan(0);
    expect(before.size).toBeLessThan(all.size);

    const { run, json } = await ferryJson<{ contents: { total: number; sent: number }; bytesSent: number; layers: { sent: number } }>(['push', `${layout}:v1`, '--ref', 'app:v1', '--platform', 'linux/amd64', '--server', url, '--token', publisher], { store: cache });
    expect(run.code, run.stderr).toBe(0);
    expect(json.contents.total).toBe(all.size);
    expect(json.contents.sent).toBe(all.size - before.size);
    const alreadyThere = [...before.keys()].reduce((a, h) => a + (all.get(`sha256:${h}`) ?? 0), 0);
    const everything = [...all.values()].reduce((a, b) => a + b, 0);
    expect(json.bytesSent).toBe(everything - alreadyThere);
    expect((await (await Store.open(serverStore)).resolve('app:v1')).configDigest).toBe(image.configDigest);
  });
});

describe('ferry release', () => {
  it('publishes the next release number, and refusals print one line with their exit code', async () => {
    const cache = join(work, 'cache');
    expect((await ferry(['push', `${layout}:v2`, '--ref', 'app:v2', '--platform', 'linux/amd64', '--server', url, '--token', publisher], { store: cache })).code).toBe(0);
    const rel = (args: string[], token = publisher, server = url) => ferry(['release', 'app:v2', '--channel', 'beta', '--server', server, '--token', token, ...args], { store: cache });
    const first = await ferryJson(['release', 'app:v2', '--channel', 'beta', '--key', join(work, 'release.key'), '--server', url, '--token', publisher], { store: cache });
    expect(first.json).toMatchObject({ channel: 'beta', release: 1, ref: 'app:v2', urgent: false });
    const second = await ferryJson(['release', 'app:v2', '--channel', 'beta', '--key', join(work, 'release.key'), '--urgent', '--server', url, '--token', publisher], { store: cache });
    expect(second.json).toMatchObject({ release: 2, urgent: true });
    expectOneError(await rel(['--key', join(work, 'release.key'), '--release', '2']), 4, 'FERRY_ERR_BUNDLE_ROLLBACK');
    expectOneError(await rel(['--key', join(work, 'stranger.key')]), 4, 'FERRY_ERR_SIGNATURE_INVALID');
    expectOneError(await rel(['--key', join(work, 'release.key')], 'fyp_not-a-token'), 7, 'FERRY_ERR_AUTH_REQUIRED');
    expectOneError(await rel(['--key', join(work, 'release.key')], publisher, 'http://127.0.0.1:9'), 7, 'FERRY_ERR_NETWORK');
    expectOneError(await rel([]), 2, 'FERRY_ERR_USAGE');
    expect((await server.state.releases.latest('beta'))?.release).toBe(2);
  });
});

describe('ferry serve', () => {
  it('on SIGTERM finishes the request in flight, then closes the database and exits 0', async () => {
    const data = join(work, 'serve-data');
    // options from a config file (paths relative to it), the command line overriding it
    await writeFile(join(work, 'serve.json'), JSON.stringify({ data: 'serve-data', trustRelease: ['release.pub'], port: 1, logLevel: 'silent' }));
    const child = spawn(process.execPath, [MAIN, 'serve', '--config', join(work, 'serve.json'), '--port', '0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    let facts: { url: string; adminToken: string; database: string; adminTokenCreated: boolean } | undefined;
    for (let i = 0; i < 400 && !facts; i++) {
      try {
        facts = JSON.parse(out);
      } catch {
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    const admin = (await readFile(facts!.adminToken, 'utf8')).trim();
    const tok = (await ferryJson<{ token: string }>(['tokens', 'add', '--role', 'publisher', '--server', facts!.url, '--token', admin])).json.token;
    const body = zstdCompress(Buffer.from('in flight\n'));
    const digest = sha256('in flight\n');
    const answered = new Promise<number>((resolve, reject) => {
      const req = request(`${facts!.url}/v1/contents/${digest.slice(7)}`, { method: 'PUT', headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/zstd', 'x-ferry-size': '10', 'content-length': String(body.length) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.write(body.subarray(0, 4));
      setTimeout(() => {
        child.kill('SIGTERM');
        setTimeout(() => req.end(body.subarray(4)), 300);
      }, 200);
    });
    expect(await answered).toBe(201);
    expect(await exited).toBe(0);
    expect(facts!).toMatchObject({ database: 'sqlite', adminTokenCreated: true });
    // better-sqlite3 closed the database: the write-ahead log was checkpointed and removed
    await expect(stat(join(data, 'state.db-wal'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await (await Store.open(join(data, 'store'))).hasContent(digest)).toBe(true);
  });
});
