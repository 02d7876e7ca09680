/**
 * Each command loads only what it uses: the differ, the agent, the server, the relay, the link
 * emulator, the image generator and TypeBox are imported when their command runs. On a device,
 * `ferry apply` and the store commands then start about 20 MB smaller (bench/README.md, apply memory).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '@ferry/core';
import { ensureBuilt, loadedModules, MAIN } from '@ferry/test-support';

const HEAVY = /\/packages\/(differ|agent|server|relay|linksim|imagegen)\/|@sinclair\/typebox|\/fastify\//;

let work: string;

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'ferry-cli-lazy-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function run(...args: string[]) {
  return loadedModules([MAIN, ...args], { pattern: HEAVY, env: { ...process.env, FERRY_STORE: join(work, 'store') } });
}

describe('lazy command loading', () => {
  it('store commands and apply load neither the differ, the agent, the server nor TypeBox', async () => {
    await Store.open(join(work, 'store'), { create: true });
    const images = run('images', '--json');
    expect(images.status, images.stderr).toBe(0);
    expect(images.modules).toEqual([]);
    // apply runs up to opening the bundle, which is missing: exit 3 (bad input), nothing heavy loaded
    const apply = run('apply', join(work, 'missing.ferry'));
    expect(apply.stderr).toMatch(/FERRY_ERR_/);
    expect(apply.modules).toEqual([]);
  });

  it('a command that needs the link emulator loads it (the check above can see a load)', () => {
    // 192.0.2.1 (TEST-NET-1) is no local address: the proxy is loaded, then cannot listen
    const linksim = run('linksim', '--listen', '192.0.2.1:0', '--target', '127.0.0.1:1');
    expect(linksim.stderr).toMatch(/FERRY_ERR_IO/);
    expect(linksim.modules.some((m) => m.includes('/packages/linksim/'))).toBe(true);
    expect(linksim.modules.some((m) => m.includes('/packages/differ/'))).toBe(false);
  });
});
