/**
 * SIGTERM and SIGINT stop every long command promptly (DESIGN.md section 8): a real `ferry` child
 * gets the signal while it works (import, export, bundle, fsck, gc); it exits with the exit code of
 * FERRY_ERR_ABORTED and one error line, within a timeout only a hang would reach, and leaves the
 * store consistent: fsck clean, the lock released (the same command then completes), no temp
 * payload or partial output left.
 *
 * Slow (two 32 MB images, a real workload per command): runs with FERRY_SLOW_TESTS=1, as CI does.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeImagePair } from '@ferry/imagegen';
import { MAIN, ensureBuilt, ferry, ferryJson } from '@ferry/test-support';
import { importTag } from './helpers/bundles.js';
import { exitCodeFor } from '../src/errors.js';

const ABORTED_EXIT = exitCodeFor('FERRY_ERR_ABORTED');
const SLOW = process.env.FERRY_SLOW_TESTS === '1';
/** Only a hang reaches this. */
const HANG_MS = 120_000;

let work: string;
let layout: string;
let publisher: string;
let key: string;

/** Bytes the process has read so far (proc(5) /proc/PID/io rchar); 0 once it is gone. */
function bytesRead(pid: number): number {
  try {
    return Number(/^rchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

interface SignalRun {
  code: number | null;
  stderr: string;
  /** The child ended before the signal could be sent (the workload was too small). */
  early: boolean;
  hung: boolean;
}

/**
 * Runs `ferry ARGS` and sends `sig` once `working()` says the command is under way (polled every
 * few ms). A child that does not exit by HANG_MS is killed and reported as hung.
 */
async function interrupt(args: string[], sig: NodeJS.Signals, working: (pid: number) => boolean, env: Record<string, string> = {}): Promise<SignalRun> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH, ...env } });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  let exited = false;
  void closed.then(() => (exited = true));
  while (!exited && !working(child.pid!)) await delay(2);
  const early = exited;
  if (!early) child.kill(sig);
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, HANG_MS);
  const code = await closed;
  clearTimeout(timer);
  return { code, stderr, early, hung };
}

function expectAborted(r: SignalRun, what: string): void {
  expect(r.early, `${what}: finished before the signal (make the workload bigger)`).toBe(false);
  expect(r.hung, `${what}: did not stop within ${HANG_MS} ms`).toBe(false);
  expect(r.stderr.trim().split('\n'), what).toHaveLength(1);
  expect(r.stderr, what).toMatch(/^ferry: error FERRY_ERR_ABORTED: /);
  expect(r.code, `${what}: ${r.stderr}`).toBe(ABORTED_EXIT);
}

async function expectClean(store: string, what: string): Promise<void> {
  const r = await ferryJson<{ problems: unknown[] }>(['fsck'], { store });
  expect(r.json.problems, what).toEqual([]);
  expect(r.run.code, what).toBe(0);
  expect(existsSync(join(store, 'lock')), `${what}: lock left behind`).toBe(false);
}

/** Working once the process holds the store lock and has read `min` bytes. */
const lockedAndRead = (store: string, min: number) => (pid: number) => existsSync(join(store, 'lock')) && bytesRead(pid) > min;

beforeAll(async () => {
  if (!SLOW) return;
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'ferry-cli-signals-'));
  layout = join(work, 'oci');
  await writeImagePair(layout, { targetBytes: 32 * 1024 * 1024, tags: ['v1', 'v2'], platform: 'linux/amd64' });
  publisher = join(work, 'publisher');
  await importTag(layout, 'v1', publisher);
  await importTag(layout, 'v2', publisher);
  const k = await ferryJson(['keygen', '--out', join(work, 'release')]);
  expect(k.run.code).toBe(0);
  key = join(work, 'release.key');
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(!SLOW)('a signal stops a long command and leaves the store consistent', () => {
  it('import (SIGTERM, then SIGINT): aborted, nothing half-imported, and it completes when run again', async () => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      const store = join(work, `import-${sig}`);
      const args = ['import', `${layout}:v2`, '--ref', 'app:v2', '--platform', 'linux/amd64', '--store', store];
      expectAborted(await interrupt(args, sig, lockedAndRead(store, 4 << 20)), `import ${sig}`);
      await expectClean(store, `import ${sig}`);
      expect((await ferryJson<{ images: unknown[] }>(['images'], { store })).json.images).toEqual([]);
      expect((await ferry(args)).code).toBe(0);
    }
  });

  it('export (SIGTERM): aborted, no partial blob in the layout', async () => {
    const out = join(work, 'export-out');
    const args = ['export', 'app:v2', '--format', 'oci', '--out', out, '--store', publisher];
    expectAborted(await interrupt(args, 'SIGTERM', (pid) => bytesRead(pid) > 4 << 20), 'export');
    await expectClean(publisher, 'export');
    const blobs = existsSync(join(out, 'blobs', 'sha256')) ? await readdir(join(out, 'blobs', 'sha256')) : [];
    expect(blobs.filter((b) => b.startsWith('.tmp-'))).toEqual([]);
    expect(existsSync(join(out, 'index.json'))).toBe(false);
  });

  it('bundle (SIGINT): aborted, no output and no temp payload left', async () => {
    const tmp = join(work, 'bundle-tmp');
    await mkdir(tmp);
    const out = join(work, 'never.ferry');
    const args = ['bundle', '--from', 'app:v1', '--to', 'app:v2', '--key', key, '--out', out, '--store', publisher];
    expectAborted(await interrupt(args, 'SIGINT', (pid) => bytesRead(pid) > 4 << 20, { TMPDIR: tmp }), 'bundle');
    expect(existsSync(out)).toBe(false);
    expect(await readdir(tmp)).toEqual([]);
    await expectClean(publisher, 'bundle');
  });

  it('fsck (SIGTERM): aborted', async () => {
    expectAborted(await interrupt(['fsck', '--store', publisher], 'SIGTERM', (pid) => bytesRead(pid) > 4 << 20), 'fsck');
    await expectClean(publisher, 'fsck');
  });

  it('gc (SIGTERM): aborted while it works, the remaining image intact, and it completes when run again', async () => {
    const store = join(work, 'gc');
    await importTag(layout, 'v1', store);
    await importTag(layout, 'v2', store);
    expect((await ferry(['rm', 'app:v1', '--store', store])).code).toBe(0);
    // gc takes the lock first thing: the signal lands while it scans or removes
    expectAborted(await interrupt(['gc', '--store', store], 'SIGTERM', (_pid) => existsSync(join(store, 'lock'))), 'gc');
    await expectClean(store, 'gc');
    const again = await ferryJson<{ removed: { contents: number } }>(['gc'], { store });
    expect(again.run.code).toBe(0);
    await expectClean(store, 'gc again');
    const exported = await ferry(['export', 'app:v2', '--format', 'oci', '--out', join(work, 'gc-export'), '--store', store]);
    expect(exported.code, exported.stderr).toBe(0);
  });
});
