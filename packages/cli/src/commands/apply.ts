/**
 * `ferry apply`: installs a bundle into a device store (DESIGN.md section 6): the header is
 * verified against the trusted keys before anything else, then core's applier checks rollback,
 * baseline and room, rebuilds and verifies every layer, and moves the ref.
 */
import { Store, applyBundle, openBundle, parseRef, verifyHeader, type ApplyResult } from '@ferry/core';
import { listOpt, stringOpt, userPath, type CommandSpec } from '../command.js';
import { writeJson, writeLines, type Invocation } from '../context.js';
import { EXIT, usage } from '../errors.js';
import { humanBytes, shortDigest } from '../format.js';
import { createProgress } from '../progress.js';
import { loadTrust } from '../trust.js';

function summary(r: ApplyResult, where: string): string[] {
  const rebuilt = r.layers.filter((l) => l.mode === 'rebuild');
  const fresh = rebuilt.filter((l) => !l.alreadyPresent).length;
  const reused = r.layers.length - rebuilt.length;
  const present = rebuilt.length - fresh;
  return [
    `applied ${where}: ${r.ref} (image ID ${shortDigest(r.configDigest)}), release ${r.release} on channel ${r.channel}`,
    `  layers: ${fresh} rebuilt and verified, ${reused} reused${present > 0 ? `, ${present} already in the store` : ''}; read ${humanBytes(r.payloadBytes)} of payload`,
    `  manifest ${r.manifestDigest}`,
  ];
}

async function run(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const trustFiles = listOpt(inv, 'trust').map((t) => userPath(inv, t));
  if (trustFiles.length === 0) throw usage('ferry apply needs --trust FILE (a .pub key or a JSON trust file; see ferry apply --help)');
  const ref = stringOpt(inv, 'ref');
  if (ref !== undefined) parseRef(ref);
  const channel = stringOpt(inv, 'channel');
  const trust = await loadTrust(trustFiles);
  const where = userPath(inv, inv.positionals[0]!);
  const source = await openBundle(where, stringOpt(inv, 'bundle'));
  // verified before the store is touched, so a bad bundle creates and changes nothing
  const header = verifyHeader(source.headerBytes, { trust, channel });
  // a bundle with no baseline can seed an empty device; anything else needs the store that holds it
  const store = await Store.open(global.store, { create: header.baseline.length === 0 });
  const progress = createProgress(ctx, { json: global.json });
  let result: ApplyResult;
  try {
    result = await applyBundle(store, source, { trust, channel, ref, onProgress: progress.update, signal: ctx.signal });
  } finally {
    progress.stop();
  }
  if (global.json) writeJson(ctx, { ...result, bundle: where, rebuilt: result.layers.filter((l) => l.mode === 'rebuild' && !l.alreadyPresent).length, reused: result.layers.filter((l) => l.mode === 'reuse').length });
  else writeLines(ctx, summary(result, where));
  return EXIT.ok;
}

/** The apply command. */
export const applyCommand: CommandSpec = {
  name: 'apply',
  summary: 'Verify a bundle against trusted keys and install its image into the store: every chunk and rebuilt layer is checked before the ref moves.',
  args: 'BUNDLE',
  positionals: { min: 1, max: 1 },
  options: {
    trust: { type: 'string', multiple: true, arg: 'FILE', description: 'a .pub key (trusted for both roles) or a JSON trust file (required; repeatable)' },
    channel: { type: 'string', arg: 'NAME', description: 'refuse bundles for another channel' },
    ref: { type: 'string', arg: 'NAME:TAG', description: 'install under this ref (default: the one the release statement names)' },
    bundle: { type: 'string', arg: 'ID', description: 'which bundle of a repository directory (its id or a prefix)' },
  },
  notes: [
    'BUNDLE is a .ferry file or a bundle repository directory. The store (--store) is the device\'s; it',
    'must hold the bundle\'s baseline. A release number not higher than the one installed for the',
    'channel is refused (FERRY_ERR_BUNDLE_ROLLBACK), as are expired bundles and bad signatures (exit 4).',
    'JSON trust file (paths relative to it; docs/format.md section 3):',
    '  {"release": {"keys": ["release.pub"], "threshold": 1}, "header": {"keys": ["bundle.pub"], "threshold": 1}}',
    'examples:',
    '  ferry apply app-v2.ferry --trust release.pub --store /var/lib/ferry',
    '  ferry apply ./repo --bundle 3f2a --trust trust.json',
  ],
  run,
};
