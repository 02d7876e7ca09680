/**
 * A bundle beside what `docker pull` would send for the same update: every target layer gzip-
 * compressed (the full image), or only the layers the device lacks (the bundle's rebuilt layers,
 * when the device holds the reused ones). The header records each layer's gzip size (level 6).
 */
import type { LayerPlan } from '@ferry/core';
import { humanBytes, table } from './format.js';
import { formatDuration, formatRate, transferSeconds } from './units.js';

/** Bytes on the link for one way of updating. */
export interface PullFigures {
  bytes: number;
  layers: number;
}

/** The comparison. Ratios are docker's bytes over the bundle's. */
export interface PullComparison {
  /** Header envelope plus payload: what crosses the link for the bundle. */
  bundleBytes: number;
  fullImage: PullFigures;
  changedLayers: PullFigures;
  ratio: { fullImage: number; changedLayers: number };
  /** Link rate and transfer seconds of each, when a rate is given. */
  link?: { bitsPerSecond: number; seconds: { bundle: number; changedLayers: number; fullImage: number } } | undefined;
}

/** Whether a bundle recorded docker pull's size of every layer (`ferry bundle --compare-pull`): 0 means not measured. */
export function pullKnown(layers: readonly Pick<LayerPlan, 'gzipSize'>[]): boolean {
  return layers.every((l) => l.gzipSize > 0);
}

/** Compares a bundle of `bundleBytes` with docker pull of its target layers. */
export function comparePull(bundleBytes: number, layers: Pick<LayerPlan, 'mode' | 'gzipSize'>[], bitsPerSecond?: number): PullComparison {
  const sum = (ls: typeof layers): PullFigures => ({ bytes: ls.reduce((a, l) => a + l.gzipSize, 0), layers: ls.length });
  const fullImage = sum(layers);
  const changedLayers = sum(layers.filter((l) => l.mode === 'rebuild'));
  const ratio = (n: number): number => (bundleBytes === 0 ? 0 : n / bundleBytes);
  const c: PullComparison = { bundleBytes, fullImage, changedLayers, ratio: { fullImage: ratio(fullImage.bytes), changedLayers: ratio(changedLayers.bytes) } };
  if (bitsPerSecond !== undefined) {
    const t = (n: number): number => transferSeconds(n, bitsPerSecond);
    c.link = { bitsPerSecond, seconds: { bundle: t(bundleBytes), changedLayers: t(changedLayers.bytes), fullImage: t(fullImage.bytes) } };
  }
  return c;
}

/** `168.3` -> `168x`, `2.34` -> `2.3x`. */
export function formatRatio(r: number): string {
  return r >= 10 ? `${Math.round(r)}x` : `${r.toFixed(1)}x`;
}

/** The comparison as an aligned table (with a transfer-time column when a link rate was given). */
export function comparisonLines(c: PullComparison, indent = '  '): string[] {
  const head = ['', 'BYTES', 'VS BUNDLE', ...(c.link ? [`AT ${formatRate(c.link.bitsPerSecond)}`] : [])];
  const row = (name: string, bytes: number, ratio: number, secs: number | undefined): string[] => [name, humanBytes(bytes), ratio === 1 ? '1x' : formatRatio(ratio), ...(secs === undefined ? [] : [formatDuration(secs)])];
  const layers = (f: PullFigures): string => `${f.layers} ${f.layers === 1 ? 'layer' : 'layers'}`;
  const rows = [
    head,
    row('ferry bundle', c.bundleBytes, 1, c.link?.seconds.bundle),
    row(`docker pull, changed layers only (${layers(c.changedLayers)})`, c.changedLayers.bytes, c.ratio.changedLayers, c.link?.seconds.changedLayers),
    row(`docker pull, full image (${layers(c.fullImage)})`, c.fullImage.bytes, c.ratio.fullImage, c.link?.seconds.fullImage),
  ];
  return table(rows, ['left', 'right', 'right', 'right'], indent);
}
