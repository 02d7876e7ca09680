/** Human rendering of the waste report (`ferry inspect` without --json). */
import type { ImageWaste, StoreSavings } from '@ferry/core';
import { count, humanBytes, plural, shortDigest, table } from '../format.js';

function pct(part: number, whole: number): string {
  return whole === 0 ? '0%' : `${((100 * part) / whole).toFixed(1)}%`;
}

function layerTable(w: ImageWaste): string[] {
  const rows = w.layers.map((l) => [String(l.index), shortDigest(l.diffId), humanBytes(l.tarBytes), count(l.files), humanBytes(l.bodyBytes), count(l.hidden.files), humanBytes(l.hidden.bytes), count(l.whiteouts + l.opaqueDirs)]);
  const t = w.totals;
  rows.push(['', 'total', humanBytes(t.tarBytes), count(t.files), humanBytes(t.bodyBytes), count(t.hidden.files), humanBytes(t.hidden.bytes), '']);
  return table([['#', 'DIFF ID', 'TAR', 'FILES', 'BODIES', 'HIDDEN', 'HIDDEN BYTES', 'WHITEOUTS'], ...rows], ['right', 'left', 'right', 'right', 'right', 'right', 'right', 'right'], '  ');
}

function hiddenLines(w: ImageWaste): string[] {
  const h = w.totals.hidden;
  return [
    `final filesystem: ${plural(w.totals.visibleFiles, 'file')}, ${humanBytes(w.totals.visibleBytes)}`,
    `hidden by later layers: ${plural(h.files, 'file')}, ${humanBytes(h.bytes)} (${pct(h.bytes, w.totals.bodyBytes)} of the file bytes)`,
    `  overwritten at the same path: ${plural(h.overwritten.files, 'file')}, ${humanBytes(h.overwritten.bytes)}`,
    `  deleted (whiteouts, opaque directories): ${plural(h.deleted.files, 'file')}, ${humanBytes(h.deleted.bytes)}`,
  ];
}

function duplicateLines(w: ImageWaste): string[] {
  const d = w.duplicates;
  const out = [`duplicated within the image: ${plural(d.groups, 'content')} in ${plural(d.files, 'extra copy', 'extra copies')}, ${humanBytes(d.wastedBytes)} wasted`];
  if (d.top.length === 0) return out;
  const rows = d.top.map((g) => {
    const paths = g.copies.map((c) => `${c.path}@${c.layer}`);
    const shown = paths.length > 3 ? [...paths.slice(0, 3), `+${paths.length - 3} more`] : paths;
    return [humanBytes(g.size), String(g.copies.length), humanBytes(g.wastedBytes), shown.join(', ')];
  });
  return [...out, ...table([['SIZE', 'COPIES', 'WASTED', 'PATHS (path@layer)'], ...rows], ['right', 'right', 'right'], '  ')];
}

function sharedLines(w: ImageWaste): string[] {
  const s = w.shared;
  const out = [`shared with other images in the store: ${plural(s.contents, 'content')}, ${humanBytes(s.bytes)} (${pct(s.bytes, w.dedup.uniqueBytes)} of this image's distinct bytes; ${plural(s.layers, 'whole layer')})`];
  const rows = s.images.filter((i) => i.contents > 0).map((i) => [i.ref, count(i.contents), humanBytes(i.bytes)]);
  return rows.length === 0 ? out : [...out, ...table([['IMAGE', 'CONTENTS', 'BYTES'], ...rows], ['left', 'right', 'right'], '  ')];
}

function largestLines(w: ImageWaste): string[] {
  if (w.largest.length === 0) return [];
  const rows = w.largest.map((f) => [humanBytes(f.size), String(f.layer), f.hidden ? 'hidden' : '', f.path]);
  return [`largest files:`, ...table([['SIZE', 'LAYER', '', 'PATH'], ...rows], ['right', 'right'], '  ')];
}

/** The report of one image, as lines. */
export function imageLines(w: ImageWaste): string[] {
  const dd = w.dedup;
  return [
    `${w.ref}  image ID ${shortDigest(w.configDigest)}  manifest ${w.manifestDigest}`,
    '',
    ...layerTable(w),
    '',
    ...hiddenLines(w),
    '',
    ...duplicateLines(w),
    `content deduplication within the image: ${humanBytes(dd.bodyBytes)} of file bodies -> ${humanBytes(dd.uniqueBytes)} distinct (${plural(dd.uniqueContents, 'content')}), saves ${humanBytes(dd.savedBytes)}`,
    '',
    ...sharedLines(w),
    '',
    ...largestLines(w),
  ];
}

/** The store-wide savings, as lines. */
export function storeLines(s: StoreSavings): string[] {
  return [
    `store: ${plural(s.images, 'image')}, ${plural(s.layers, 'distinct layer')} holding ${humanBytes(s.layerBodyBytes)} of file bodies`,
    `  deduplicated to ${plural(s.uniqueContents, 'content')}, ${humanBytes(s.uniqueBytes)} (saves ${humanBytes(s.savedBytes)}, ${pct(s.savedBytes, s.layerBodyBytes)}); ${humanBytes(s.storedBytes)} on disk compressed`,
  ];
}
