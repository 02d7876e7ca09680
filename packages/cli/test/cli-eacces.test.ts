/**
 * Permission errors are I/O errors (STYLE.md "Errors"): a file ferry may not read is reported as
 * FERRY_ERR_IO (exit 5), never as a corrupt object, an invalid store or trust file, or a missing
 * image. Root reads everything, so as root the built `ferry` runs as `nobody` (setpriv, from
 * util-linux); as any other user it runs as that user.
 */
import { spawn } from 'node:child_process';
import { chmod, chown, cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toolsOrSkip, ferry } from '@ferry/test-support';
import { MAIN, ensureBuilt } from '@ferry/test-support';
import { deviceStore, expectOneError, makeBundleFixture, type BundleFixture } from './helpers/bundles.js';

const isRoot = process.getuid?.() === 0;
const tools = isRoot ? toolsOrSkip('setpriv') : {};
const NOBODY = 65534;

let work: string;
let fx: BundleFixture;
let file: string;

/** Runs the built ferry as an unprivileged user. */
function unprivileged(args: string[]): Promise<{ code: number; stderr: string }> {
  const argv = isRoot ? ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, MAIN, ...args] : [MAIN, ...args];
  const child = spawn(isRoot ? tools!.setpriv! : process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH } });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stderr })));
}

/** Gives a tree to the unprivileged user (as root), so only the chmod 000 part is out of reach. */
async function handOver(dir: string): Promise<void> {
  if (!isRoot) return;
  await chown(dir, NOBODY, NOBODY);
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) await chown(join(e.parentPath, e.name), NOBODY, NOBODY);
}

describe.skipIf(!tools)('unreadable files', () => {
  beforeAll(async () => {
    await ensureBuilt();
    work = await mkdtemp(join(tmpdir(), 'ferry-cli-eacces-'));
    await chmod(work, 0o755);
    fx = await makeBundleFixture(work);
    file = join(work, 'v2.ferry');
    const r = await ferry(['bundle', '--from', 'app:v1', '--to', 'app:v2', '--key', fx.keys.release.key, '--out', file, '--channel', 'stable', '--release', '7'], { store: fx.publisher });
    expect(r.code, r.stderr).toBe(0);
    await handOver(work);
  });

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function device(name: string): Promise<string> {
    const dir = await deviceStore(fx, join(work, name));
    await handOver(dir);
    return dir;
  }

  it('an unreadable image source: FERRY_ERR_IO, not FERRY_ERR_IMAGE_NOT_FOUND', async () => {
    const src = join(work, 'oci-locked');
    await cp(fx.layout, src, { recursive: true });
    await handOver(src);
    await chmod(src, 0o000);
    const store = join(work, 'import-store');
    expectOneError(await unprivileged(['import', src, '--ref', 'app:v1', '--store', store]), 5, 'FERRY_ERR_IO');
  });

  it('an unreadable store marker: FERRY_ERR_IO, not FERRY_ERR_STORE_INVALID', async () => {
    const store = await device('marker-locked');
    await chmod(join(store, 'ferry-store.json'), 0o000);
    expectOneError(await unprivileged(['images', '--store', store]), 5, 'FERRY_ERR_IO');
  });

  it('an unreadable trust file or bundle: FERRY_ERR_IO, not FERRY_ERR_TRUST_INVALID', async () => {
    const store = await device('trust-locked');
    const pub = join(work, 'locked.pub');
    await cp(fx.keys.release.pub, pub);
    await chmod(pub, 0o000);
    expectOneError(await unprivileged(['apply', file, '--trust', pub, '--store', store]), 5, 'FERRY_ERR_IO');
    const locked = join(work, 'locked.ferry');
    await cp(file, locked);
    await chmod(locked, 0o000);
    expectOneError(await unprivileged(['apply', locked, '--trust', fx.keys.release.pub, '--store', store]), 5, 'FERRY_ERR_IO');
  });

  it('an unreadable channel state: FERRY_ERR_IO, not FERRY_ERR_OBJECT_CORRUPT', async () => {
    const store = await device('channel-locked');
    const first = await unprivileged(['apply', file, '--trust', fx.keys.release.pub, '--store', store]);
    expect(first.code, first.stderr).toBe(0);
    await chmod(join(store, 'channels', 'stable'), 0o000);
    expectOneError(await unprivileged(['apply', file, '--trust', fx.keys.release.pub, '--store', store]), 5, 'FERRY_ERR_IO');
  });

  it('an unreadable skeleton: export fails with FERRY_ERR_IO, not a corrupt or missing skeleton', async () => {
    const store = await device('skeleton-locked');
    const [skeleton] = await readdir(join(store, 'skeletons'));
    await chmod(join(store, 'skeletons', skeleton!), 0o000);
    expectOneError(await unprivileged(['export', 'app:v1', '--format', 'oci', '--out', join(work, 'export-out'), '--store', store]), 5, 'FERRY_ERR_IO');
  });
});
