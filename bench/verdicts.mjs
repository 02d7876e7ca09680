// The bundle bench's targets (issue 7) and how one pair's figures compare with them: printed
// MET / MISSED, never asserted. Sizes are decimal (1 MB = 10^6 bytes), RSS limits included.
import { bytes, check, printTable, ratio, secs } from './lib/table.mjs';

export const TARGETS = {
  /** the bundle at most this times the best delta reference (zstd per layer or flattened, xdelta3, bsdiff) */
  bestRefRatio: 0.8,
  /** by pair kind: the bundle at most this share of docker pull's changed layers (gzip -6) */
  shareOfChanged: { 'dep-bump': 0.08, 'security-update': 0.08, 'noop-rebuild': 0.0001 },
  /** `ferry apply` peak RSS, every pair (default reference cap) */
  applyMaxRssBytes: 128e6,
  /** by pair kind: `ferry apply` throughput, MB/s of rebuilt layer bytes */
  applyMBps: { 'dep-bump': 100 },
  /** `ferry bundle` peak RSS, every pair */
  bundleMaxRssBytes: 512e6,
  /** `ferry bundle` time at most this times zstd --patch-from per changed layer, same run */
  bundleTimeVsZstd: 1,
};

/** `value` against `target` (undefined when the pair has no such target). */
const mark = (value, target, ok) => ({ value, target, met: target === undefined ? undefined : ok(value, target) });

/**
 * The verdicts of pair result `r` whose delta references are `refs` ([key, {label, bytes,
 * skipped?}]): each `{value, target, met}`, plus `best` (the smallest reference) and `lines` to
 * print.
 */
export function verdicts(r, refs) {
  const f = r.bundle.fileSize;
  const [key, best] = refs.filter(([, m]) => !m.skipped && m.bytes !== undefined).reduce((a, b) => (b[1].bytes < a[1].bytes ? b : a));
  const zstdSeconds = r.refs.zstdLayers.seconds;
  const v = {
    best: { key, label: best.label, bytes: best.bytes },
    vsBest: mark(f / best.bytes, TARGETS.bestRefRatio, (x, t) => x <= t),
    share: mark(f / r.changedLayers.gzip, TARGETS.shareOfChanged[r.kind], (x, t) => x <= t),
    bundleTime: mark(r.bundle.seconds / zstdSeconds, TARGETS.bundleTimeVsZstd, (x, t) => x <= t),
    bundleRss: mark(r.bundle.maxRss, TARGETS.bundleMaxRssBytes, (x, t) => x <= t),
    applyRss: mark(r.apply.maxRss, TARGETS.applyMaxRssBytes, (x, t) => x <= t),
    applyMBps: mark(r.apply.rebuiltBytes / 1e6 / r.apply.seconds, TARGETS.applyMBps[r.kind], (x, t) => x >= t),
    verified: r.apply.verified,
  };
  v.lines = [
    `target: bundle <= ${TARGETS.bestRefRatio}x the best reference (${best.label}, ${bytes(best.bytes)}): ${ratio(f, best.bytes)} ${check(v.vsBest.met)}`,
    v.share.target === undefined
      ? `docker pull's changed layers: bundle is ${ratio(f, r.changedLayers.gzip)} of them (no target for ${r.kind})`
      : `target: bundle <= ${ratio(v.share.target, 1)} of docker pull's changed layers: ${ratio(f, r.changedLayers.gzip)} ${check(v.share.met)}`,
    `target: ferry bundle no slower than zstd per changed layer (${secs(zstdSeconds)} this run): ${secs(r.bundle.seconds)}, ${ratio(r.bundle.seconds, zstdSeconds)} ${check(v.bundleTime.met)}; peak RSS <= ${bytes(TARGETS.bundleMaxRssBytes)}: ${bytes(r.bundle.maxRss)} ${check(v.bundleRss.met)}`,
    `target: ferry apply peak RSS <= ${bytes(TARGETS.applyMaxRssBytes)}: ${bytes(r.apply.maxRss)} ${check(v.applyRss.met)}` +
      (v.applyMBps.target === undefined ? '' : `; throughput >= ${v.applyMBps.target} MB/s: ${v.applyMBps.value.toFixed(1)} MB/s ${check(v.applyMBps.met)}`),
  ];
  return v;
}

/** A figure and its verdict in one cell: `1.05x MISSED`, or the figure alone when there is no target. */
const cell = (text, m) => (m.met === undefined ? text : `${text} ${check(m.met)}`);

/** One table over every measured pair: sizes against the best reference and docker pull, then speed and memory. */
export function printSummary(results) {
  const rows = results.map((r) => {
    const v = r.checks;
    return [
      r.name,
      r.kind,
      bytes(r.bundle.fileSize),
      `${bytes(v.best.bytes)} ${v.best.key}`,
      cell(ratio(r.bundle.fileSize, v.best.bytes), v.vsBest),
      cell(ratio(r.bundle.fileSize, r.changedLayers.gzip), v.share),
      cell(`${secs(r.bundle.seconds)}/${secs(r.refs.zstdLayers.seconds)}`, v.bundleTime),
      cell(bytes(r.bundle.maxRss), v.bundleRss),
      cell(`${v.applyMBps.value.toFixed(1)} MB/s`, v.applyMBps),
      cell(bytes(r.apply.maxRss), v.applyRss),
      v.verified ? 'yes' : 'NO',
    ];
  });
  const t = TARGETS;
  const byKind = (o, f) => Object.entries(o).map(([k, x]) => `${f(x)} on ${k}`).join(', ');
  printTable(
    `bundle: summary (targets: bundle <= ${t.bestRefRatio}x the best reference; of docker pull ${byKind(t.shareOfChanged, (x) => `<= ${ratio(x, 1)}`)}; ` +
      `bundle time <= ${t.bundleTimeVsZstd}x zstd per changed layer, RSS <= ${bytes(t.bundleMaxRssBytes)}; apply RSS <= ${bytes(t.applyMaxRssBytes)}, ${byKind(t.applyMBps, (x) => `>= ${x} MB/s`)})`,
    ['pair', 'kind', 'ferry', 'best reference', `bundle/best <=${t.bestRefRatio}x`, 'of docker pull', 'bundle/zstd time', 'bundle RSS', 'apply', 'apply RSS', 'image ID'],
    rows,
  );
}
