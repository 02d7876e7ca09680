/**
 * The built `ferry` on the update path: keygen, bundle (.ferry file and repository directory),
 * apply (a .pub, a JSON trust file with two keys, the wrong key, twice), and bundle inspect
 * checked against the differ's own statistics.
 */
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeLimited, parseEnvelope } from '@ferry/core';
import { ensureBuilt, ferry, ferryJson } from '@ferry/test-support';
import { deviceStore, expectOneError, makeBundleFixture, type BundleFixture } from './helpers/bundles.js';

let work: string;
let fx: BundleFixture;
/** `ferry bundle --json` of the v1 -> v2 .ferry file. */
let made: any;
let file: string;

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'ferry-cli-bundle-'));
  fx = await makeBundleFixture(work);
  file = join(work, 'app-v2.ferry');
  const { run, json } = await ferryJson(['bundle', '--from', 'app:v1', '--to', 'app:v2', '--key', fx.keys.release.key, '--out', file, '--release', '100', '--compare-pull'], { store: fx.publisher });
  expect(run.code, run.stderr).toBe(0);
  made = json;
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('ferry keygen', () => {
  it('writes a 0600 PKCS#8 private key and an SPKI public key, and prints the key id', async () => {
    const r = await ferry(['keygen', '--out', join(work, 'k1')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^key id [0-9a-f]{16}$/m);
    const priv = await stat(join(work, 'k1.key'));
    const pub = await stat(join(work, 'k1.pub'));
    expect(priv.mode & 0o777).toBe(0o600);
    expect(pub.mode & 0o077).toBe(0o044);
    expect(await readFile(join(work, 'k1.key'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(await readFile(join(work, 'k1.pub'), 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(fx.keys.release.id).toMatch(/^[0-9a-f]{16}$/);
  });

  it('refuses to overwrite without --force (exit 2, file unchanged), replaces with it', async () => {
    const before = await readFile(fx.keys.bundle.key, 'utf8');
    expectOneError(await ferry(['keygen', '--out', join(work, 'bundle')]), 2, 'FERRY_ERR_USAGE');
    expect(await readFile(fx.keys.bundle.key, 'utf8')).toBe(before);
    const other = join(work, 'k2');
    await ferry(['keygen', '--out', other]);
    const r = await ferryJson<{ id: string; privateKey: string }>(['keygen', '--out', `${other}.key`, '--force']);
    expect(r.run.code).toBe(0);
    expect(r.json.privateKey).toBe(`${other}.key`); // NAME.key given: not NAME.key.key
    expect((await stat(`${other}.key`)).mode & 0o777).toBe(0o600);
  });

  it('needs --out', async () => {
    expectOneError(await ferry(['keygen']), 2, 'FERRY_ERR_USAGE');
  });
});

describe('ferry bundle', () => {
  it('writes a .ferry file of header + payload and reports the docker pull comparison', async () => {
    const size = (await stat(file)).size;
    expect(size).toBe(12 + made.headerBytes + made.payloadBytes);
    expect(made).toMatchObject({ container: 'file', release: 100, channel: 'default', ref: 'app:v2', configDigest: fx.config.v2, bundleBytes: made.headerBytes + made.payloadBytes });
    expect(made.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(made.chunks).toBe(Math.ceil(made.payloadBytes / 65536));
    // v2's base layer was rebuilt with new mtimes: every layer is rebuilt, so docker pull sends them all
    expect(made.rebuilt).toBe(made.layers.length);
    const gzip = made.layers.reduce((a: number, l: any) => a + l.gzipSize, 0);
    expect(made.dockerPull).toMatchObject({ bundleBytes: made.bundleBytes, fullImage: { bytes: gzip }, changedLayers: { bytes: gzip } });
    expect(made.dockerPull.ratio.fullImage).toBeCloseTo(gzip / made.bundleBytes);
    expect(made.bundleBytes * 5).toBeLessThan(gzip);
  });

  it('prints the id, sizes, layers and the ratio', async () => {
    const out = join(work, 'human.ferry');
    const r = await ferry(['bundle', '--from', 'app:v1', '--to', 'app:v2', '--key', fx.keys.release.key, '--out', out, '--compare-pull'], { store: fx.publisher });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(''); // no progress bar off a terminal
    expect(r.stdout).toMatch(/^bundle sha256:[0-9a-f]{64}$/m);
    expect(r.stdout).toMatch(/payload \d+(\.\d)? KiB \([\d,]+ bytes\) in \d+ chunks? of 64\.0 KiB, header/);
    expect(r.stdout).toMatch(/layers: \d+ rebuilt, 0 reused/);
    expect(r.stdout).toMatch(/^ {2}docker pull, full image \(\d+ layers\)\s+\d+(\.\d)? (KiB|MiB)\s+\d+x$/m);
    // without --compare-pull no layer is gzipped, and the report says so
    const quick = await ferry(['bundle', '--from', 'app:v1', '--to', 'app:v2', '--key', fx.keys.release.key, '--out', join(work, 'quick.ferry')], { store: fx.publisher });
    expect(quick.code, quick.stderr).toBe(0);
    expect(quick.stdout).toMatch(/docker pull: not measured \(--compare-pull/);
    expect(quick.stdout).not.toMatch(/docker pull, full image/);
    // inspect says so too, rather than comparing with 0 B
    const seen = await ferry(['bundle', 'inspect', join(work, 'quick.ferry')]);
    expect(seen.code, seen.stderr).toBe(0);
    expect(seen.stdout).toMatch(/^what docker pull would send: not recorded in this bundle/m);
    expect(seen.stdout).not.toMatch(/docker pull, full image/);
    const seenJson = await ferryJson<any>(['bundle', 'inspect', join(work, 'quick.ferry')], {});
    expect(seenJson.json.dockerPull).toBeNull();
    expect(seenJson.json.layers.map((l: any) => l.gzipSize)).toEqual(seenJson.json.layers.map(() => 0));
  });

  it('adds to a repository directory, skipping chunks it already holds; reuses shared layers', async () => {
    const repo = join(work, 'repo');
    const args = ['bundle', '--from', 'app:v1', '--to', 'app:v2', '--key', fx.keys.release.key, '--bundle-key', fx.keys.bundle.key, '--out', repo, '--channel', 'stable'];
    const first = await ferryJson<any>([...args, '--release', '1'], { store: fx.publisher });
    expect(first.run.code, first.run.stderr).toBe(0);
    expect(first.json).toMatchObject({ container: 'dir', chunksShared: 0, chunksWritten: first.json.chunks });
    expect(await readdir(join(repo, 'headers'))).toEqual([first.json.id.slice(7)]);
    expect((await readdir(join(repo, 'chunks'))).length).toBe(first.json.chunks);
    // another release of the same images: same payload, so every chunk is already there
    const second = await ferryJson<any>([...args, '--release', '2'], { store: fx.publisher });
    expect(second.json).toMatchObject({ chunksWritten: 0, chunksShared: first.json.chunks });
    expect((await readdir(join(repo, 'headers'))).length).toBe(2);
    // `other` shares v1's base layer: that layer is reused, and docker pull would skip it too
    const other = await ferryJson<any>(['bundle', '--from', 'app:v1', '--to', 'app:other', '--key', fx.keys.release.key, '--out', join(work, 'other.ferry'), '--compare-pull'], { store: fx.publisher });
    expect(other.json.reused).toBeGreaterThanOrEqual(1);
    expect(other.json.dockerPull.changedLayers.bytes).toBeLessThan(other.json.dockerPull.fullImage.bytes);
  });

  it('refuses bad options before any work (exit 2) and a missing image (exit 3)', async () => {
    const base = ['bundle', '--from', 'app:v1', '--to', 'app:v2', '--out', join(work, 'bad.ferry')];
    const key = ['--key', fx.keys.release.key];
    expectOneError(await ferry(base, { store: fx.publisher }), 2, 'FERRY_ERR_USAGE');
    expectOneError(await ferry([...base, '--key', fx.keys.release.pub], { store: fx.publisher }), 2, 'FERRY_ERR_KEY_INVALID');
    expectOneError(await ferry([...base, ...key, '--expires', '2001-01-01'], { store: fx.publisher }), 2, 'FERRY_ERR_USAGE');
    expectOneError(await ferry([...base, ...key, '--chunk-size', 'big'], { store: fx.publisher }), 2, 'FERRY_ERR_USAGE');
    expectOneError(await ferry([...base, ...key, '--channel', 'a/b'], { store: fx.publisher }), 2, 'FERRY_ERR_USAGE');
    expectOneError(await ferry(['bundle', '--from', 'app:v1', '--to', 'app:nope', ...key, '--out', join(work, 'bad.ferry')], { store: fx.publisher }), 3, 'FERRY_ERR_REF_NOT_FOUND');
    await expect(stat(join(work, 'bad.ferry'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('ferry apply', () => {
  it('installs the bundle with a .pub: same image ID as the publisher', async () => {
    const device = await deviceStore(fx, join(work, 'device-pub'));
    const r = await ferry(['apply', file, '--trust', fx.keys.release.pub], { store: device });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`applied ${file}: app:v2 (image ID ${fx.config.v2.slice(7, 19)}), release 100 on channel default`);
    expect(r.stdout).toMatch(/layers: \d+ rebuilt and verified, 0 reused/);
    const { json } = await ferryJson<{ images: { ref: string; configDigest: string }[] }>(['images'], { store: device });
    expect(json.images.find((i) => i.ref === 'app:v2')?.configDigest).toBe(fx.config.v2);
    expect((await ferry(['fsck'], { store: device })).code).toBe(0);

    const again = await ferry(['apply', file, '--trust', fx.keys.release.pub], { store: device });
    expectOneError(again, 4, 'FERRY_ERR_BUNDLE_ROLLBACK');
  });

  it('signs the header compressed (format 4) by default, plain with --plain-header, and applies both', async () => {
    const signedOf = async (path: string): Promise<Record<string, unknown>> => {
      const bytes = await readFile(path);
      const { signed } = parseEnvelope('header', bytes.subarray(12, 12 + bytes.readUInt32BE(8)));
      return decodeLimited(signed, { maxStrLength: 4096, maxBinLength: 1 << 24, maxArrayLength: 1 << 16, maxMapLength: 64 }, 'test') as Record<string, unknown>;
    };
    const plain = join(work, 'app-v2-plain.ferry');
    const r = await ferryJson<{ headerBytes: number }>(['bundle', '--from', 'app:v1', '--to', 'app:v2', '--key', fx.keys.release.key, '--out', plain, '--release', '101', '--plain-header'], { store: fx.publisher });
    expect(r.run.code, r.run.stderr).toBe(0);
    expect(Object.keys(await signedOf(file)).sort()).toEqual(['type', 'v', 'z']);
    expect((await signedOf(file)).v).toBe(4);
    const doc = await signedOf(plain);
    expect([doc.type, doc.v]).toEqual(['ferry-bundle', 2]);
    expect(r.json.headerBytes).toBeGreaterThan(made.headerBytes);
    const device = await deviceStore(fx, join(work, 'device-plain'));
    const applied = await ferry(['apply', plain, '--trust', fx.keys.release.pub], { store: device });
    expect(applied.code, applied.stderr).toBe(0);
  });

  it('takes a JSON trust file with different keys for the two roles', async () => {
    const repo = join(work, 'repo-two-keys');
    const b = await ferryJson<any>(['bundle', '--from', 'app:v1', '--to', 'app:v2', '--key', fx.keys.release.key, '--bundle-key', fx.keys.bundle.key, '--out', repo, '--channel', 'stable', '--install-as', 'edge:v2'], { store: fx.publisher });
    expect(b.run.code, b.run.stderr).toBe(0);
    const trust = join(work, 'trust.json');
    await writeFile(trust, JSON.stringify({ release: { keys: ['release.pub'], threshold: 1 }, header: { keys: ['bundle.pub'], threshold: 1 } }));
    const device = await deviceStore(fx, join(work, 'device-json'));
    // the release key alone does not vouch for a header the bundle key signed
    expectOneError(await ferry(['apply', repo, '--trust', fx.keys.release.pub], { store: device }), 4, 'FERRY_ERR_SIGNATURE_INVALID');
    expectOneError(await ferry(['apply', repo, '--trust', trust, '--channel', 'beta'], { store: device }), 4, 'FERRY_ERR_BUNDLE_CHANNEL');
    const { run, json } = await ferryJson<any>(['apply', repo, '--trust', trust, '--channel', 'stable'], { store: device });
    expect(run.code, run.stderr).toBe(0);
    expect(json).toMatchObject({ ref: 'edge:v2', channel: 'stable', configDigest: fx.config.v2, reused: 0 });
    expect(json.rebuilt).toBe(b.json.rebuilt);
  });

  it('refuses a bundle signed by a key it does not trust: exit 4, store untouched', async () => {
    const device = await deviceStore(fx, join(work, 'device-wrong'));
    const r = await ferry(['apply', file, '--trust', fx.keys.bundle.pub], { store: device });
    expectOneError(r, 4, 'FERRY_ERR_SIGNATURE_INVALID');
    const { json } = await ferryJson<{ images: { ref: string }[] }>(['images'], { store: device });
    expect(json.images.map((i) => i.ref)).toEqual(['app:v1']);
  });

  it('refuses bad trust input (exit 2) and a missing baseline (exit 3)', async () => {
    const device = join(work, 'device-empty');
    expectOneError(await ferry(['apply', file], { store: device }), 2, 'FERRY_ERR_USAGE');
    const junk = join(work, 'junk.json');
    await writeFile(junk, '{"release": {"keys": []}}');
    expectOneError(await ferry(['apply', file, '--trust', junk], { store: device }), 2, 'FERRY_ERR_TRUST_INVALID');
    expectOneError(await ferry(['apply', file, '--trust', join(work, 'missing.pub')], { store: device }), 2, 'FERRY_ERR_TRUST_INVALID');
    // the store does not exist and the bundle needs a baseline: nothing is created
    expectOneError(await ferry(['apply', file, '--trust', fx.keys.release.pub], { store: device }), 3, 'FERRY_ERR_STORE_INVALID');
    await expect(stat(device)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('ferry bundle inspect', () => {
  it('counts the same ops and bytes the differ wrote (--json)', async () => {
    const { run, json } = await ferryJson<any>(['bundle', 'inspect', file], {});
    expect(run.code, run.stderr).toBe(0);
    const s = made.stats;
    const ops = json.ops;
    expect(json).toMatchObject({ id: made.id, headerBytes: made.headerBytes, payloadBytes: made.payloadBytes, bundleBytes: made.bundleBytes, chunks: made.chunks, rebuilt: made.rebuilt, reused: made.reused });
    expect(json.signature).toEqual({ checked: false, signers: { header: [fx.keys.release.id], release: [fx.keys.release.id] } });
    expect(ops.entries).toBe(s.entries);
    expect(ops.runEntries).toBe(s.runEntries);
    expect(ops.headers.literal.bytes).toBe(s.headerBytes.literal);
    const runPatches = Object.values(ops.runs as Record<string, { bytes: number }>).reduce((a, r) => a + r.bytes, 0);
    expect(ops.headers.patched.bytes + runPatches).toBe(s.headerBytes.patched);
    for (const kind of Object.keys(s.bodies)) expect(ops.bodies[kind]?.count ?? 0, kind).toBe(s.bodies[kind].files);
    expect(ops.bodies.literal.bytes).toBe(s.literalBytes);
    expect(ops.bodies.literal.size).toBe(s.bodies.literal.bytes);
    expect(ops.bodies.patch.bytes).toBe(s.patchBytes);
    expect(ops.bodies.patch.size).toBe(s.bodies.patch.bytes);
    expect(json.layers.map((l: any) => l.frameBytes)).toEqual(made.layers.map((l: any) => l.frameBytes));
    expect(json.layers.reduce((a: number, l: any) => a + l.frameBytes, 0)).toBe(made.payloadBytes);
    // top files: the same carried sizes the differ recorded, most first
    expect(ops.top.map((f: any) => f.carried)).toEqual(s.top.slice(0, ops.top.length).map((f: any) => f.carried));
    expect(ops.pathsResolved).toBe(false);
    expect(json.dockerPull).toEqual(expect.objectContaining({ fullImage: made.dockerPull.fullImage, changedLayers: made.dockerPull.changedLayers }));
  });

  it('names baseline files from a store and checks signatures with --trust', async () => {
    const { run, json } = await ferryJson<any>(['bundle', 'inspect', file, '--trust', fx.keys.release.pub, '--top', '20'], { store: fx.publisher });
    expect(run.code, run.stderr).toBe(0);
    expect(json.signature).toMatchObject({ checked: true });
    expect(json.ops.pathsResolved).toBe(true);
    expect(json.ops.top.some((f: any) => f.path.startsWith('baseline#'))).toBe(false);
    // the differ keeps its 20 costliest files, ordered as inspect orders them
    expect(json.ops.top.map((f: any) => [f.path, f.carried])).toEqual(made.stats.top.map((f: any) => [f.path, f.carried]));
    expectOneError(await ferry(['bundle', 'inspect', file, '--trust', fx.keys.bundle.pub]), 4, 'FERRY_ERR_SIGNATURE_INVALID');
  });

  it('prints what the bundle holds, docker pull, ratios and transfer times; says the signature was not checked', async () => {
    const r = await ferry(['bundle', 'inspect', file, '--link', '9600bit']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('signature not checked');
    expect(r.stdout).toMatch(/^what the bundle holds: /m);
    expect(r.stdout).toMatch(/body: zstd patch-from delta\s+\d+/);
    expect(r.stdout).toMatch(/^what docker pull would send/m);
    expect(r.stdout).toMatch(/BYTES\s+VS BUNDLE\s+AT 9.6 kbit\/s/);
    expect(r.stdout).toMatch(/^ {2}ferry bundle\s+\S+ (B|KiB)\s+1x\s+\d/m);
  });

  it('parses --link rates', async () => {
    const cases: [string, number][] = [['9600bit', 9600], ['64kbit', 64_000], ['1mbit', 1_000_000], ['2Mbit/s', 2_000_000], ['100kB/s', 800_000]];
    for (const [text, bits] of cases) {
      const { run, json } = await ferryJson<any>(['bundle', 'inspect', file, '--link', text]);
      expect(run.code, text).toBe(0);
      expect(json.dockerPull.link.bitsPerSecond, text).toBe(bits);
      expect(json.dockerPull.link.seconds.bundle).toBeCloseTo((made.bundleBytes * 8) / bits);
    }
    expectOneError(await ferry(['bundle', 'inspect', file, '--link', 'fast']), 2, 'FERRY_ERR_USAGE');
  });

  it('picks one bundle of a repository with --bundle', async () => {
    const repo = join(work, 'repo');
    expectOneError(await ferry(['bundle', 'inspect', repo]), 2, 'FERRY_ERR_USAGE');
    const id = (await readdir(join(repo, 'headers')))[0]!;
    const { run, json } = await ferryJson<any>(['bundle', 'inspect', repo, '--bundle', id.slice(0, 12)]);
    expect(run.code, run.stderr).toBe(0);
    expect(json.id).toBe(`sha256:${id}`);
    expect(json.signature.signers.header).toEqual([fx.keys.bundle.id]);
  });
});
