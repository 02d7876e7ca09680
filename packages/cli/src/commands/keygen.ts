/** `ferry keygen`: an Ed25519 key pair for signing bundles (docs/format.md section 3). */
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { fsyncDir, generateKeyPair, tempPathFor, toFerryError } from '@ferry/core';
import { requiredOpt, userPath, type CommandSpec } from '../command.js';
import { writeJson, writeLines, type Invocation } from '../context.js';
import { EXIT, usage } from '../errors.js';

/** Writes `data` durably at `path` with file mode `mode` (the temp file has it from creation). */
export async function writeKeyFile(path: string, data: string, mode: number): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.chmod(mode); // the umask may have narrowed the mode; make it exact
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw toFerryError(err, `writing ${path}`);
  }
}

const exists = (p: string): Promise<boolean> => stat(p).then(() => true, () => false);

async function run(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const base = userPath(inv, requiredOpt(inv, 'out', 'NAME').replace(/\.(key|pub)$/, ''));
  const files = { private: `${base}.key`, public: `${base}.pub` };
  if (inv.values.force !== true) {
    for (const f of Object.values(files)) if (await exists(f)) throw usage(`${f} exists; refusing to overwrite a key without --force`);
  }
  const pair = generateKeyPair();
  await writeKeyFile(files.private, pair.privatePem, 0o600);
  await writeKeyFile(files.public, pair.publicPem, 0o644);
  await fsyncDir(dirname(base));
  if (global.json) writeJson(ctx, { id: pair.id, privateKey: files.private, publicKey: files.public });
  else writeLines(ctx, [`key id ${pair.id}`, `  private key: ${files.private} (mode 0600; keep it offline, it signs releases)`, `  public key:  ${files.public} (give it to devices: ferry apply --trust ${basename(files.public)})`]);
  return EXIT.ok;
}

/** The keygen command. */
export const keygenCommand: CommandSpec = {
  name: 'keygen',
  summary: 'Generate an Ed25519 signing key pair: NAME.key (PKCS#8 PEM, mode 0600) and NAME.pub (SPKI PEM); prints the key id.',
  args: '',
  positionals: { min: 0, max: 0 },
  options: {
    out: { type: 'string', arg: 'NAME', description: 'write NAME.key and NAME.pub (required)' },
    force: { type: 'boolean', description: 'replace existing key files' },
  },
  notes: [
    'One key may sign both release statements and bundle headers; for the Uptane-style split keep an',
    'offline release key and an online bundle key (ferry bundle --key ... --bundle-key ...).',
    'example:',
    '  ferry keygen --out release',
  ],
  run,
};
