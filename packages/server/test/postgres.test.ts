/**
 * Scale-out: two `ferry serve` processes on one PostgreSQL database and one shared data
 * directory. Agents with two different baselines check in at the same time, spread across both
 * servers; each baseline's bundle is built exactly once (SKIP LOCKED claims) and every agent of a
 * group gets the same bundle, whichever server it asked.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, inventoryDigest, parsePrivateKey, type Digest, type StoredImage } from '@ferry/core';
import { startPostgres, toolsOrSkip, type TempPostgres } from '@ferry/test-support';
import { openState } from '../src/index.js';
import { call, makeLayout, seedStore, signRelease } from './helpers.js';

const tools = toolsOrSkip('initdb', 'pg_ctl', 'postgres');
const CHILD = fileURLToPath(new URL('./fixtures/serve-child.mjs', import.meta.url));

describe.skipIf(!tools)('two servers on one PostgreSQL', () => {
  let work: string;
  let db: TempPostgres;
  const children: ChildProcess[] = [];
  const urls: string[] = [];
  let images: Record<'v1' | 'v2', StoredImage>;
  const key = parsePrivateKey(generateKeyPair().privatePem);

  async function serve(instanceId: string, data: string, releasePub: string): Promise<string> {
    const child = spawn(process.execPath, [CHILD, JSON.stringify({ dataDir: data, databaseUrl: db.url, releasePub, instanceId, host: '127.0.0.1', build: { pollMs: 100, level: 3, workers: 1 }, buildRetryAfter: 1 })], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    return new Promise((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) resolve((JSON.parse(out.split('\n')[0]!) as { url: string }).url);
      });
      child.once('exit', (code) => reject(new Error(`server ${instanceId} exited ${code}`)));
    });
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-pg-test-'));
    db = await startPostgres();
    const layout = await makeLayout(work);
    const data = join(work, 'data');
    const store = await seedStore(join(data, 'store'), layout, ['v1', 'v2']);
    images = { v1: await store.resolve('app:v1'), v2: await store.resolve('app:v2') };
    const pub = join(work, 'release.pub');
    await writeFile(pub, key.publicKey.key.export({ format: 'pem', type: 'spki' }));
    urls.push(await serve('server-a', data, pub));
    urls.push(await serve('server-b', data, pub));
  });

  afterAll(async () => {
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => (c.once('exit', r), c.kill('SIGTERM'))) : undefined)));
    await db?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('builds each bundle once whichever server an agent asks', async () => {
    const admin = (await readFile(join(work, 'data', 'admin.token'), 'utf8')).trim();
    const publisher = (await call(urls[1]!, 'POST', '/v1/tokens', { token: admin, json: { role: 'publisher', name: 'ci' } })).json.token as string;
    expect((await call(urls[0]!, 'POST', '/v1/releases', { token: publisher, json: { envelope: signRelease(images.v2, key, 'stable', 1) } })).status).toBe(201);
    const v1 = images.v1.layers.map((l) => l.diffId);
    const onlyV2 = images.v2.layers.map((l) => l.diffId).filter((d) => !v1.includes(d)).slice(-1);
    expect(onlyV2).toHaveLength(1);
    const groups: Digest[][] = [v1, onlyV2];
    const agents = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const id = `edge-${i}`;
        const token = (await call(urls[i % 2]!, 'POST', '/v1/agents', { token: admin, json: { id } })).json.token as string;
        return { id, token, layers: groups[i % 4 < 2 ? 0 : 1]! };
      }),
    );
    const served = [0, 0];
    const results = await Promise.all(
      agents.map(async (a, i) => {
        for (let counter = 1; counter < 1200; counter++) {
          const which = (i + counter) % 2; // every agent alternates between the servers
          served[which]!++;
          const r = await call(urls[which]!, 'POST', `/v1/agents/${a.id}/checkin`, { token: a.token, json: { counter, channels: ['stable'], inventory: { digest: inventoryDigest(a.layers), layers: a.layers } } });
          expect(r.status, r.text).toBe(200);
          const s = r.json.assignments[0];
          if (s.state === 'ready') return { group: a.layers === v1 ? 0 : 1, bundle: s.bundle.id as string };
          await new Promise((r2) => setTimeout(r2, 100));
        }
        throw new Error(`${a.id} never got a bundle`);
      }),
    );
    expect(served[0]).toBeGreaterThan(0);
    expect(served[1]).toBeGreaterThan(0);
    const byGroup = [0, 1].map((g) => new Set(results.filter((r) => r.group === g).map((r) => r.bundle)));
    expect(byGroup.map((s) => s.size)).toEqual([1, 1]);
    expect([...byGroup[0]!][0]).not.toBe([...byGroup[1]!][0]);

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const rows = (await client.query('SELECT state, builds, claimed_by FROM bundles ORDER BY key')).rows as { state: string; builds: number; claimed_by: string }[];
      expect(rows.map((r) => [r.state, r.builds])).toEqual([['ready', 1], ['ready', 1]]);
    } finally {
      await client.end();
    }
    // the state API reads the same database
    const state = await openState({ url: db.url });
    try {
      expect((await state.bundles.list()).every((b) => b.builds === 1)).toBe(true);
      expect((await state.agents.list()).length).toBe(8);
    } finally {
      await state.close();
    }
  });
});
