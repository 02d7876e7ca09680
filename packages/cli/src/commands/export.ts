/**
 * `ferry export`: a stored image as an OCI layout directory or a docker archive (to a file or to
 * stdout, for `ferry export app:v2 --format docker-archive | docker load`). Every layer is
 * verified against its diff_id while it streams (DESIGN.md section 4).
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { Store, exportDockerArchive, exportOci, fsyncFile, parseRef, tempPathFor, type StoredImage } from '@ferry/core';
import { stringOpt, userPath, type CommandSpec } from '../command.js';
import { writeLines, type CliContext, type Invocation, type OutStream } from '../context.js';
import { EXIT, usage } from '../errors.js';
import { humanBytes, plural, shortDigest } from '../format.js';
import { createProgress, type ProgressSink } from '../progress.js';

interface ExportPlan {
  format: 'oci' | 'docker-archive';
  /** Absolute output path; undefined = stdout. */
  out: string | undefined;
  compression: 'none' | 'gzip';
}

function plan(inv: Invocation): ExportPlan {
  const format = stringOpt(inv, 'format');
  if (format !== 'oci' && format !== 'docker-archive') throw usage(`ferry export needs --format oci or --format docker-archive${format ? `, got ${JSON.stringify(format)}` : ''}`);
  const compression = stringOpt(inv, 'compression') ?? 'none';
  if (compression !== 'none' && compression !== 'gzip') throw usage(`--compression is none or gzip, got ${JSON.stringify(compression)}`);
  const outOpt = stringOpt(inv, 'out');
  const out = outOpt === undefined || outOpt === '-' ? undefined : userPath(inv, outOpt);
  if (format === 'oci') {
    if (out === undefined) throw usage('ferry export --format oci needs --out DIR (an OCI layout is a directory)');
    return { format, out, compression };
  }
  if (compression !== 'none') throw usage('a docker archive carries uncompressed layers; --compression applies to --format oci only');
  if (out === undefined && inv.ctx.stdout.isTTY) throw usage('refusing to write a docker archive to a terminal; redirect stdout, pipe it (| docker load), or give --out FILE');
  return { format, out, compression };
}

/** Writes the archive to a temp file beside `path` and renames it into place once complete. */
async function archiveToFile(store: Store, ref: string, path: string, progress: ProgressSink, signal?: AbortSignal): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    const file = createWriteStream(tmp, { flags: 'wx' });
    await exportDockerArchive(store, ref, file, { onProgress: progress.update, signal });
    await finished(file);
    await fsyncFile(tmp);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function archiveToStdout(ctx: CliContext, store: Store, ref: string, progress: ProgressSink): Promise<void> {
  await exportDockerArchive(store, ref, ctx.stdout, { onProgress: progress.update, signal: ctx.signal });
  // the core leaves process.stdout open: wait until what was written is handed to the pipe
  await new Promise<void>((resolve, reject) => ctx.stdout.write('', (err) => (err ? reject(err) : resolve())));
}

function report(inv: Invocation, image: StoredImage, p: ExportPlan, manifestDigest: string): void {
  const result = { ref: image.ref, format: p.format, out: p.out ?? '-', compression: p.compression, configDigest: image.configDigest, manifestDigest, layers: image.layers.length, bytes: image.layers.reduce((a, l) => a + l.size, 0) };
  const stream: OutStream = inv.global.stdoutTaken ? inv.ctx.stderr : inv.ctx.stdout;
  if (inv.global.json) {
    stream.write(JSON.stringify(result, null, 2) + '\n');
    return;
  }
  const where = p.out ?? 'stdout';
  const line = `exported ${image.ref} (image ID ${shortDigest(image.configDigest)}) as ${p.format}${p.format === 'oci' ? ` (${p.compression === 'gzip' ? 'gzip' : 'uncompressed'} layers)` : ''} to ${where}: ${plural(result.layers, 'layer')}, ${humanBytes(result.bytes)} uncompressed, verified`;
  if (inv.global.stdoutTaken) inv.ctx.stderr.write(line + '\n');
  else writeLines(inv.ctx, [line]);
}

async function run(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const ref = inv.positionals[0]!;
  parseRef(ref);
  const p = plan(inv);
  const store = await Store.open(global.store);
  const image = await store.resolve(ref);
  const progress = createProgress(ctx, { json: global.json });
  let manifestDigest: string = image.manifestDigest;
  try {
    if (p.format === 'oci') {
      manifestDigest = (await exportOci(store, ref, p.out!, { compression: p.compression, onProgress: progress.update, signal: ctx.signal })).manifestDigest;
    } else if (p.out !== undefined) {
      await archiveToFile(store, ref, p.out, progress, ctx.signal);
    } else {
      global.stdoutTaken = true;
      await archiveToStdout(ctx, store, ref, progress);
    }
  } finally {
    progress.stop();
  }
  report(inv, image, p, manifestDigest);
  return EXIT.ok;
}

/** The export command. */
export const exportCommand: CommandSpec = {
  name: 'export',
  summary: 'Export a stored image as an OCI image layout or a docker archive; every layer is verified against its diff_id as it streams.',
  args: 'NAME:TAG',
  positionals: { min: 1, max: 1 },
  options: {
    format: { type: 'string', arg: 'oci|docker-archive', description: 'output format (required)' },
    out: { type: 'string', arg: 'DIR|FILE', description: 'OCI layout directory (created or added to), or archive file; - or absent: the archive goes to stdout' },
    compression: { type: 'string', arg: 'none|gzip', description: 'layer compression of an OCI layout (default none: the original layer bytes)' },
  },
  notes: [
    'When the archive goes to stdout, the result line (or --json result) goes to stderr. A terminal',
    'stdout is refused. The image ID (config digest) is the one the image was imported with.',
    'examples:',
    '  ferry export app:v2 --format docker-archive | docker load',
    '  ferry export app:v2 --format oci --out ./oci-dir',
  ],
  run,
};
