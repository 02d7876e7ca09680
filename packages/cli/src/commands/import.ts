/** `ferry import`: an OCI layout or docker archive into the store (DESIGN.md section 4). */
import { stat } from 'node:fs/promises';
import { Store, importImage, openImage, parsePlatform, parseRef, type ImportResult, type SourceImage } from '@ferry/core';
import { stringOpt, userPath, type CommandSpec } from '../command.js';
import { writeJson, writeLines, type Invocation } from '../context.js';
import { EXIT, usage } from '../errors.js';
import { humanBytes, plural, shortDigest, table } from '../format.js';
import { createProgress } from '../progress.js';

async function isPath(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

/**
 * Splits `SOURCE[:TAG]`: a path that exists is taken whole; else `dir:v1` names tag v1 of the
 * OCI layout `dir`.
 */
export async function resolveSource(inv: Invocation, arg: string): Promise<{ path: string; tag: string | undefined }> {
  const given = stringOpt(inv, 'source-ref');
  const whole = userPath(inv, arg);
  if (await isPath(whole)) return { path: whole, tag: given };
  const colon = arg.lastIndexOf(':');
  if (colon > 0 && colon < arg.length - 1 && !arg.slice(colon + 1).includes('/')) {
    const path = userPath(inv, arg.slice(0, colon));
    const tag = arg.slice(colon + 1);
    if (await isPath(path)) {
      if (given !== undefined && given !== tag) throw usage(`${arg} names tag ${tag} but --source-ref says ${given}`);
      return { path, tag };
    }
  }
  return { path: whole, tag: given };
}

/**
 * The ref to import under: --ref, else the requested source ref or the source's own name when
 * it is a full name:tag (Docker Hub names in their short form, as docker shows them).
 */
function targetRef(inv: Invocation, source: SourceImage, requested: string | undefined): string {
  const given = stringOpt(inv, 'ref');
  if (given !== undefined) return given;
  if (requested !== undefined && isRef(requested)) return requested;
  if (source.ref !== undefined) {
    if (isRef(source.ref)) return familiar(source.ref);
    throw usage(`${source.where} calls its image ${JSON.stringify(source.ref)}, which is not a name:tag; give --ref NAME:TAG`);
  }
  throw usage(`${source.where} does not name its image; give --ref NAME:TAG`);
}

function isRef(s: string): boolean {
  try {
    parseRef(s);
    return true;
  } catch {
    return false;
  }
}

/** Docker's short form of a Docker Hub name (skopeo writes `docker.io/library/app:v1`). */
function familiar(ref: string): string {
  return ref.replace(/^docker\.io\/(library\/)?/, '');
}

function summary(r: ImportResult): string[] {
  const reused = r.layers.filter((l) => l.reused).length;
  const rows = r.layers.map((l, i) => [String(i), shortDigest(l.diffId), humanBytes(l.size), String(l.files), l.reused ? 'reused' : 'imported']);
  return [
    `imported ${r.ref} (image ID ${shortDigest(r.configDigest)})`,
    ...table([['#', 'DIFF ID', 'SIZE', 'ENTRIES', ''], ...rows], ['right', 'left', 'right', 'right'], '  '),
    `${plural(r.layers.length, 'layer')}: ${r.layers.length - reused} imported, ${reused} reused`,
    `read ${humanBytes(r.bytesRead)}, stored ${humanBytes(r.bytesStored)} (zstd) in ${plural(r.contentsAdded, 'new content')}, ${plural(r.contentsDeduplicated, 'file')} deduplicated`,
  ];
}

/**
 * Imports the command's SOURCE (positional 0, with --ref, --platform, --source-ref) into the
 * --store, with a progress bar; `ferry push` imports the same way before it uploads.
 */
export async function importFromSource(inv: Invocation): Promise<{ result: ImportResult; source: SourceImage }> {
  const { ctx, global } = inv;
  const refOpt = stringOpt(inv, 'ref');
  if (refOpt !== undefined) parseRef(refOpt);
  const platformOpt = stringOpt(inv, 'platform');
  const platform = platformOpt === undefined ? undefined : parsePlatform(platformOpt);
  const { path, tag } = await resolveSource(inv, inv.positionals[0]!);
  const source = await openImage(path, { ref: tag, platform });
  const ref = targetRef(inv, source, tag);
  const store = await Store.open(global.store, { create: true });
  const progress = createProgress(ctx, { json: global.json });
  try {
    return { result: await importImage(store, source, ref, { onProgress: progress.update, signal: ctx.signal }), source };
  } finally {
    progress.stop();
  }
}

async function run(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const { result, source } = await importFromSource(inv);
  if (global.json) writeJson(ctx, { ...result, source: source.where, sourceRef: source.ref ?? null, platform: source.platform ?? null });
  else writeLines(ctx, summary(result));
  return EXIT.ok;
}

/** The import command. */
export const importCommand: CommandSpec = {
  name: 'import',
  summary: 'Import an image from an OCI image layout or a docker archive (docker save) into the store; creates the store if missing.',
  args: 'SOURCE',
  positionals: { min: 1, max: 1 },
  options: {
    ref: { type: 'string', arg: 'NAME:TAG', description: "name to store the image under (default: the source's own name:tag)" },
    platform: { type: 'string', arg: 'OS/ARCH[/VARIANT]', description: 'platform to take from a multi-platform index (default: this host)' },
    'source-ref': { type: 'string', arg: 'TAG', description: 'which image of the source to take, when it holds several' },
  },
  notes: [
    'SOURCE is an OCI layout directory, a docker archive tar, or DIR:TAG for one tag of an OCI layout.',
    'examples:',
    '  ferry import ./oci-dir:v1 --ref app:v1',
    '  ferry import app.tar            (docker save output; keeps its RepoTags name)',
  ],
  run,
};
