/**
 * The data directory (`ferry serve --data DIR`): the store, the bundle repository, the SQLite
 * state, the online bundle-signing key and the admin token. Keys and the token are created on
 * first start with exclusive creates, so two servers starting on one shared directory agree.
 */
import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, fsyncDir, generateKeyPair, parsePrivateKey, type PrivateKey } from '@ferry/core';
import { newToken } from './state/tokens.js';

/** Paths inside a data directory. */
export interface DataPaths {
  store: string;
  repo: string;
  sqlite: string;
  bundleKey: string;
  bundlePub: string;
  adminToken: string;
}

/** The paths of a data directory. */
export function dataPaths(dir: string): DataPaths {
  return {
    store: join(dir, 'store'),
    repo: join(dir, 'repo'),
    sqlite: join(dir, 'state.db'),
    bundleKey: join(dir, 'keys', 'bundle.key'),
    bundlePub: join(dir, 'keys', 'bundle.pub'),
    adminToken: join(dir, 'admin.token'),
  };
}

/** Creates `path` with `data` and `mode` unless it exists; true when this call created it. */
async function createOnce(path: string, data: string, mode: number): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'wx', mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    await fh.writeFile(data);
    await fh.chmod(mode);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return true;
}

/** Reads a file another process may be creating right now (it appears whole within moments). */
async function readSettled(path: string): Promise<string> {
  for (let i = 0; ; i++) {
    const text = await readFile(path, 'utf8');
    if (text.trim().length > 0 || i > 50) return text;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The online bundle key, created on first start (its public half beside it). */
export async function loadBundleKey(p: DataPaths): Promise<{ key: PrivateKey; created: boolean }> {
  await mkdir(join(p.bundleKey, '..'), { recursive: true, mode: 0o700 });
  const pair = generateKeyPair();
  const created = await createOnce(p.bundleKey, pair.privatePem, 0o600);
  const pem = created ? pair.privatePem : await readSettled(p.bundleKey);
  const key = parsePrivateKey(pem, p.bundleKey);
  const pub = key.publicKey.key.export({ format: 'pem', type: 'spki' }).toString();
  await createOnce(p.bundlePub, pub, 0o644);
  if (created) await fsyncDir(join(p.bundleKey, '..'));
  return { key, created };
}

/** The admin token, created on first start in a 0600 file. */
export async function loadAdminToken(p: DataPaths): Promise<{ token: string; created: boolean }> {
  const fresh = newToken('admin');
  const created = await createOnce(p.adminToken, `${fresh}\n`, 0o600);
  const token = created ? fresh : (await readSettled(p.adminToken)).trim();
  if (!token.startsWith('fyx_')) throw new FerryError('FERRY_ERR_USAGE', `${p.adminToken} does not hold an admin token`);
  return { token, created };
}

/** Creates the data directory's folders. */
export async function prepareDataDir(dir: string): Promise<DataPaths> {
  const p = dataPaths(dir);
  await mkdir(dir, { recursive: true });
  await mkdir(join(p.repo, 'headers'), { recursive: true });
  await mkdir(join(p.repo, 'chunks'), { recursive: true });
  return p;
}
