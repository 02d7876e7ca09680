/**
 * The built `ferry` on real images (umoci layouts, a skopeo docker archive): import, images,
 * export checked with skopeo, inspect numbers, rm and gc.
 */
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ferry, ferryJson, toolsOrSkip } from '@ferry/test-support';
import { FIXTURE_TOOLS, SIZES, layoutConfigDigest, makeFixtures, skopeoJson, type Fixtures } from './helpers/images.js';

/** The fixtures need umoci and skopeo; without them every test here is skipped (one line per tool). */
const hasTools = toolsOrSkip(...FIXTURE_TOOLS) !== undefined;

let work: string;
let fx: Fixtures;
let store: string;
const config: { v1: string; v2: string } = { v1: '', v2: '' };

beforeAll(async () => {
  if (!hasTools) return;
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'ferry-cli-'));
  fx = await makeFixtures(work);
  store = join(work, 'store');
  config.v1 = await layoutConfigDigest(fx.layout, 'v1');
  config.v2 = await layoutConfigDigest(fx.layout, 'v2');
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function oneErrorLine(stderr: string, code: string): void {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^ferry: error ${code}: `));
}

describe.skipIf(!hasTools)('ferry import', () => {
  it('refuses an OCI tag that is not name:tag without --ref (usage)', async () => {
    const r = await ferry(['import', fx.layout, '--source-ref', 'v1'], { store });
    expect(r.code).toBe(2);
    oneErrorLine(r.stderr, 'FERRY_ERR_USAGE');
    expect(r.stderr).toContain('--ref');
  });

  it('imports an OCI layout given as DIR:TAG, creating the store', async () => {
    const r = await ferry(['import', `${fx.layout}:v1`, '--ref', 'app:v1'], { store });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('imported app:v1');
    expect(r.stdout).toMatch(/1 layer: 1 imported, 0 reused/);
    expect(r.stderr).toBe(''); // no progress bar when stderr is not a terminal
  });

  it('reuses the shared layer when importing v2 (--source-ref, --json)', async () => {
    const { run, json } = await ferryJson<{ ref: string; configDigest: string; layers: { reused: boolean }[]; bytesRead: number; contentsAdded: number }>(
      ['import', fx.layout, '--source-ref', 'v2', '--ref', 'app:v2'],
      { store },
    );
    expect(run.code).toBe(0);
    expect(json.ref).toBe('app:v2');
    expect(json.configDigest).toBe(config.v2);
    expect(json.layers.map((l) => l.reused)).toEqual([true, false]);
    expect(json.contentsAdded).toBe(2); // the new big.bin and new.txt
    expect(json.bytesRead).toBeGreaterThan(SIZES.big2);
  });

  it("imports a docker archive under its own RepoTags name, keeping the image ID", async () => {
    const other = join(work, 'store-archive');
    const r = await ferry(['import', fx.archive], { store: other });
    expect(r.code, r.stderr).toBe(0);
    const { json } = await ferryJson<{ images: { ref: string; configDigest: string }[] }>(['images'], { store: other });
    expect(json.images).toEqual([expect.objectContaining({ ref: 'app:v1', configDigest: config.v1 })]);
  });

  it('uses $FERRY_STORE, else ./ferry-store, when --store is absent', async () => {
    const cwd = await mkdtemp(join(work, 'cwd-'));
    const r = await ferry(['import', `${fx.layout}:v1`, '--ref', 'app:v1'], { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect((await stat(join(cwd, 'ferry-store', 'ferry-store.json'))).isFile()).toBe(true);
    const viaEnv = await ferry(['images'], { env: { FERRY_STORE: store } });
    expect(viaEnv.stdout).toContain('app:v2');
  });

  it('waits for nobody: a store locked by a live process exits 6', async () => {
    const locked = join(work, 'store-locked');
    expect((await ferry(['import', `${fx.layout}:v1`, '--ref', 'app:v1'], { store: locked })).code).toBe(0);
    await writeFile(join(locked, 'lock'), String(process.pid));
    const r = await ferry(['import', `${fx.layout}:v2`, '--ref', 'app:v2'], { store: locked });
    expect(r.code).toBe(6);
    oneErrorLine(r.stderr, 'FERRY_ERR_STORE_LOCKED');
  });
});

describe.skipIf(!hasTools)('ferry images', () => {
  it('lists refs with image IDs, layers and sizes', async () => {
    const r = await ferry(['images'], { store });
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^REF\s+IMAGE ID\s+LAYERS\s+SIZE$/);
    expect(lines[1]).toMatch(new RegExp(`^app:v1\\s+${config.v1.slice(7, 19)}\\s+1\\s+\\d+\\.\\d KiB$`));
    expect(lines[2]).toMatch(new RegExp(`^app:v2\\s+${config.v2.slice(7, 19)}\\s+2\\s+`));
  });
});

describe.skipIf(!hasTools)('ferry export', () => {
  it('writes an OCI layout skopeo reads, with the original config digest', async () => {
    const out = join(work, 'out-oci');
    const r = await ferry(['export', 'app:v2', '--format', 'oci', '--out', out], { store });
    expect(r.code, r.stderr).toBe(0);
    const manifest = await skopeoJson('--raw', `oci:${out}:v2`);
    expect((manifest.config as { digest: string }).digest).toBe(config.v2);
    const cfg = await skopeoJson('--config', `oci:${out}:v2`);
    expect((cfg.config as { Cmd: string[] }).Cmd).toEqual(['/app/big.bin']);
  });

  it('writes gzip layers on request, same image ID', async () => {
    const out = join(work, 'out-oci-gz');
    expect((await ferry(['export', 'app:v2', '--format', 'oci', '--out', out, '--compression', 'gzip'], { store })).code).toBe(0);
    const manifest = await skopeoJson('--raw', `oci:${out}:v2`);
    expect((manifest.config as { digest: string }).digest).toBe(config.v2);
    expect((manifest.layers as { mediaType: string }[]).map((l) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+gzip']);
  });

  it('streams a docker archive to a redirected stdout (ferry export ... > FILE)', async () => {
    const file = join(work, 'out.tar');
    const r = await ferry(['export', 'app:v2', '--format', 'docker-archive'], { store, stdoutFile: file });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('exported app:v2'); // the result line goes to stderr, stdout is the archive
    const manifest = await skopeoJson('--raw', `docker-archive:${file}`);
    expect((manifest.config as { digest: string }).digest).toBe(config.v2);
    expect((await skopeoJson('--config', `docker-archive:${file}`)).rootfs).toMatchObject({ type: 'layers' });
  });

  it('writes a docker archive to --out FILE, leaving no temp file', async () => {
    const dir = await mkdtemp(join(work, 'archive-'));
    const { run, json } = await ferryJson<{ configDigest: string; layers: number }>(['export', 'app:v1', '--format', 'docker-archive', '--out', join(dir, 'v1.tar')], { store });
    expect(run.code).toBe(0);
    expect(json).toMatchObject({ configDigest: config.v1, layers: 1 });
    expect(await readdir(dir)).toEqual(['v1.tar']);
    const manifest = await skopeoJson('--raw', `docker-archive:${join(dir, 'v1.tar')}`);
    expect((manifest.config as { digest: string }).digest).toBe(config.v1);
  });

  it('refuses option combinations that make no sense', async () => {
    for (const args of [
      ['export', 'app:v1'],
      ['export', 'app:v1', '--format', 'tarball'],
      ['export', 'app:v1', '--format', 'oci'],
      ['export', 'app:v1', '--format', 'docker-archive', '--compression', 'gzip'],
    ]) {
      const r = await ferry(args, { store });
      expect(r.code, args.join(' ')).toBe(2);
      oneErrorLine(r.stderr, 'FERRY_ERR_USAGE');
    }
  });
});

describe.skipIf(!hasTools)('ferry inspect', () => {
  it('reports exact waste numbers (--json)', async () => {
    const { run, json } = await ferryJson<{ images: any[]; store: any }>(['inspect', 'app:v2', '--top', '3'], { store });
    expect(run.code, run.stderr).toBe(0);
    const w = json.images[0];
    expect(w.layers.map((l: any) => [l.files, l.bodyBytes, l.whiteouts])).toEqual([
      [4, SIZES.hello + 2 * SIZES.big + SIZES.libx, 0],
      [2, SIZES.big2 + SIZES.newTxt, 1],
    ]);
    expect(w.layers[0].hidden).toEqual({ files: 2, bytes: SIZES.big + SIZES.hello, overwritten: { files: 1, bytes: SIZES.big }, deleted: { files: 1, bytes: SIZES.hello } });
    expect(w.totals).toMatchObject({ visibleFiles: 4, visibleBytes: SIZES.big + SIZES.libx + SIZES.big2 + SIZES.newTxt });
    expect(w.duplicates).toMatchObject({ groups: 1, files: 1, wastedBytes: SIZES.big });
    expect(w.shared).toMatchObject({ layers: 1, contents: 3, bytes: SIZES.hello + SIZES.big + SIZES.libx });
    expect(w.largest.map((f: any) => [f.path, f.layer, f.hidden])).toEqual([['app/big.bin', 0, true], ['app/copy.bin', 0, false], ['app/big.bin', 1, false]]);
    expect(json.store).toMatchObject({ images: 2, layers: 2, savedBytes: SIZES.big, uniqueBytes: SIZES.hello + SIZES.big + SIZES.libx + SIZES.big2 + SIZES.newTxt });
  });

  it('prints aligned human tables', async () => {
    const r = await ferry(['inspect', 'app:v2'], { store });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/#\s+DIFF ID\s+TAR\s+FILES\s+BODIES\s+HIDDEN\s+HIDDEN BYTES\s+WHITEOUTS/);
    expect(r.stdout).toContain('hidden by later layers: 2 files, 195.3 KiB');
    expect(r.stdout).toContain('duplicated within the image: 1 content in 1 extra copy, 195.3 KiB wasted');
    expect(r.stdout).toMatch(/app:v1\s+3\s+244\.1 KiB/);
  });
});

describe.skipIf(!hasTools)('ferry rm and gc', () => {
  it('removes a ref, then gc frees what only it used', async () => {
    const gcStore = join(work, 'store-gc');
    await ferry(['import', `${fx.layout}:v1`, '--ref', 'app:v1'], { store: gcStore });
    await ferry(['import', `${fx.layout}:v2`, '--ref', 'app:v2'], { store: gcStore });
    const rmRun = await ferry(['rm', 'app:v2'], { store: gcStore });
    expect(rmRun.code).toBe(0);
    expect(rmRun.stdout).toContain('removed app:v2');
    const dry = await ferryJson<{ removed: Record<string, number>; freedBytes: number; dryRun: boolean }>(['gc', '--dry-run'], { store: gcStore });
    expect(dry.json).toMatchObject({ dryRun: true, removed: { contents: 2, skeletons: 1, blobs: 2 } });
    const real = await ferry(['gc'], { store: gcStore });
    expect(real.code).toBe(0);
    expect(real.stdout).toMatch(/^removed 2 contents, 1 skeleton, 2 blobs, 0 temp files: freed \d+(\.\d)? (B|KiB)$/m);
    expect((await ferryJson<{ freedBytes: number }>(['gc'], { store: gcStore })).json.freedBytes).toBe(0);
    expect((await ferry(['fsck'], { store: gcStore })).code).toBe(0);
    const again = await ferry(['rm', 'app:v2'], { store: gcStore });
    expect(again.code).toBe(3);
    oneErrorLine(again.stderr, 'FERRY_ERR_REF_NOT_FOUND');
  });
});
