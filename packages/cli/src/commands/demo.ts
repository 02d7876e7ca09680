/**
 * `ferry demo` (`npm run demo`): the whole update path on generated images, in a temp directory,
 * with no network and nothing installed. A publisher store gets two versions of a sample image
 * (imagegen), a device store gets v1, a bundle v1 -> v2 travels as a `.ferry` file, the device
 * applies it, and the image IDs (config digests) are compared, also after an OCI export.
 */
import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError, Store, applyBundle, exportOci, generateKeyPair, importImage, openBundle, openImage, parsePlatform, parsePrivateKey, parsePublicKey, rolePolicy, sha256, type Digest } from '@ferry/core';
import type { ReleaseChanges } from '@ferry/imagegen';
import { stringOpt, userPath, type CommandSpec } from '../command.js';
import { writeJson, type Invocation } from '../context.js';
import { EXIT, usage } from '../errors.js';
import { comparePull, comparisonLines, type PullComparison } from '../compare.js';
import { count, humanBytes, shortDigest } from '../format.js';
import { createProgress, type ProgressSink } from '../progress.js';
import { formatDuration } from '../units.js';
import { writeKeyFile } from './keygen.js';

/** The link the demo's table assumes (DESIGN.md: tactical radio, satellite). */
const DEMO_LINK = 64_000;
const PLATFORM = 'linux/amd64';

interface Demo {
  work: string;
  say: (line: string) => void;
  /** A progress bar for one step (on a terminal only). */
  progress: (unit: 'bytes' | 'items') => ProgressSink;
  signal?: AbortSignal | undefined;
}

/** Runs `fn` (with a progress sink), then prints `detail(result)` with the elapsed time. */
async function step<T>(d: Demo, title: string, fn: (progress: ProgressSink) => Promise<T>, detail: (r: T) => string[], unit: 'bytes' | 'items' = 'bytes'): Promise<T> {
  d.say(title);
  const t0 = performance.now();
  const progress = d.progress(unit);
  let r: T;
  try {
    r = await fn(progress);
  } finally {
    progress.stop();
  }
  const lines = detail(r);
  lines[lines.length - 1] += ` (${formatDuration((performance.now() - t0) / 1000)})`;
  for (const l of lines) d.say(`   ${l}`);
  return r;
}

function changeLine(c: ReleaseChanges | undefined): string {
  if (!c) return 'v2: a release of v1';
  return `v2: ${count(c.edited.length)} files edited, ${count(c.added.length)} added, ${count(c.removed.length)} removed; its base layer was rebuilt with new mtimes, so no layer digest is shared with v1`;
}

async function generate(d: Demo): Promise<void> {
  const { writeImagePair } = await import('@ferry/imagegen');
  await step(d, '1. Build two versions of a sample image (imagegen, generated in code)', () => writeImagePair(join(d.work, 'images'), { platform: PLATFORM, signal: d.signal }), (g) => {
    const size = (t: 'v1' | 'v2'): string => {
      const layers = g.images[t]!.manifests[0]!.layers;
      return `${layers.length} layers, ${humanBytes(layers.reduce((a, l) => a + l.size, 0))} (${humanBytes(layers.reduce((a, l) => a + l.blobSize, 0))} gzip)`;
    };
    return [`edgeapp v1: ${size('v1')}; v2: ${size('v2')}`, changeLine(g.changes)];
  });
}

async function importBoth(d: Demo): Promise<{ publisher: Store; device: Store }> {
  const layout = join(d.work, 'images');
  const platform = parsePlatform(PLATFORM);
  const load = async (store: Store, tag: string): Promise<void> => {
    await importImage(store, await openImage(layout, { ref: tag, platform }), `edgeapp:${tag}`, { signal: d.signal });
  };
  return step(d, '2. Import v1 and v2 into the publisher\'s store, and v1 into the device\'s store', async () => {
    const publisher = await Store.open(join(d.work, 'publisher-store'), { create: true });
    const device = await Store.open(join(d.work, 'device-store'), { create: true });
    // two stores, two locks: the device import runs beside the publisher's
    await Promise.all([load(publisher, 'v1').then(() => load(publisher, 'v2')), load(device, 'v1')]);
    return { publisher, device };
  }, () => ['each file body is stored once (zstd); layers keep their exact tar bytes as skeletons']);
}

async function keygen(d: Demo): Promise<{ privatePem: string; publicPem: string; id: string }> {
  return step(d, '3. Generate the release signing key (Ed25519)', async () => {
    const pair = generateKeyPair();
    await writeKeyFile(join(d.work, 'release.key'), pair.privatePem, 0o600);
    await writeKeyFile(join(d.work, 'release.pub'), pair.publicPem, 0o644);
    return pair;
  }, (p) => [`release.key (stays with the publisher) and release.pub (on the device); key id ${p.id}`]);
}

interface Bundled {
  file: string;
  bytes: number;
  comparison: PullComparison;
}

async function bundle(d: Demo, publisher: Store, privatePem: string): Promise<Bundled> {
  const file = join(d.work, 'edgeapp-v2.ferry');
  const key = parsePrivateKey(privatePem);
  const now = Math.floor(Date.now() / 1000);
  const { createBundle, writeFerryFile } = await import('@ferry/differ');
  return step(d, '4. Bundle v1 -> v2 on the publisher into edgeapp-v2.ferry', async (progress) => {
    const b = await createBundle(publisher, { from: ['edgeapp:v1'], to: 'edgeapp:v2', channel: 'demo', release: now, expires: now + 7 * 86400, releaseKeys: [key], headerKeys: [key], pullSizes: true, onProgress: progress.update });
    try {
      await writeFerryFile(file, b.signed);
    } finally {
      await b.dispose();
    }
    const bytes = b.signed.envelope.length + b.signed.payloadSize;
    return { file, bytes, comparison: comparePull(bytes, b.layers, DEMO_LINK), stats: b.stats, layers: b.layers, signed: b.signed };
  }, (b) => {
    const rebuilt = b.layers.filter((l) => l.mode === 'rebuild').length;
    const s = b.stats;
    return [
      `${rebuilt} layers rebuilt, ${b.layers.length - rebuilt} reused; of ${count(s.entries)} tar entries, ${count(s.runEntries)} are runs of entries the device has (a few bytes per run), ${count(s.bodies.patch.files + s.bodies.bsdiff.files + s.bodies.segmented.files)} files travel as deltas and ${count(s.bodies.literal.files)} as new bytes`,
      `bundle: ${humanBytes(b.bytes)} (header ${humanBytes(b.signed.envelope.length)}, payload in ${count(b.signed.chunks.length)} chunks of ${humanBytes(b.signed.chunkSize)}), signed`,
    ];
  }, 'items');
}

async function apply(d: Demo, device: Store, b: Bundled, publicPem: string): Promise<Digest> {
  const pub = parsePublicKey(publicPem);
  return step(d, '5. Carry the file to the device and apply it (signature, every chunk, every rebuilt layer checked)', async (progress) => {
    const trust = { release: rolePolicy([pub]), header: rolePolicy([pub]) };
    return applyBundle(device, await openBundle(b.file), { trust, signal: d.signal, onProgress: progress.update });
  }, (r) => [`${r.ref} installed: ${r.layers.filter((l) => l.mode === 'rebuild').length} layers rebuilt and verified against their diff_ids`]).then((r) => r.configDigest);
}

/** The config digest of the (only) image in an OCI layout, with the config blob re-hashed. */
async function layoutConfigDigest(dir: string): Promise<Digest> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const blob = async (d: string): Promise<Buffer> => readFile(join(dir, 'blobs', 'sha256', d.replace(/^sha256:/, '')));
  const manifest = JSON.parse((await blob(index.manifests[0]!.digest)).toString('utf8')) as { config: { digest: Digest } };
  const config = await blob(manifest.config.digest);
  const actual = sha256(config);
  if (actual !== manifest.config.digest) throw new FerryError('FERRY_ERR_DIGEST_MISMATCH', `exported config blob hashes to ${actual}, not ${manifest.config.digest}`);
  return manifest.config.digest;
}

async function verify(d: Demo, publisher: Store, device: Store, applied: Digest): Promise<{ publisher: Digest; device: Digest; exported: Digest }> {
  return step(d, '6. Verify: is the device\'s image the publisher\'s, bit for bit?', async () => {
    const want = (await publisher.resolve('edgeapp:v2')).configDigest;
    const got = (await device.resolve('edgeapp:v2')).configDigest;
    const out = join(d.work, 'device-export');
    await exportOci(device, 'edgeapp:v2', out, { signal: d.signal });
    const exported = await layoutConfigDigest(out);
    if (got !== want || applied !== want || exported !== want) {
      throw new FerryError('FERRY_ERR_DIGEST_MISMATCH', `image IDs differ: publisher ${want}, device ${got}, exported ${exported}`);
    }
    return { publisher: want, device: got, exported };
  }, (v) => [`publisher image ID ${shortDigest(v.publisher)}, device image ID ${shortDigest(v.device)}: the image IDs match`, `the device's edgeapp:v2 exported as an OCI layout has config digest ${v.exported} (layers verified while streaming)`]);
}

/**
 * A throwaway demo runs in memory when /dev/shm exists: its stores fsync every write (DESIGN.md
 * section 8), which on a busy disk would take longer than the work itself. A kept one goes to tmpdir.
 */
export async function tempRoot(keep: boolean): Promise<string> {
  if (keep) return tmpdir();
  return access('/dev/shm', constants.W_OK).then(() => '/dev/shm', () => tmpdir());
}

async function workDir(inv: Invocation, keep: boolean): Promise<{ dir: string; remove: () => Promise<void> }> {
  const given = stringOpt(inv, 'dir');
  if (given === undefined) {
    const dir = await mkdtemp(join(await tempRoot(keep), 'ferry-demo-'));
    return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
  }
  const dir = userPath(inv, given);
  await mkdir(dir, { recursive: true });
  if ((await readdir(dir)).length > 0) throw usage(`${dir} is not empty; ferry demo offline --dir needs an empty or new directory`);
  // only what the demo wrote goes; the directory the user named stays
  return { dir, remove: async () => { for (const f of await readdir(dir)) await rm(join(dir, f), { recursive: true, force: true }); } };
}

async function run(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const keep = inv.values.keep === true;
  const { dir, remove } = await workDir(inv, keep);
  const d: Demo = { work: dir, say: global.json ? () => {} : (l) => void ctx.stdout.write(`${l}\n`), progress: (unit) => createProgress(ctx, { json: global.json, unit }), signal: ctx.signal };
  const t0 = performance.now();
  try {
    d.say(`ferry demo: update an edge device from edgeapp:v1 to edgeapp:v2 (work directory ${dir}${keep ? ', kept' : ', removed at the end'})`);
    d.say('');
    await generate(d);
    const { publisher, device } = await importBoth(d);
    const pair = await keygen(d);
    const b = await bundle(d, publisher, pair.privatePem);
    const applied = await apply(d, device, b, pair.publicPem);
    const ids = await verify(d, publisher, device, applied);
    const seconds = (performance.now() - t0) / 1000;
    if (global.json) writeJson(ctx, { workDir: keep ? dir : null, imageIdsMatch: true, imageId: ids.publisher, exportedConfigDigest: ids.exported, bundle: b.comparison, seconds });
    else for (const l of ['', `Result (the link: ${DEMO_LINK / 1000} kbit/s, e.g. a tactical radio or satellite modem):`, ...comparisonLines(b.comparison), '', `image IDs match: the device rebuilt exactly the image the publisher built (demo took ${formatDuration(seconds)})`]) d.say(l);
    return EXIT.ok;
  } finally {
    if (!keep) await remove();
  }
}

/** The offline demo command (the walk-through `ferry demo` was before the live demo). */
export const offlineDemoCommand: CommandSpec = {
  name: 'demo offline',
  summary: 'Run the whole update path on generated sample images: import, keygen, bundle v1 -> v2, apply on a device store, verify the image ID, and compare with docker pull at 64 kbit/s.',
  args: '',
  positionals: { min: 0, max: 0 },
  options: {
    dir: { type: 'string', arg: 'DIR', description: 'work in DIR (new or empty) instead of a temp directory' },
    keep: { type: 'boolean', description: 'keep the work directory (images, both stores, keys, the .ferry file, the export)' },
  },
  notes: ['Needs no network and installs nothing; --store is not used (the demo makes its own stores). Exits 4 if the image IDs differ.'],
  run,
};
