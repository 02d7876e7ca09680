/**
 * Crash safety of fetching (DESIGN.md sections 6 and 8): a child process fetches a payload over an
 * emulated link (ferry linksim, 4 Mbit/s, 64 KiB chunks, checkpoints every 100 ms) and is killed
 * with SIGKILL at random moments, then started again, until it finishes. After every kill each
 * file under the cache's `chunks/` is a verified chunk (no byte reaches a final name before its
 * digest is checked); at the end every chunk is verified, partial chunks were resumed by Range, and
 * the bytes the link delivered (chunk bodies and HTTP headers) are at most the payload plus, per
 * kill, what was in flight (one chunk per request in flight, 3: the bound of a transfer cut before
 * its bytes were checkpointed) plus 512 bytes of headers per request. It prints the measured figures.
 *
 * The first kill lands just after a partial chunk was checkpointed (so a Range resume is always
 * exercised, whatever the timing); later kill moments come from a seeded generator: set
 * FERRY_KILL_SEED to replay a run. The quick suite always runs; the long one only with
 * FERRY_SLOW_TESTS set.
 */
import { createHash } from 'node:crypto';
import { open, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLinkSim, type LinkSim } from '@ferry/linksim';
import { cacheHolds, makeRepo, scratchDir, startRepoServer, type RepoServer, type TestRepo, ROOT, buildPackages, rng, runKillableChild } from '@ferry/test-support';

const CHILD = fileURLToPath(new URL('./helpers/fetch-child.mjs', import.meta.url));
const SEED = Number(process.env.FERRY_KILL_SEED ?? Date.now() % 1_000_000);
const CHUNK = 64 * 1024;
const IN_FLIGHT = 3;

let work: { dir: string; remove(): Promise<void> };
let repo: TestRepo;
let server: RepoServer;
let link: LinkSim;

beforeAll(async () => {
  buildPackages('packages/agent');
  work = await scratchDir('fetch-kill');
  repo = await makeRepo(join(work.dir, 'repo'), 96, CHUNK, 10_000);
});
afterAll(() => work.remove());

/** Every file under chunks/ is named by the sha256 of its bytes. */
async function onlyVerified(cacheDir: string): Promise<void> {
  const dir = join(cacheDir, 'chunks');
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith('.tmp-')) continue;
    expect(createHash('sha256').update(await readFile(join(dir, name))).digest('hex'), name).toBe(name);
  }
}

/** True when `partial/` holds a journal whose durable length is above 0 (a checkpointed partial chunk). */
async function checkpointed(cacheDir: string): Promise<boolean> {
  const dir = join(cacheDir, 'partial');
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith('.journal')) continue;
    const fh = await open(join(dir, name), 'r').catch(() => undefined);
    if (!fh) continue;
    try {
      const { buffer, bytesRead } = await fh.read(Buffer.alloc(16), 0, 16, 0);
      if (bytesRead === 16 && buffer.readBigUInt64BE(8) > 0n) return true;
    } finally {
      await fh.close();
    }
  }
  return false;
}

/** Kills the child with SIGKILL as soon as a partial chunk has been checkpointed. */
function killOnCheckpoint(cacheDir: string): (pid: number) => void {
  return (pid) => {
    const poll = async (): Promise<void> => {
      for (;;) {
        if (await checkpointed(cacheDir)) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // it finished first; the run counts as not killed and the kill count assertion says so
      }
    };
    void poll();
  };
}

async function killRuns(label: string, kills: number, chunks: number): Promise<void> {
  const part = { ...repo, chunks: repo.chunks.slice(0, chunks), payload: repo.chunks.slice(0, chunks).reduce((n, c) => n + c.size, 0) };
  const list = join(work.dir, `chunks-${label}.json`);
  await writeFile(list, JSON.stringify(part.chunks));
  const random = rng(SEED);
  server = await startRepoServer(repo.dir);
  link = await startLinkSim({ target: { host: '127.0.0.1', port: server.port }, rateDown: 4_000_000, latencyDownMs: 20, latencyUpMs: 20 });
  const cacheDir = join(work.dir, `cache-${label}`);
  const url = `http://127.0.0.1:${link.port}/repo/`;
  try {
    let killed = 0;
    let runs = 0;
    for (;;) {
      runs++;
      const first = killed === 0;
      const killAfter = killed < kills && !first ? 100 + random() * 500 : undefined;
      const r = await runKillableChild(CHILD, [cacheDir, url, list], ROOT, killAfter, first ? killOnCheckpoint(cacheDir) : undefined);
      await onlyVerified(cacheDir);
      if (!r.killed) break;
      killed++;
      expect(runs, `seed ${SEED}: no progress`).toBeLessThan(kills + 20);
    }
    const delivered = link.stats().bytesDown;
    const perKill = (n: number): string => `${((n - part.payload) / Math.max(1, killed) / 1024).toFixed(1)} KiB`;
    process.stderr.write(`fetch-kill ${label}: seed ${SEED}, ${killed} kills, ${server.stats.rangeStarts.length} Range resumes; payload ${part.payload} B, link delivered ${delivered} B (${perKill(delivered)} a kill, headers included), server sent ${server.stats.bodyBytes} chunk bytes (${perKill(server.stats.bodyBytes)} a kill, bytes queued in the link included)\n`);
    expect(killed, `seed ${SEED}: the fetch finished before every kill landed`).toBe(kills);
    expect(await cacheHolds(cacheDir, part), `seed ${SEED}`).toBe(true);
    expect(delivered, `seed ${SEED}`).toBeLessThanOrEqual(part.payload + killed * IN_FLIGHT * CHUNK + server.stats.requests * 512);
    expect(server.stats.rangeStarts.length, `seed ${SEED}: partial chunks resumed by Range`).toBeGreaterThan(0);
    expect(await readdir(join(cacheDir, 'partial'))).toEqual([]);
  } finally {
    await link.close();
    await server.close();
  }
}

describe('kill -9 while fetching', () => {
  it('ends with every chunk verified and at most one chunk per request in flight refetched per kill (4 kills, quick)', async () => {
    await killRuns('quick', 4, 32);
  });
});

describe.skipIf(!process.env.FERRY_SLOW_TESTS)('kill -9 while fetching (slow: FERRY_SLOW_TESTS)', () => {
  it('ends with every chunk verified and bounded refetch after 25 kills', async () => {
    await killRuns('slow', 25, 96);
  });
});
