/** Human rendering of `ferry bundle inspect`. */
import type { BundleHeader, BundleInspection } from '@ferry/core';
import { comparisonLines, type PullComparison } from '../compare.js';
import { count, humanBytes, plural, shortDigest, table } from '../format.js';
import type { SignatureState } from './bundle-inspect.js';

/** Everything the view shows. */
export interface InspectView {
  id: string;
  where: string;
  header: BundleHeader;
  headerBytes: number;
  signature: SignatureState;
  baselineNote: string;
  inspection: BundleInspection;
  /** null: the bundle did not record docker pull's sizes. */
  comparison: PullComparison | null;
  /** Unix seconds, for the expiry line. */
  now: number;
}

const iso = (unix: number): string => new Date(unix * 1000).toISOString().replace('.000Z', 'Z');

function signatureLine(s: SignatureState): string {
  if (s.checked) return `signature verified (header and release roles) against ${s.trustFiles.join(', ')}`;
  const ids = (a: string[]): string => (a.length === 0 ? 'nobody' : `key ${a.join(', ')}`);
  return `signature not checked (no --trust given): the header names ${ids(s.signers.header)}, the release statement ${ids(s.signers.release)}`;
}

function headLines(v: InspectView): string[] {
  const h = v.header;
  const r = h.release;
  const expiry = r.expires <= v.now ? `EXPIRED at ${iso(r.expires)}` : `expires ${iso(r.expires)}`;
  return [
    `bundle ${v.id} (${v.where})`,
    `  installs ${r.ref} (image ID ${shortDigest(r.config)}), release ${r.release} on channel ${r.channel}; created ${iso(r.created)}, ${expiry}`,
    `  ${signatureLine(v.signature)}`,
    `  baseline: ${plural(h.baseline.length, 'layer')}; ${v.baselineNote}`,
  ];
}

function layerLines(v: InspectView): string[] {
  const rows = v.inspection.layers.map((l) => [String(l.index), shortDigest(l.diffId), humanBytes(l.size), l.gzipSize > 0 ? humanBytes(l.gzipSize) : '-', l.mode, l.mode === 'rebuild' ? count(l.entries) : '-', l.mode === 'rebuild' ? humanBytes(l.carried) : '-', l.mode === 'rebuild' ? humanBytes(l.frameBytes) : '-']);
  return table([['#', 'DIFF ID', 'SIZE', 'GZIP', 'MODE', 'ENTRIES', 'DATA', 'FRAME (zstd)'], ...rows], ['right', 'left', 'right', 'right', 'left', 'right', 'right', 'right'], '    ');
}

const RUN_NAMES: Record<string, string> = { run: 'unchanged baseline entries', patchrun: 'baseline entries with one header patch (e.g. new mtimes)' };
const BODY_NAMES: Record<string, string> = {
  none: 'no body (directories, links, empty files)',
  same: 'same body as the baseline entry',
  copy: 'copy of another baseline file',
  back: 'copy of an earlier file of the layer',
  digest: 'copy of a file an earlier layer rebuilt',
  literal: 'literal (new bytes)',
  patch: 'zstd patch-from delta',
  bsdiff: 'bsdiff delta (executables)',
  group: 'group: zstd patch-from of several files against a reference set (bytes: the whole frame)',
  member: 'more files of a group',
};

function opLines(ins: BundleInspection): string[] {
  const runs = Object.entries(ins.runs).sort(([a], [b]) => (a === 'run' ? -1 : b === 'run' ? 1 : a.localeCompare(b))).map(([name, r]) => `    ${plural(r.records, 'run record')} (${name}) rebuild ${plural(r.entries, 'entry', 'entries')}: ${RUN_NAMES[name] ?? name}${r.bytes > 0 ? `, ${humanBytes(r.bytes)} of patches` : ''}`);
  const h = ins.headers;
  const rows: string[][] = [
    ['header: baseline entry verbatim', count(h.base.count), '-', ''],
    ['header: baseline entry + byte patch', count(h.patched.count), humanBytes(h.patched.bytes), ''],
    ['header: literal', count(h.literal.count), humanBytes(h.literal.bytes), ''],
    ...Object.entries(ins.bodies).map(([k, b]) => [`body: ${BODY_NAMES[k] ?? k}`, count(b.count), b.bytes > 0 ? humanBytes(b.bytes) : '-', b.size > 0 ? humanBytes(b.size) : '']),
    ['non-zero paddings, layer tails', count(ins.pads.count + ins.tails.count), humanBytes(ins.pads.bytes + ins.tails.bytes), ''],
  ];
  const entryCount = ins.entries - ins.runEntries;
  return [
    `  ${plural(ins.entries, 'tar entry', 'tar entries')} rebuilt: ${count(ins.runEntries)} by runs, ${count(entryCount)} one by one`,
    ...runs,
    ...table([['ENTRY OPS', 'COUNT', 'DATA', 'FILE BYTES'], ...rows], ['left', 'right', 'right', 'right'], '    '),
  ];
}

function topLines(ins: BundleInspection): string[] {
  if (ins.top.length === 0) return [];
  const rows = ins.top.map((f) => [humanBytes(f.carried), f.kind, humanBytes(f.size), String(f.layer), f.path]);
  return [`  costliest files (body data carried):`, ...table([['DATA', 'KIND', 'SIZE', 'LAYER', 'PATH'], ...rows], ['right', 'left', 'right', 'right'], '    ')];
}

/** The report, as lines. */
export function inspectionLines(v: InspectView): string[] {
  const h = v.header;
  const ins = v.inspection;
  const rebuilt = ins.layers.filter((l) => l.mode === 'rebuild').length;
  const c = v.comparison;
  return [
    ...headLines(v),
    '',
    `what the bundle holds: ${humanBytes(v.headerBytes + h.payloadSize)} = header ${humanBytes(v.headerBytes)} + payload ${humanBytes(h.payloadSize)} (${plural(h.chunks.length, 'chunk')} of ${humanBytes(h.chunkSize)})`,
    `  layers: ${rebuilt} rebuilt, ${ins.layers.length - rebuilt} reused (the device has them)`,
    ...layerLines(v),
    ...opLines(ins),
    `  ${humanBytes(ins.carried)} of data before compression -> ${humanBytes(h.payloadSize)} of zstd frames`,
    ...topLines(ins),
    '',
    ...(c
      ? [`what docker pull would send (gzip layers): the full image, ${humanBytes(c.fullImage.bytes)}; or, on a device that has the reused layers, the changed layers, ${humanBytes(c.changedLayers.bytes)}`, ...comparisonLines(c)]
      : ['what docker pull would send: not recorded in this bundle (ferry bundle --compare-pull records the gzip size of each layer; the server takes it from the pushed image)']),
  ];
}
