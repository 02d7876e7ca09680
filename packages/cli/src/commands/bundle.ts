/**
 * `ferry bundle`: computes the signed bundle that turns the `--from` images into `--to`
 * (DESIGN.md section 5) and writes it as a `.ferry` file or into a repository directory
 * (docs/format.md section 6).
 */
import { stat } from 'node:fs/promises';
import { CHUNK_SIZE_MAX, CHUNK_SIZE_MIN, Store, isChannelName, parseRef, type LayerPlan } from '@ferry/core';
import type { ComputedBundle } from '@ferry/differ';
import { listOpt, requiredOpt, stringOpt, userPath, type CommandSpec } from '../command.js';
import { writeJson, writeLines, type Invocation } from '../context.js';
import { EXIT, usage } from '../errors.js';
import { comparePull, comparisonLines, type PullComparison } from '../compare.js';
import { count, humanBytes, plural, shortDigest } from '../format.js';
import { createProgress } from '../progress.js';
import { readPrivateKeys } from '../trust.js';
import { parseExpiry, parseSize, parseWhole } from '../units.js';

interface BundlePlan {
  from: string[];
  to: string;
  out: string;
  container: 'file' | 'dir';
  channel: string;
  release: number;
  expires: number;
  installAs: string | undefined;
  chunkSize: number | undefined;
  maxPatchReference: number | undefined;
  level: number | undefined;
  /** Gzip every target layer to compare with docker pull (a full extra read of the image). */
  pullSizes: boolean;
  /** Sign the header document uncompressed, for devices running a ferry from before header format 4. */
  plainHeader: boolean;
}

async function outKind(path: string): Promise<'file' | 'dir'> {
  const st = await stat(path).catch(() => undefined);
  if (path.endsWith('.ferry')) {
    if (st?.isDirectory()) throw usage(`${path} is a directory; a .ferry output is a file`);
    return 'file';
  }
  if (st && !st.isDirectory()) throw usage(`${path} is a file; --out takes a directory (a bundle repository) or a name ending in .ferry`);
  return 'dir';
}

async function plan(inv: Invocation): Promise<BundlePlan> {
  const now = Math.floor(Date.now() / 1000);
  const from = listOpt(inv, 'from');
  const to = requiredOpt(inv, 'to', 'NAME:TAG');
  for (const r of [...from, to]) parseRef(r);
  const installAs = stringOpt(inv, 'install-as');
  if (installAs !== undefined) parseRef(installAs);
  const channel = stringOpt(inv, 'channel') ?? 'default';
  if (!isChannelName(channel)) throw usage(`--channel takes letters, digits, '.', '_' and '-' (up to 128), got ${JSON.stringify(channel)}`);
  const out = userPath(inv, requiredOpt(inv, 'out', 'DIR|FILE.ferry'));
  const opt = <T>(name: string, parse: (s: string) => T): T | undefined => {
    const s = stringOpt(inv, name);
    return s === undefined ? undefined : parse(s);
  };
  const chunkSize = opt('chunk-size', (s) => parseSize(s, '--chunk-size'));
  if (chunkSize !== undefined && (chunkSize < CHUNK_SIZE_MIN || chunkSize > CHUNK_SIZE_MAX)) throw usage('--chunk-size must be from 1KiB to 16MiB');
  return {
    from,
    to,
    out,
    container: await outKind(out),
    channel,
    release: opt('release', (s) => parseWhole(s, '--release', 0, Number.MAX_SAFE_INTEGER)) ?? now,
    expires: parseExpiry(stringOpt(inv, 'expires') ?? '90d', now),
    installAs,
    chunkSize,
    maxPatchReference: opt('max-patch-ref', (s) => parseSize(s, '--max-patch-ref')),
    level: opt('level', (s) => parseWhole(s, '--level', 1, 22)),
    pullSizes: inv.values['compare-pull'] === true,
    plainHeader: inv.values['plain-header'] === true,
  };
}

function layerJson(layers: LayerPlan[]): object[] {
  return layers.map((l) => ({ diffId: l.diffId, size: l.size, mode: l.mode, gzipSize: l.gzipSize, frameBytes: l.end - l.start }));
}

interface Written {
  chunksWritten: number;
  chunksShared: number;
}

function humanReport(p: BundlePlan, b: ComputedBundle, w: Written, cmp: PullComparison, configDigest: string): string[] {
  const s = b.signed;
  const rebuilt = b.layers.filter((l) => l.mode === 'rebuild').length;
  const chunks = p.container === 'dir' ? `${plural(s.chunks.length, 'chunk')} of ${humanBytes(s.chunkSize)} (${w.chunksWritten} written, ${w.chunksShared} already there)` : `${plural(s.chunks.length, 'chunk')} of ${humanBytes(s.chunkSize)}`;
  return [
    `bundle ${s.id}`,
    `  ${p.from.length > 0 ? p.from.join(', ') : '(nothing)'} -> ${p.to} (image ID ${shortDigest(configDigest)}), installs as ${p.installAs ?? p.to}`,
    `  channel ${p.channel}, release ${p.release}, expires ${new Date(p.expires * 1000).toISOString().replace('.000Z', 'Z')}`,
    `  payload ${humanBytes(s.payloadSize)} (${count(s.payloadSize)} bytes) in ${chunks}, header ${humanBytes(s.envelope.length)}`,
    `  layers: ${rebuilt} rebuilt, ${b.layers.length - rebuilt} reused`,
    `  wrote ${p.container === 'file' ? p.out : `${p.out} (repository: headers/, chunks/)`}`,
    '',
    ...(p.pullSizes ? comparisonLines(cmp) : ['  docker pull: not measured (--compare-pull gzips every target layer to compare)']),
    '',
    `details: ferry bundle inspect ${p.out}${p.container === 'dir' ? ` --bundle ${shortDigest(s.id)}` : ''} [--link RATE]`,
  ];
}

async function run(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const p = await plan(inv);
  const keyPaths = listOpt(inv, 'key').map((k) => userPath(inv, k));
  if (keyPaths.length === 0) throw usage('ferry bundle needs --key FILE (the release signing key; see ferry keygen)');
  const releaseKeys = await readPrivateKeys(keyPaths);
  const bundleKeyPaths = listOpt(inv, 'bundle-key').map((k) => userPath(inv, k));
  const headerKeys = bundleKeyPaths.length > 0 ? await readPrivateKeys(bundleKeyPaths) : releaseKeys;
  const store = await Store.open(global.store);
  const target = await store.resolve(p.to);
  const progress = createProgress(ctx, { json: global.json, unit: 'items' });
  const { createBundle, writeBundleDir, writeFerryFile } = await import('@ferry/differ');
  let b: ComputedBundle;
  try {
    b = await createBundle(store, { ...p, releaseKeys, headerKeys, onProgress: progress.update, signal: ctx.signal });
  } finally {
    progress.stop();
  }
  let w: Written = { chunksWritten: b.signed.chunks.length, chunksShared: 0 };
  try {
    if (p.container === 'file') await writeFerryFile(p.out, b.signed);
    else w = await writeBundleDir(p.out, b.signed);
  } finally {
    await b.dispose();
  }
  const s = b.signed;
  const cmp = comparePull(s.envelope.length + s.payloadSize, b.layers);
  if (global.json) {
    const rebuilt = b.layers.filter((l) => l.mode === 'rebuild').length;
    writeJson(ctx, { id: s.id, out: p.out, container: p.container, from: p.from, to: p.to, ref: p.installAs ?? p.to, channel: p.channel, release: p.release, expires: p.expires, configDigest: target.configDigest, manifestDigest: target.manifestDigest, headerBytes: s.envelope.length, payloadBytes: s.payloadSize, bundleBytes: cmp.bundleBytes, chunkSize: s.chunkSize, chunks: s.chunks.length, ...w, layers: layerJson(b.layers), rebuilt, reused: b.layers.length - rebuilt, ...(p.pullSizes ? { dockerPull: cmp } : {}), stats: b.stats });
  } else {
    writeLines(ctx, humanReport(p, b, w, cmp, target.configDigest));
  }
  return EXIT.ok;
}

/** The bundle command. */
export const bundleCommand: CommandSpec = {
  name: 'bundle',
  summary: 'Compute the signed bundle that updates devices from the --from images to --to; it is written as a .ferry file or into a bundle repository directory.',
  args: '',
  positionals: { min: 0, max: 0 },
  options: {
    from: { type: 'string', multiple: true, arg: 'NAME:TAG', description: 'an image the devices hold (repeatable); none: every layer travels whole' },
    to: { type: 'string', arg: 'NAME:TAG', description: 'the target image in the store (required)' },
    key: { type: 'string', multiple: true, arg: 'FILE', description: 'release signing key, PEM (required; repeat for a threshold)' },
    'bundle-key': { type: 'string', multiple: true, arg: 'FILE', description: 'header signing key (default: the --key)' },
    out: { type: 'string', arg: 'DIR|FILE.ferry', description: 'a name ending in .ferry writes one file; otherwise a repository directory (created or added to; shared chunks are skipped)' },
    channel: { type: 'string', arg: 'NAME', description: 'release channel (default "default")' },
    release: { type: 'string', arg: 'N', description: 'release number, must grow per channel (default: the current unix time)' },
    expires: { type: 'string', arg: 'WHEN', description: 'expiry: a span (90d, 12h), a date (2026-12-31) or unix seconds (default 90d)' },
    'install-as': { type: 'string', arg: 'NAME:TAG', description: 'ref the device installs the image under (default: --to)' },
    'chunk-size': { type: 'string', arg: 'SIZE', description: 'payload chunk size (default 64KiB; see docs/format.md section 6.1)' },
    'max-patch-ref': { type: 'string', arg: 'SIZE', description: 'largest patch reference set (baseline files concatenated), bounding device memory; devices apply with the same cap (default 16MiB)' },
    'compare-pull': { type: 'boolean', description: 'gzip every target layer to report what docker pull would send (a full extra read of the image)' },
    level: { type: 'string', arg: 'N', description: 'zstd level of the payload and patches, 1-22 (default 19)' },
    'plain-header': { type: 'boolean', description: 'sign the header uncompressed (format 1-3), for devices running a ferry that predates compressed headers (docs/format.md section 4.1)' },
  },
  notes: [
    'The store (--store) is the publisher\'s: it must hold the --to image and every --from image.',
    'Prints the bundle id, payload size, chunks, layers reused/rebuilt, and what docker pull would send.',
    'ferry bundle inspect FILE|DIR shows what a bundle holds (see ferry bundle inspect --help).',
    'examples:',
    '  ferry bundle --from app:v1 --to app:v2 --key release.key --out app-v2.ferry',
    '  ferry bundle --from app:v1 --to app:v2 --key release.key --bundle-key bundle.key --channel stable --out ./repo',
  ],
  run,
};
