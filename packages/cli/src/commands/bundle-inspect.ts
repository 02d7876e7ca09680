/**
 * `ferry bundle inspect`: what a bundle holds (core's inspectBundle over its payload ops), what
 * docker pull would send instead, and how long each takes on a given link. Signatures are checked
 * only with --trust; without it the header is decoded as is and the output says so.
 */
import { Store, bundleId, decodeHeaderUnverified, inspectBundle, loadBaseline, openBundle, verifyHeader, type BaselineEntry, type BundleHeader, type BundleInspection, type BundleSource } from '@ferry/core';
import { listOpt, stringOpt, userPath, type CommandSpec } from '../command.js';
import { writeJson, writeLines, type Invocation } from '../context.js';
import { EXIT } from '../errors.js';
import { comparePull, pullKnown } from '../compare.js';
import { createProgress } from '../progress.js';
import { loadTrust } from '../trust.js';
import { parseRate, parseWhole } from '../units.js';
import { inspectionLines, type InspectView } from './bundle-inspect-view.js';

/** How the header was read: verified against trust, or decoded unchecked with the signers' key ids. */
export type SignatureState = { checked: true; trustFiles: string[] } | { checked: false; signers: { header: string[]; release: string[] } };

async function readHeader(inv: Invocation, source: BundleSource): Promise<{ header: BundleHeader; signature: SignatureState }> {
  const trustFiles = listOpt(inv, 'trust').map((t) => userPath(inv, t));
  if (trustFiles.length === 0) {
    const u = decodeHeaderUnverified(source.headerBytes);
    return { header: u.header, signature: { checked: false, signers: u.signers } };
  }
  const trust = await loadTrust(trustFiles);
  // now 0: an expired bundle is still shown (the view says it has expired)
  return { header: verifyHeader(source.headerBytes, { trust, now: 0 }), signature: { checked: true, trustFiles } };
}

/**
 * The baseline table, when a store was named (--store or $FERRY_STORE) and holds every baseline
 * layer; else undefined with the reason, and entries are shown as baseline#N.
 */
async function baselineFrom(inv: Invocation, h: BundleHeader): Promise<{ table?: BaselineEntry[]; note: string }> {
  if (h.baseline.length === 0) return { table: [], note: 'no baseline: every layer travels whole' };
  if (!inv.global.storeGiven) return { note: 'no --store given: baseline files are shown as baseline#N' };
  const store = await Store.open(inv.global.store);
  const missing: string[] = [];
  for (const d of h.baseline) if (!(await store.hasSkeleton(d))) missing.push(d);
  if (missing.length > 0) return { note: `${inv.global.store} lacks ${missing.length} of the ${h.baseline.length} baseline layers: baseline files are shown as baseline#N` };
  return { table: await loadBaseline(store, h.baseline), note: `baseline files named from ${inv.global.store}` };
}

async function run(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const rate = parseRate(stringOpt(inv, 'link') ?? '64kbit');
  const topText = stringOpt(inv, 'top');
  const top = topText === undefined ? 10 : parseWhole(topText, '--top', 0, 10_000);
  const path = userPath(inv, inv.positionals[0]!);
  const source = await openBundle(path, stringOpt(inv, 'bundle'));
  const { header, signature } = await readHeader(inv, source);
  const baseline = await baselineFrom(inv, header);
  const progress = createProgress(ctx, { json: global.json });
  let ins: BundleInspection;
  try {
    ins = await inspectBundle(header, source.chunks(header), { baseline: baseline.table, top, signal: ctx.signal, onProgress: progress.update });
  } finally {
    progress.stop();
  }
  const view: InspectView = { id: bundleId(source.headerBytes), where: path, header, headerBytes: source.headerBytes.length, signature, baselineNote: baseline.note, inspection: ins, comparison: pullKnown(header.layers) ? comparePull(source.headerBytes.length + header.payloadSize, header.layers, rate) : null, now: Math.floor(Date.now() / 1000) };
  if (global.json) writeJson(ctx, jsonView(view));
  else writeLines(ctx, inspectionLines(view));
  return EXIT.ok;
}

function jsonView(v: InspectView): object {
  const h = v.header;
  const { layers, ...ops } = v.inspection;
  return {
    id: v.id,
    where: v.where,
    signature: v.signature,
    release: h.release,
    expired: h.release.expires <= v.now,
    created: h.created,
    baseline: { layers: h.baseline, note: v.baselineNote },
    headerBytes: v.headerBytes,
    payloadBytes: h.payloadSize,
    bundleBytes: v.headerBytes + h.payloadSize,
    chunkSize: h.chunkSize,
    chunks: h.chunks.length,
    need: h.need,
    layers,
    rebuilt: layers.filter((l) => l.mode === 'rebuild').length,
    reused: layers.filter((l) => l.mode === 'reuse').length,
    ops,
    /** null when the bundle did not record docker pull's sizes (made without --compare-pull). */
    dockerPull: v.comparison,
  };
}

/** The bundle inspect command. */
export const bundleInspectCommand: CommandSpec = {
  name: 'bundle inspect',
  summary: 'Show what a bundle holds and what docker pull would send instead: bytes by op kind, layers reused and rebuilt, the costliest files, ratios and transfer times on a link.',
  args: 'FILE|DIR',
  positionals: { min: 1, max: 1 },
  options: {
    link: { type: 'string', arg: 'RATE', description: 'link rate for transfer times: 9600bit, 64kbit, 1mbit, 2Mbit/s, 100kB/s (default 64kbit)' },
    trust: { type: 'string', multiple: true, arg: 'FILE', description: 'check the signatures against a .pub key or JSON trust file (repeatable); without it they are not checked' },
    bundle: { type: 'string', arg: 'ID', description: 'which bundle of a repository directory (its id or a prefix)' },
    top: { type: 'string', arg: 'N', description: 'how many of the costliest files to list (default 10)' },
  },
  notes: [
    'FILE|DIR is a .ferry file or a bundle repository directory. Every chunk is checked against the',
    'header while the payload is read. With --store (or $FERRY_STORE) holding the baseline, files',
    'rebuilt from baseline entries are named by path; otherwise as baseline#N.',
    'examples:',
    '  ferry bundle inspect app-v2.ferry --link 9600bit',
    '  ferry bundle inspect ./repo --bundle 3f2a --trust release.pub --json',
  ],
  run,
};
