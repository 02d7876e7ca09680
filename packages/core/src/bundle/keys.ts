/**
 * Ed25519 keys, signatures with domain separation, and trust policies with thresholds
 * (docs/format.md section 3). Signatures cover `prefix || bytes` where the prefix names the payload
 * type, so a signature over one kind of document never verifies as another. Key ids are hints.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { FerryError } from '../errors.js';
import { sha256 } from '../util/digest.js';

/** Domain prefixes, one per signed payload type. */
export const SIGNING_DOMAIN = {
  release: 'ferry/release-statement/v1\n',
  header: 'ferry/bundle-header/v1\n',
} as const;

/** A signed payload type. */
export type SigningRole = keyof typeof SIGNING_DOMAIN;

/** A public key with its id (sha256 of the raw 32 key bytes, hex). */
export interface PublicKey {
  id: string;
  key: KeyObject;
  raw: Buffer;
}

/** A private key with its public half. */
export interface PrivateKey {
  id: string;
  key: KeyObject;
  publicKey: PublicKey;
}

function rawOf(pub: KeyObject): Buffer {
  const jwk = pub.export({ format: 'jwk' }) as { x?: string };
  if (!jwk.x) throw new FerryError('FERRY_ERR_KEY_INVALID', 'not an Ed25519 public key');
  return Buffer.from(jwk.x, 'base64url');
}

function toPublic(key: KeyObject): PublicKey {
  if (key.asymmetricKeyType !== 'ed25519') throw new FerryError('FERRY_ERR_KEY_INVALID', `key type is ${key.asymmetricKeyType}, ferry uses ed25519`);
  const raw = rawOf(key);
  return { id: sha256(raw).slice(7, 23), key, raw };
}

/** Generates a key pair; returns PEM texts (PKCS#8 private, SPKI public) and the key id. */
export function generateKeyPair(): { privatePem: string; publicPem: string; id: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    id: toPublic(publicKey).id,
  };
}

/** Parses a PEM private key. */
export function parsePrivateKey(pem: string | Buffer, where = 'key'): PrivateKey {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new FerryError('FERRY_ERR_KEY_INVALID', `${where} is not a PEM private key`, { cause: err });
  }
  const publicKey = toPublic(createPublicKey(key));
  return { id: publicKey.id, key, publicKey };
}

/** Parses a PEM public key (or the public half of a private key). */
export function parsePublicKey(pem: string | Buffer, where = 'key'): PublicKey {
  try {
    return toPublic(createPublicKey(pem));
  } catch (err) {
    if (err instanceof FerryError) throw err;
    throw new FerryError('FERRY_ERR_KEY_INVALID', `${where} is not a PEM public key`, { cause: err });
  }
}

/** One signature in an envelope. */
export interface Signature {
  /** Key id of the signer: a hint only, never trusted. */
  keyid: string;
  sig: Uint8Array;
}

/** Signs `bytes` for `role`. */
export function signBytes(role: SigningRole, bytes: Uint8Array, key: PrivateKey): Signature {
  const msg = Buffer.concat([Buffer.from(SIGNING_DOMAIN[role]), bytes]);
  return { keyid: key.id, sig: sign(null, msg, key.key) };
}

/** Keys trusted for one role, and how many distinct ones must sign. */
export interface RolePolicy {
  keys: PublicKey[];
  threshold: number;
}

/** A device's trust: keys per role (Uptane-style release/bundle split). */
export interface TrustPolicy {
  release: RolePolicy;
  header: RolePolicy;
}

/** Builds a role policy: keys deduplicated by their bytes, threshold checked. */
export function rolePolicy(keys: PublicKey[], threshold = 1): RolePolicy {
  const unique = [...new Map(keys.map((k) => [k.raw.toString('hex'), k])).values()];
  if (!Number.isInteger(threshold) || threshold < 1) throw new FerryError('FERRY_ERR_TRUST_INVALID', `threshold must be a whole number of at least 1, got ${threshold}`);
  if (unique.length < threshold) throw new FerryError('FERRY_ERR_TRUST_INVALID', `threshold ${threshold} is more than the ${unique.length} distinct trusted keys`);
  return { keys: unique, threshold };
}

/**
 * Verifies that at least `threshold` distinct trusted keys signed `bytes` for `role`. Every
 * signature is tried against every trusted key (ids are hints only); a key counts once however
 * many signatures it made. Fails with FERRY_ERR_SIGNATURE_INVALID.
 */
export function verifySignatures(role: SigningRole, bytes: Uint8Array, signatures: Signature[], policy: RolePolicy): PublicKey[] {
  const msg = Buffer.concat([Buffer.from(SIGNING_DOMAIN[role]), bytes]);
  const good = new Map<string, PublicKey>();
  for (const s of signatures) {
    for (const k of policy.keys) {
      const kid = k.raw.toString('hex');
      if (good.has(kid)) continue;
      let ok = false;
      try {
        ok = verify(null, msg, k.key, s.sig);
      } catch {
        ok = false;
      }
      if (ok) good.set(kid, k);
    }
  }
  if (good.size < policy.threshold) {
    throw new FerryError('FERRY_ERR_SIGNATURE_INVALID', `${role} signature check failed: ${good.size} of the required ${policy.threshold} trusted keys signed`, { details: { role, valid: good.size, threshold: policy.threshold } });
  }
  return [...good.values()];
}
