/** `ferry fsck` and `ferry gc` (DESIGN.md section 4: fsck re-hashes; gc drops what no ref reaches). */
import { Store, fsck, gc, type FsckReport, type GcReport, type PendingSummary } from '@ferry/core';
import type { CommandSpec } from '../command.js';
import { writeJson, writeLines, type Invocation } from '../context.js';
import { EXIT } from '../errors.js';
import { humanBytes, plural, shortDigest } from '../format.js';
import { createProgress } from '../progress.js';

function fsckLines(r: FsckReport): string[] {
  const c = r.checked;
  const head = `checked ${plural(c.contents, 'content')}, ${plural(c.skeletons, 'skeleton')}, ${plural(c.blobs, 'blob')}, ${plural(c.refs, 'ref')}`;
  const lines = [r.ok ? `${head}: no problems` : `${head}: ${plural(r.problems.length, 'problem')}`];
  for (const p of r.problems) lines.push(`  ${p.kind} ${p.id}${p.path ? ` (${p.path})` : ''}: ${p.problem}`);
  if (r.leftovers.length > 0) lines.push(`${plural(r.leftovers.length, 'temp file')} left by interrupted writes (harmless; ferry gc removes them)`);
  for (const p of r.pending.filter((x) => x.ref)) lines.push(`pending apply ${pendingName(p)}: ${p.live ? 'uncommitted, gc keeps what it needs' : `dead (${p.reason}), gc drops it`}`);
  if (!r.ok) lines.push('the damaged objects must be imported again; affected images cannot be exported');
  return lines;
}

async function runFsck(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const store = await Store.open(global.store);
  const progress = createProgress(ctx, { json: global.json, unit: 'items' });
  let report: FsckReport;
  try {
    report = await fsck(store, { onProgress: progress.update, signal: ctx.signal });
  } finally {
    progress.stop();
  }
  if (global.json) writeJson(ctx, report);
  else writeLines(ctx, fsckLines(report));
  return report.ok ? EXIT.ok : EXIT.integrity;
}

function gcLine(r: GcReport, dryRun: boolean): string {
  const n = r.removed;
  const what = `${plural(n.contents, 'content')}, ${plural(n.skeletons, 'skeleton')}, ${plural(n.blobs, 'blob')}, ${plural(n.temps, 'temp file')}`;
  return dryRun ? `would remove ${what}: would free ${humanBytes(r.freedBytes)}` : `removed ${what}: freed ${humanBytes(r.freedBytes)}`;
}

function pendingName(p: PendingSummary): string {
  return `${shortDigest(p.bundle)}${p.ref ? ` (${p.ref}, release ${p.release} on channel ${p.channel})` : ''}`;
}

/** What gc kept for uncommitted applies and why, and the dead pending applies it dropped. */
function pendingLines(r: GcReport, dryRun: boolean): string[] {
  const lines: string[] = [];
  for (const p of r.kept) {
    const what = [plural(p.layers ?? 0, 'target layer'), `${plural(p.contents ?? 0, 'content')} of unfinished layers`, plural(p.baseline ?? 0, 'baseline layer')].join(', ');
    lines.push(`kept uncommitted apply ${pendingName(p)}: ${what}; it expires ${p.expires} (ferry apply resumes it)`);
  }
  for (const p of r.dropped) lines.push(`${dryRun ? 'would drop' : 'dropped'} pending apply ${pendingName(p)}: ${p.reason}`);
  return lines;
}

async function runGc(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const dryRun = inv.values['dry-run'] === true;
  const store = await Store.open(global.store);
  const report = await gc(store, { dryRun, signal: ctx.signal });
  if (global.json) writeJson(ctx, { ...report, dryRun });
  else writeLines(ctx, [gcLine(report, dryRun), ...pendingLines(report, dryRun)]);
  return EXIT.ok;
}

/** The fsck command. */
export const fsckCommand: CommandSpec = {
  name: 'fsck',
  summary: 'Re-hash every object in the store and check that every image is complete; exit 4 when there are problems.',
  args: '',
  positionals: { min: 0, max: 0 },
  options: {},
  notes: ['Each problem names the object (content, skeleton, blob or ref), its digest and its file.'],
  run: runFsck,
};

/** The gc command. */
export const gcCommand: CommandSpec = {
  name: 'gc',
  summary: 'Remove the objects no image ref reaches (after ferry rm or a re-import) and leftover temp files; keep what uncommitted applies need.',
  args: '',
  positionals: { min: 0, max: 0 },
  options: {
    'dry-run': { type: 'boolean', description: 'report what would be removed and freed, remove nothing' },
  },
  notes: [
    'An apply that has rebuilt layers but not committed (interrupted, or waiting for chunks) keeps its',
    'rebuilt layers, the contents of its unfinished layer and its baseline until it commits, is',
    'abandoned, expires, or its channel installs a release at least as high; gc says what it kept.',
  ],
  run: runGc,
};
