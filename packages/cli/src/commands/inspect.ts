/** `ferry inspect`: where an image's bytes go (the waste report, see core's wasteReport). */
import { Store, parseRef, wasteReport } from '@ferry/core';
import { stringOpt, type CommandSpec } from '../command.js';
import { writeJson, writeLines, type Invocation } from '../context.js';
import { EXIT, usage } from '../errors.js';
import { imageLines, storeLines } from './inspect-view.js';

function topOption(inv: Invocation): number {
  const s = stringOpt(inv, 'top');
  if (s === undefined) return 10;
  if (!/^\d+$/.test(s) || Number(s) > 10_000) throw usage(`--top takes a whole number from 0 to 10000, got ${JSON.stringify(s)}`);
  return Number(s);
}

async function run(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  for (const ref of inv.positionals) parseRef(ref);
  const top = topOption(inv);
  const store = await Store.open(global.store);
  const report = await wasteReport(store, inv.positionals, { top, signal: ctx.signal });
  if (global.json) {
    writeJson(ctx, report);
    return EXIT.ok;
  }
  const lines: string[] = [];
  for (const w of report.images) lines.push(...imageLines(w), '');
  writeLines(ctx, [...lines, ...storeLines(report.store)]);
  return EXIT.ok;
}

/** The inspect command. */
export const inspectCommand: CommandSpec = {
  name: 'inspect',
  summary: 'Show where an image\'s bytes go: size per layer, bytes hidden by later layers (overwrites, whiteouts, opaque directories), duplicated files, contents shared with the other images, what the store\'s deduplication saves, and the largest files.',
  args: 'NAME:TAG...',
  positionals: { min: 1, max: Number.POSITIVE_INFINITY },
  options: {
    top: { type: 'string', arg: 'N', description: 'how many of the largest files and duplicate groups to list (default 10)' },
  },
  notes: ['--json prints the full report (every number, per layer and per image).'],
  run,
};
