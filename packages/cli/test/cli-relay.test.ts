/**
 * `ferry relay` as a user runs it: a child process in front of a real repository server, announcing
 * its address (--json), serving a chunk it fetched upstream once, stopping on SIGINT with exit 0,
 * and refusing bad options with one line and exit 2.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MAIN, ensureBuilt, ferry, makeRepo, scratchDir, startRepoServer, type RepoServer, type TestRepo } from '@ferry/test-support';

let work: { dir: string; remove(): Promise<void> };
let repo: TestRepo;
let upstream: RepoServer;

beforeAll(() => ensureBuilt());
beforeEach(async () => {
  work = await scratchDir('cli-relay');
  repo = await makeRepo(join(work.dir, 'repo'), 2, 20_000);
  upstream = await startRepoServer(repo.dir);
});
afterEach(async () => {
  await upstream.close();
  await work.remove();
});

describe('ferry relay', () => {
  it('serves chunks fetched upstream once and stops on SIGINT', async () => {
    const child = spawn(process.execPath, [MAIN, 'relay', '--upstream', `http://127.0.0.1:${upstream.port}`, '--cache', join(work.dir, 'cache'), '--listen', '127.0.0.1:0', '--log-level', 'silent', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      // the startup facts: one JSON object, maybe over several lines
      const facts = await new Promise<{ url: string }>((resolve, reject) => {
        let text = '';
        child.stdout.on('data', (d: Buffer) => {
          text += d.toString();
          try {
            resolve(JSON.parse(text) as { url: string });
          } catch {
            // not complete yet
          }
        });
        child.on('exit', () => reject(new Error(`ferry relay exited: ${text}`)));
      });
      const hex = repo.chunks[0]!.digest.slice(7);
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${facts.url}/repo/chunks/${hex}`);
        expect(res.status).toBe(200);
        expect(Buffer.from(await res.arrayBuffer()).equals(repo.bytes[0]!)).toBe(true);
      }
      expect(upstream.stats.bodyBytesByChunk.get(hex)).toBe(20_001); // once, and the size probe's byte
      child.kill('SIGINT');
      const code = await new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.on('exit', r)));
      expect(code).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses bad options with one line and exit 2', async () => {
    for (const args of [['--cache', join(work.dir, 'c')], ['--upstream', 'http://127.0.0.1:9'], ['--upstream', 'ftp://x', '--cache', join(work.dir, 'c')], ['--upstream', 'http://127.0.0.1:9', '--cache', join(work.dir, 'c'), '--concurrency', '0']]) {
      const r = await ferry(['relay', ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain('FERRY_ERR_USAGE');
    }
  });
});
