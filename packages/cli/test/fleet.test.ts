/**
 * The fleet the demo, the agent tests and the link bench share (src/demo/fleet.ts): a fleet made
 * in a directory is kept by close() and reopened from it, with its server's state (releases,
 * agents, tokens) and its images, on a new port.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ferry, scratchDir } from '@ferry/test-support';
import { startFleet } from '../src/demo/fleet.js';

let work: { dir: string; remove(): Promise<void> };

beforeAll(async () => {
  await ensureBuilt();
  work = await scratchDir('fleet');
});
afterAll(async () => {
  await work?.remove();
});

describe('startFleet in a directory', () => {
  it('is kept by close() and reopened with its releases, agents and images', async () => {
    const dir = join(work.dir, 'fleet');
    const first = await startFleet({ dir, targetBytes: 1024 * 1024 });
    let agent: { token: string; store: string };
    try {
      await first.release('app:v2', 'stable');
      agent = await first.addAgent('edge-1');
    } finally {
      await first.close();
    }
    expect(await readdir(dir)).toEqual(expect.arrayContaining(['fleet.json', 'data', 'publisher', 'release.pub']));

    const again = await startFleet({ dir });
    try {
      expect(again.configs).toEqual(first.configs);
      expect((await again.server.state.releases.list()).map((r) => [r.channel, r.release])).toEqual([['stable', 1]]);
      // the agent registered before syncs with the reopened server
      const run = await ferry(['agent', '--server', again.url, '--id', 'edge-1', '--token', agent.token, '--channel', 'stable', ...again.trust.flatMap((t) => ['--trust', t]), '--store', agent.store, '--once', '--json']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain(first.configs['app:v2']);
    } finally {
      await again.close();
    }
    expect(await readdir(dir)).toContain('fleet.json');
  });
});
