/**
 * Every read bounded before it happens (DESIGN.md section 8): hostile inputs handed to the built
 * `ferry` get exactly one error code, in bounded time (a generous timeout that only a hang would
 * hit) and bounded memory (a 64 MB V8 heap, and a peak RSS the test checks, so an unbounded
 * Buffer, which lives outside the heap, fails too). Inputs: 16 MiB of nested msgpack arrays,
 * chunks that are /dev/zero or a 1.5 GiB sparse file, FIFOs as a header, a bundle file and a trust
 * file, signed headers with 3,000 copies of a baseline layer, an absurd chunk size, channel `.` or
 * `..`, deep nesting; and ref files whose names are not encoded refs.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { cp, mkdtemp, readFile, readdir, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FERRY_FILE_MAGIC, decodeLimited, decodeRelease, headerDocument, encodeMsgpack, encodeRelease, parseEnvelope, parsePrivateKey, signEnvelope, type PrivateKey } from '@ferry/core';
import { MAIN, ensureBuilt, ferry } from '@ferry/test-support';
import { deviceStore, makeBundleFixture, type BundleFixture } from './helpers/bundles.js';

const REPORT_RSS = createRequire(import.meta.url).resolve('@ferry/test-support/report-rss');
/** V8 heap of the victim, and the peak RSS allowed (node itself takes about 60 MB). */
const HEAP_MB = 64;
const RSS_MAX_MB = 200;
/** Only a hang reaches this. */
const HANG_MS = 120_000;

let work: string;
let fx: BundleFixture;
let file: string;
let repo: string;
let device: string;
let key: PrivateKey;
let n = 0;

/** What a bounded run did. */
interface BoundedRun {
  code: number | null;
  stderr: string;
  hung: boolean;
  maxRssMb: number;
}

/** Runs the built ferry with a small heap, reporting its peak RSS; kills it if it hangs. */
function bounded(args: string[], store = device): Promise<BoundedRun> {
  const argv = [`--max-old-space-size=${HEAP_MB}`, '--import', REPORT_RSS, MAIN, '--store', store, ...args];
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH } });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, HANG_MS);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      // the --import hook also runs in worker threads (the applier's writer): every line is one
      // thread's view of the same process's peak; keep the largest
      const rss = [...stderr.matchAll(/^ferry-test-maxrss-kb (\d+)$/gm)].map((m) => Number(m[1]));
      resolve({ code, hung, stderr: stderr.replace(/^ferry-test-maxrss-kb \d+\n?/gm, ''), maxRssMb: rss.length ? Math.max(...rss) / 1024 : Number.NaN });
    });
  });
}

/** The run refused with exactly `code` (one error line, exit `exit`), in bounded time and memory. */
function expectRefused(r: BoundedRun, exit: number, code: string, what: string): void {
  expect(r.hung, `${what}: hung (killed after ${HANG_MS} ms)`).toBe(false);
  expect(r.stderr.trim().split('\n'), `${what}: ${r.stderr}`).toHaveLength(1);
  expect(r.stderr, what).toMatch(new RegExp(`^ferry: error ${code}: \\S`));
  expect(r.code, `${what}: ${r.stderr}`).toBe(exit);
  expect(r.maxRssMb, `${what}: peak RSS`).toBeLessThan(RSS_MAX_MB);
}

async function fresh(name: string): Promise<string> {
  return join(work, `${n++}-${name}`);
}

/** A .ferry file: magic, header length, header envelope, payload. */
function ferryFile(envelope: Uint8Array, payload: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(envelope.length);
  return Buffer.concat([FERRY_FILE_MAGIC, len, envelope, payload]);
}

/** The fixture bundle's header document and payload, for crafting signed lies. */
async function fixtureParts(): Promise<{ doc: Record<string, unknown>; payload: Buffer }> {
  const bytes = await readFile(file);
  const hlen = bytes.readUInt32BE(8);
  const { signed } = parseEnvelope('header', bytes.subarray(12, 12 + hlen));
  const doc = decodeLimited(headerDocument(signed), { maxStrLength: 1 << 20, maxBinLength: 1 << 26, maxArrayLength: 1 << 22, maxMapLength: 64 }, 'test') as Record<string, unknown>;
  return { doc, payload: bytes.subarray(12 + hlen) };
}

/** A .ferry whose header document is `doc` with `change` applied, signed by the trusted key. */
async function signedLie(name: string, change: (doc: Record<string, unknown>) => Uint8Array | Record<string, unknown>): Promise<string> {
  const { doc, payload } = await fixtureParts();
  const changed = change(doc);
  const docBytes = changed instanceof Uint8Array ? changed : encodeMsgpack(changed);
  const path = await fresh(`${name}.ferry`);
  await writeFile(path, ferryFile(signEnvelope('header', docBytes, [key]), payload));
  return path;
}

/** The fixture's release statement with `change` applied, signed by the trusted release key. */
function releaseWith(doc: Record<string, unknown>, change: Record<string, unknown>): Uint8Array {
  const r = decodeRelease(parseEnvelope('release', doc.release as Uint8Array).signed);
  return signEnvelope('release', encodeRelease({ ...r, ...change }), [key]);
}

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'ferry-cli-bounded-'));
  fx = await makeBundleFixture(work);
  key = parsePrivateKey(await readFile(fx.keys.release.key));
  file = join(work, 'v2.ferry');
  repo = join(work, 'repo');
  for (const out of [file, repo]) {
    const r = await ferry(['bundle', '--from', 'app:v1', '--to', 'app:v2', '--key', fx.keys.release.key, '--out', out, '--channel', 'stable', '--release', '5', '--chunk-size', '16KiB'], { store: fx.publisher });
    expect(r.code, r.stderr).toBe(0);
  }
  device = await deviceStore(fx, join(work, 'device'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const apply = (bundle: string, ...more: string[]): Promise<BoundedRun> => bounded(['apply', bundle, '--trust', fx.keys.release.pub, ...more]);

describe('msgpack nesting', () => {
  it('16 MiB of nested arrays in an unsigned file: FERRY_ERR_MSGPACK_INVALID, before any signature check', async () => {
    const deep = Buffer.alloc(16 * 1024 * 1024 - 1, 0x91);
    deep[deep.length - 1] = 0xc0;
    const path = await fresh('deep.ferry');
    await writeFile(path, ferryFile(deep, Buffer.alloc(0)));
    expectRefused(await apply(path), 4, 'FERRY_ERR_MSGPACK_INVALID', 'apply');
    expectRefused(await bounded(['bundle', 'inspect', path]), 4, 'FERRY_ERR_MSGPACK_INVALID', 'bundle inspect');
  });

  it('a signed header nested one level deeper than the format: FERRY_ERR_MSGPACK_INVALID', async () => {
    const path = await signedLie('nested-layers', (doc) => ({ ...doc, layers: [(doc.layers as unknown[]).map((l) => [l])] }));
    expectRefused(await apply(path), 4, 'FERRY_ERR_MSGPACK_INVALID', 'apply');
  });
});

describe('files that are not what they claim', () => {
  it('a chunk symlinked to /dev/zero, or a 1.5 GiB sparse chunk: FERRY_ERR_CHUNK_INVALID', async () => {
    const chunks = (await readdir(join(repo, 'chunks'))).sort();
    for (const kind of ['dev-zero', 'huge'] as const) {
      const copy = await fresh(`repo-${kind}`);
      await cp(repo, copy, { recursive: true });
      const victim = join(copy, 'chunks', chunks[0]!);
      await rm(victim);
      if (kind === 'dev-zero') await symlink('/dev/zero', victim);
      else {
        await writeFile(victim, '');
        await truncate(victim, 1.5 * 1024 * 1024 * 1024);
      }
      expectRefused(await apply(copy), 4, 'FERRY_ERR_CHUNK_INVALID', kind);
    }
  });

  it('a FIFO as a repository header or as a .ferry file: FERRY_ERR_BUNDLE_INVALID, no hang', async () => {
    const copy = await fresh('repo-fifo');
    await cp(repo, copy, { recursive: true });
    const [header] = await readdir(join(copy, 'headers'));
    await rm(join(copy, 'headers', header!));
    await mkfifo(join(copy, 'headers', header!));
    expectRefused(await apply(copy), 4, 'FERRY_ERR_BUNDLE_INVALID', 'header FIFO');
    const fifo = await fresh('bundle.ferry');
    await mkfifo(fifo);
    expectRefused(await apply(fifo), 4, 'FERRY_ERR_BUNDLE_INVALID', '.ferry FIFO');
    expectRefused(await bounded(['apply', '/dev/zero', '--trust', fx.keys.release.pub]), 4, 'FERRY_ERR_BUNDLE_INVALID', '.ferry /dev/zero');
  });

  it('a FIFO or /dev/zero as a trust file or a key: FERRY_ERR_TRUST_INVALID / FERRY_ERR_KEY_INVALID', async () => {
    const fifo = await fresh('trust.pub');
    await mkfifo(fifo);
    expectRefused(await bounded(['apply', file, '--trust', fifo]), 2, 'FERRY_ERR_TRUST_INVALID', 'trust FIFO');
    expectRefused(await bounded(['apply', file, '--trust', '/dev/zero']), 2, 'FERRY_ERR_TRUST_INVALID', 'trust /dev/zero');
    const big = await fresh('huge.pub');
    await writeFile(big, '');
    await truncate(big, 1024 * 1024 * 1024);
    expectRefused(await bounded(['apply', file, '--trust', big]), 2, 'FERRY_ERR_TRUST_INVALID', 'trust of 1 GiB');
    const out = await fresh('never.ferry');
    expectRefused(await bounded(['bundle', '--from', 'app:v1', '--to', 'app:v2', '--key', '/dev/zero', '--out', out], fx.publisher), 2, 'FERRY_ERR_KEY_INVALID', 'key /dev/zero');
  });
});

async function mkfifo(path: string): Promise<void> {
  await new Promise<void>((resolve, reject) => spawn('mkfifo', [path]).on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`mkfifo exited ${c}`)))));
}

describe('signed headers that are absurd', () => {
  it('3,000 copies of one baseline layer, an absurd chunk size, a need no layer can use: FERRY_ERR_BUNDLE_INVALID', async () => {
    const lies: [string, (doc: Record<string, unknown>) => Record<string, unknown>][] = [
      ['baseline-repeated', (doc) => ({ ...doc, baseline: Array.from({ length: 3000 }, () => (doc.baseline as unknown[])[0]) })],
      ['chunk-size-2^40', (doc) => ({ ...doc, payload: [(doc.payload as unknown[])[0], 2 ** 40, [((doc.payload as unknown[])[2] as unknown[])[0]]] })],
      ['need-2^50', (doc) => ({ ...doc, need: 2 ** 50 })],
    ];
    for (const [name, change] of lies) expectRefused(await apply(await signedLie(name, change)), 4, 'FERRY_ERR_BUNDLE_INVALID', name);
  });

  it('a baseline list over its cap: FERRY_ERR_LIMIT_EXCEEDED', async () => {
    const path = await signedLie('baseline-5000', (doc) => ({ ...doc, baseline: Array.from({ length: 5000 }, (_, i) => Buffer.alloc(32, i % 251)) }));
    expectRefused(await apply(path), 4, 'FERRY_ERR_LIMIT_EXCEEDED', 'baseline of 5000');
  });

  it('channel "." or "..": FERRY_ERR_BUNDLE_INVALID; the store keeps working and fsck stays clean', async () => {
    for (const channel of ['.', '..', 'a/b']) {
      const path = await signedLie(`channel-${channel.replace(/\W/g, 'x')}`, (doc) => ({ ...doc, release: releaseWith(doc, { channel }) }));
      expectRefused(await apply(path), 4, 'FERRY_ERR_BUNDLE_INVALID', `channel ${channel}`);
    }
    expectRefused(await apply(await signedLie('ref-bad', (doc) => ({ ...doc, release: releaseWith(doc, { ref: '../../etc:x' }) }))), 2, 'FERRY_ERR_REF_INVALID', 'ref');
    const ok = await apply(file);
    expect(ok.code, ok.stderr).toBe(0);
    expect((await bounded(['fsck'])).code).toBe(0);
  });
});

describe('ref files whose names are not encoded refs', () => {
  it('are reported by fsck, skipped by images, and gc keeps what they point at', async () => {
    const store = await fresh('store-bad-names');
    await cp(fx.publisher, store, { recursive: true });
    const refs = join(store, 'refs');
    const other = await readFile(join(refs, encodeURIComponent('app:other')));
    expect((await ferry(['rm', 'app:other'], { store })).code).toBe(0);
    for (const name of ['%E0%A4%A', 'NotARef', 'app%3Av1%2']) await writeFile(join(refs, name), other);
    const images = await bounded(['images', '--json'], store);
    expect(images.code, images.stderr).toBe(0);
    const fsck = await bounded(['fsck'], store);
    expectRefused({ ...fsck, stderr: 'ferry: error FERRY_ERR_X: fsck' }, 4, 'FERRY_ERR_X', 'fsck exit');
    const report = await ferry(['fsck', '--json'], { store });
    const problems = (JSON.parse(report.stdout) as { problems: { kind: string; id: string }[] }).problems;
    expect(problems.map((p) => `${p.kind} ${p.id}`).sort()).toEqual(['ref %E0%A4%A', 'ref NotARef', 'ref app%3Av1%2']);
    const listed = await ferry(['images', '--json'], { store });
    expect((JSON.parse(listed.stdout) as { images: { ref: string }[] }).images.map((i) => i.ref)).toEqual(['app:v1', 'app:v2']);
    const gc = await bounded(['gc', '--json'], store);
    expect(gc.code, gc.stderr).toBe(0);
    // other's objects are still there: an export of its manifest digest through a proper ref works
    await writeFile(join(refs, encodeURIComponent('app:other')), other);
    for (const name of ['%E0%A4%A', 'NotARef', 'app%3Av1%2']) await rm(join(refs, name));
    expect((await ferry(['fsck'], { store })).code).toBe(0);
  });
});
