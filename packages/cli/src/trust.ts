/**
 * Key and trust files (docs/format.md section 3). Only the CLI reads them; core takes parsed keys
 * and policies. A trust file is a bare `.pub` PEM (trusted for both roles, threshold 1) or JSON
 * `{"release": {"keys": [...], "threshold": 1}, "header": {...}}` with key paths relative to it.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { FerryError, parsePrivateKey, readRegularFile, parsePublicKey, rolePolicy, type PrivateKey, type PublicKey, type TrustPolicy } from '@ferry/core';

/** Key and trust files are small: a PEM key is under 1 KiB, a trust file names a few keys. */
const KEY_FILE_MAX = 64 * 1024;

/**
 * Reads a key or trust file: a regular file of at most KEY_FILE_MAX bytes (a FIFO or /dev/zero is
 * `code`, as is a missing file); a file that exists but cannot be read is FERRY_ERR_IO.
 */
async function readText(path: string, code: 'FERRY_ERR_KEY_INVALID' | 'FERRY_ERR_TRUST_INVALID', what: string): Promise<string> {
  const bytes = await readRegularFile(path, { what, notRegular: code, missing: code, tooBig: code, maxBytes: KEY_FILE_MAX });
  return bytes.toString('utf8');
}

/** Reads PEM private keys (signing keys for `ferry bundle`). */
export async function readPrivateKeys(paths: string[]): Promise<PrivateKey[]> {
  const keys: PrivateKey[] = [];
  for (const p of paths) keys.push(parsePrivateKey(await readText(p, 'FERRY_ERR_KEY_INVALID', 'key file'), p));
  return keys;
}

interface RoleKeys {
  keys: PublicKey[];
  threshold: number;
}

const isPem = (text: string): boolean => text.trimStart().startsWith('-----BEGIN');

function roleOf(json: Record<string, unknown>, role: 'release' | 'header', file: string): { keys: string[]; threshold: number } {
  const bad = (msg: string): FerryError => new FerryError('FERRY_ERR_TRUST_INVALID', `${file}: ${role} ${msg}`);
  const r = json[role];
  if (!r || typeof r !== 'object' || Array.isArray(r)) throw bad('role is missing (expected {"keys": [...], "threshold": N})');
  const { keys, threshold = 1 } = r as { keys?: unknown; threshold?: unknown };
  if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => typeof k === 'string')) throw bad('keys must be a non-empty array of key file paths');
  if (typeof threshold !== 'number' || !Number.isInteger(threshold) || threshold < 1) throw bad('threshold must be a whole number of at least 1');
  return { keys: keys as string[], threshold };
}

async function jsonTrust(text: string, file: string): Promise<Record<'release' | 'header', RoleKeys>> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new FerryError('FERRY_ERR_TRUST_INVALID', `${file} is neither a PEM public key nor a JSON trust file`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new FerryError('FERRY_ERR_TRUST_INVALID', `${file} is not a JSON object`);
  const out = {} as Record<'release' | 'header', RoleKeys>;
  for (const role of ['release', 'header'] as const) {
    const spec = roleOf(json as Record<string, unknown>, role, file);
    const keys: PublicKey[] = [];
    for (const k of spec.keys) {
      // an inline PEM is accepted too; paths are relative to the trust file
      const path = isAbsolute(k) ? k : resolve(dirname(file), k);
      keys.push(isPem(k) ? parsePublicKey(k, `${file} ${role} key`) : parsePublicKey(await readText(path, 'FERRY_ERR_TRUST_INVALID', `${role} key of ${file}:`), path));
    }
    out[role] = { keys, threshold: spec.threshold };
  }
  return out;
}

/**
 * Builds the trust policy from `--trust` files (absolute paths). Several files add their keys to
 * each role; a role's threshold is the highest any file asks for.
 */
export async function loadTrust(files: string[]): Promise<TrustPolicy> {
  if (files.length === 0) throw new FerryError('FERRY_ERR_USAGE', 'give at least one --trust FILE (a .pub key or a JSON trust file)');
  const acc: Record<'release' | 'header', RoleKeys> = { release: { keys: [], threshold: 1 }, header: { keys: [], threshold: 1 } };
  for (const file of files) {
    const text = await readText(file, 'FERRY_ERR_TRUST_INVALID', 'trust file');
    const roles = isPem(text) ? { release: { keys: [parsePublicKey(text, file)], threshold: 1 }, header: { keys: [parsePublicKey(text, file)], threshold: 1 } } : await jsonTrust(text, file);
    for (const role of ['release', 'header'] as const) {
      acc[role].keys.push(...roles[role].keys);
      acc[role].threshold = Math.max(acc[role].threshold, roles[role].threshold);
    }
  }
  return { release: rolePolicy(acc.release.keys, acc.release.threshold), header: rolePolicy(acc.header.keys, acc.header.threshold) };
}
