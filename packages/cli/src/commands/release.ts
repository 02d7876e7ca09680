/**
 * `ferry release`: sign a release statement with the offline release key on this machine and
 * send it to the server (the key never leaves). The image is the one in the local store, the one
 * `ferry push` sent.
 */
import { CHANNEL_RE, Store, encodeRelease, parseRef, messages, signEnvelope, type ReleaseStatement } from '@ferry/core';
import { listOpt, requiredOpt, stringOpt, userPath, type CommandSpec } from '../command.js';
import { writeJson, writeLines, type Invocation } from '../context.js';
import { EXIT, usage } from '../errors.js';
import { shortDigest } from '../format.js';
import { REMOTE_OPTIONS, apiClient } from '../remote.js';
import { readPrivateKeys } from '../trust.js';
import { parseExpiry, parseWhole } from '../units.js';

async function nextRelease(inv: Invocation, channel: string): Promise<number> {
  const given = stringOpt(inv, 'release');
  if (given !== undefined) return parseWhole(given, '--release', 1, Number.MAX_SAFE_INTEGER);
  const { body } = await apiClient(inv).request({ method: 'GET', path: `/v1/channels/${encodeURIComponent(channel)}`, signal: inv.ctx.signal });
  const last = (body as { release?: { release?: unknown } | null })?.release?.release;
  return (typeof last === 'number' ? last : 0) + 1;
}

async function run(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const ref = inv.positionals[0]!;
  parseRef(ref);
  const channel = requiredOpt(inv, 'channel', 'NAME');
  if (!CHANNEL_RE.test(channel)) throw usage(`--channel takes letters, digits, '.', '_' and '-' (up to 128), got ${JSON.stringify(channel)}`);
  const keyPaths = listOpt(inv, 'key').map((k) => userPath(inv, k));
  if (keyPaths.length === 0) throw usage('ferry release needs --key FILE (the release signing key; see ferry keygen)');
  const keys = await readPrivateKeys(keyPaths);
  const client = apiClient(inv);
  const image = await (await Store.open(global.store)).resolve(ref);
  const now = Math.floor(Date.now() / 1000);
  const statement: ReleaseStatement = { channel, release: await nextRelease(inv, channel), ref, manifest: image.manifestDigest, config: image.configDigest, expires: parseExpiry(stringOpt(inv, 'expires') ?? '90d', now), created: now };
  const envelope = signEnvelope('release', encodeRelease(statement), keys);
  const { body } = await client.request({ method: 'POST', path: '/v1/releases', json: { envelope: Buffer.from(envelope).toString('base64'), urgent: inv.values.urgent === true }, signal: ctx.signal });
  const info = await messages.releaseInfo(body);
  if (global.json) writeJson(ctx, info);
  else {
    writeLines(ctx, [
      `released ${info.ref} as release ${info.release} of channel ${info.channel}${info.urgent ? ' (urgent)' : ''}`,
      `  image ID ${shortDigest(info.config)}, expires ${new Date(info.expires * 1000).toISOString().replace('.000Z', 'Z')}`,
      `  signed here by key ${keys.map((k) => k.id).join(', ')}; agents on ${info.channel} get a bundle at their next check-in`,
    ]);
  }
  return EXIT.ok;
}

/** The release command. */
export const releaseCommand: CommandSpec = {
  name: 'release',
  summary: "Sign a release statement for NAME:TAG on this machine with the offline release key and publish it on a server's channel.",
  args: 'NAME:TAG',
  positionals: { min: 1, max: 1 },
  options: {
    channel: { type: 'string', arg: 'NAME', description: 'the channel whose agents should run the image (required)' },
    key: { type: 'string', multiple: true, arg: 'FILE', description: 'release signing key, PEM (required; repeat for a threshold); it never leaves this machine' },
    release: { type: 'string', arg: 'N', description: "release number (default: the channel's last plus one); must be higher than the last" },
    expires: { type: 'string', arg: 'WHEN', description: 'expiry: a span (90d, 12h), a date (2026-12-31) or unix seconds (default 90d)' },
    urgent: { type: 'boolean', description: 'agents put this release ahead of a transfer in progress' },
    ...REMOTE_OPTIONS,
  },
  notes: [
    'The image must be in the local store (--store): push it first with ferry push, from the same store.',
    'The server checks the signature against its trusted release keys (ferry serve --trust-release) and',
    'refuses a release number not higher than the channel\'s last.',
    'example:',
    '  ferry release app:v2 --channel stable --key release.key --server https://ferry.example:8443 --token fyp_...',
  ],
  run,
};
