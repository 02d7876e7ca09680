/**
 * Keys and signatures (bundle/keys.ts, DESIGN.md section 5): Ed25519 over `domain prefix || bytes`,
 * thresholds of distinct keys (deduplicated by their bytes, never by id), key ids as hints only.
 */
import { sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  SIGNING_DOMAIN,
  generateKeyPair,
  openEnvelope,
  parsePrivateKey,
  parsePublicKey,
  rolePolicy,
  signBytes,
  signEnvelope,
  verifySignatures,
  type FerryError,
  type PrivateKey,
} from '../src/index.js';

const doc = Buffer.from('ferry test document: release 7 of channel stable');

function key(): PrivateKey {
  return parsePrivateKey(generateKeyPair().privatePem);
}

/** Runs `fn` and returns the FerryError code it threw. */
function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as FerryError).code;
  }
  throw new Error('expected a FerryError, nothing was thrown');
}

describe('signatures', () => {
  const a = key();
  const b = key();

  it('verifies a signature made by a trusted key and returns that key', () => {
    const sig = signBytes('release', doc, a);
    const good = verifySignatures('release', doc, [sig], rolePolicy([a.publicKey]));
    expect(good.map((k) => k.id)).toEqual([a.id]);
  });

  it('refuses a signature by another key with FERRY_ERR_SIGNATURE_INVALID', () => {
    const sig = signBytes('release', doc, b);
    expect(codeOf(() => verifySignatures('release', doc, [sig], rolePolicy([a.publicKey])))).toBe('FERRY_ERR_SIGNATURE_INVALID');
  });

  it('refuses changed bytes, an empty list and a garbage signature', () => {
    const sig = signBytes('header', doc, a);
    const changed = Buffer.from(doc);
    changed[3]! ^= 1;
    const policy = rolePolicy([a.publicKey]);
    expect(codeOf(() => verifySignatures('header', changed, [sig], policy))).toBe('FERRY_ERR_SIGNATURE_INVALID');
    expect(codeOf(() => verifySignatures('header', doc, [], policy))).toBe('FERRY_ERR_SIGNATURE_INVALID');
    expect(codeOf(() => verifySignatures('header', doc, [{ keyid: a.id, sig: new Uint8Array(5) }], policy))).toBe('FERRY_ERR_SIGNATURE_INVALID');
  });

  it('keeps roles apart: a release signature never verifies as a header (domain separation)', () => {
    const sig = signBytes('release', doc, a);
    const policy = rolePolicy([a.publicKey]);
    expect(() => verifySignatures('release', doc, [sig], policy)).not.toThrow();
    expect(codeOf(() => verifySignatures('header', doc, [sig], policy))).toBe('FERRY_ERR_SIGNATURE_INVALID');
    // nor does a signature over the bare bytes, made without any domain prefix
    const bare = { keyid: a.id, sig: sign(null, doc, a.key) };
    expect(codeOf(() => verifySignatures('release', doc, [bare], policy))).toBe('FERRY_ERR_SIGNATURE_INVALID');
    // the prefix is what is signed: a release signature verifies over release-prefixed bytes
    const msg = Buffer.concat([Buffer.from(SIGNING_DOMAIN.release), doc]);
    expect(verify(null, msg, a.publicKey.key, sig.sig)).toBe(true);
    const env = signEnvelope('header', doc, [a]);
    expect(Buffer.from(openEnvelope('header', env, policy)).equals(doc)).toBe(true);
    expect(codeOf(() => openEnvelope('release', env, policy))).toBe('FERRY_ERR_SIGNATURE_INVALID');
  });

  it('treats key ids as hints: a wrong or foreign keyid still verifies against the right key', () => {
    const sig = signBytes('header', doc, a);
    const policy = rolePolicy([b.publicKey, a.publicKey]);
    expect(verifySignatures('header', doc, [{ ...sig, keyid: 'not-a-key-id' }], policy).map((k) => k.id)).toEqual([a.id]);
    expect(verifySignatures('header', doc, [{ ...sig, keyid: b.id }], policy).map((k) => k.id)).toEqual([a.id]);
  });

  it('does not let a signature borrow a trusted key id: an untrusted signer naming a trusted id fails', () => {
    const sig = signBytes('header', doc, b);
    expect(codeOf(() => verifySignatures('header', doc, [{ ...sig, keyid: a.id }], rolePolicy([a.publicKey])))).toBe('FERRY_ERR_SIGNATURE_INVALID');
  });
});

describe('thresholds', () => {
  const a = key();
  const b = key();
  const c = key();

  it('refuses threshold 2 over the same key given twice (deduplicated by key bytes)', () => {
    // the same key parsed twice is two objects with equal bytes: it counts once
    const again = parsePublicKey(a.publicKey.key.export({ format: 'pem', type: 'spki' }));
    expect(again).not.toBe(a.publicKey);
    expect(codeOf(() => rolePolicy([a.publicKey, again], 2))).toBe('FERRY_ERR_TRUST_INVALID');
    expect(rolePolicy([a.publicKey, again]).keys).toHaveLength(1);
  });

  it('counts a key once however many signatures it made', () => {
    const policy = rolePolicy([a.publicKey, b.publicKey], 2);
    const s1 = signBytes('release', doc, a);
    const s2 = signBytes('release', doc, a);
    expect(codeOf(() => verifySignatures('release', doc, [s1, s2, { ...s1, keyid: b.id }], policy))).toBe('FERRY_ERR_SIGNATURE_INVALID');
  });

  it('passes threshold 2 with two distinct trusted keys, and an untrusted third signer does not count', () => {
    const policy = rolePolicy([a.publicKey, b.publicKey], 2);
    const good = verifySignatures('release', doc, [signBytes('release', doc, b), signBytes('release', doc, a)], policy);
    expect(good.map((k) => k.id).sort()).toEqual([a.id, b.id].sort());
    expect(codeOf(() => verifySignatures('release', doc, [signBytes('release', doc, a), signBytes('release', doc, c)], policy))).toBe('FERRY_ERR_SIGNATURE_INVALID');
  });

  it('passes threshold 2 through an envelope signed by two keys', () => {
    const env = signEnvelope('release', doc, [a, b]);
    expect(Buffer.from(openEnvelope('release', env, rolePolicy([a.publicKey, b.publicKey, c.publicKey], 2))).equals(doc)).toBe(true);
    const one = signEnvelope('release', doc, [a]);
    expect(codeOf(() => openEnvelope('release', one, rolePolicy([a.publicKey, b.publicKey], 2)))).toBe('FERRY_ERR_SIGNATURE_INVALID');
  });

  it('refuses threshold 0, negative, fractional, and more than the distinct keys: FERRY_ERR_TRUST_INVALID', () => {
    expect(codeOf(() => rolePolicy([a.publicKey], 0))).toBe('FERRY_ERR_TRUST_INVALID');
    expect(codeOf(() => rolePolicy([a.publicKey], -1))).toBe('FERRY_ERR_TRUST_INVALID');
    expect(codeOf(() => rolePolicy([a.publicKey, b.publicKey], 1.5))).toBe('FERRY_ERR_TRUST_INVALID');
    expect(codeOf(() => rolePolicy([a.publicKey], 2))).toBe('FERRY_ERR_TRUST_INVALID');
    expect(codeOf(() => rolePolicy([]))).toBe('FERRY_ERR_TRUST_INVALID');
  });
});

describe('key parsing', () => {
  it('round-trips PEM key pairs and gives both halves the same id', () => {
    const pair = generateKeyPair();
    const priv = parsePrivateKey(pair.privatePem);
    const pub = parsePublicKey(pair.publicPem);
    expect(priv.id).toBe(pair.id);
    expect(pub.id).toBe(pair.id);
    expect(pub.raw.equals(priv.publicKey.raw)).toBe(true);
    expect(parsePublicKey(pair.privatePem).id).toBe(pair.id);
  });

  it('refuses text that is not a key, and keys of another type, with FERRY_ERR_KEY_INVALID', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(codeOf(() => parsePrivateKey('not a key'))).toBe('FERRY_ERR_KEY_INVALID');
    expect(codeOf(() => parsePublicKey('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'))).toBe('FERRY_ERR_KEY_INVALID');
    expect(codeOf(() => parsePrivateKey(ec.privateKey.export({ format: 'pem', type: 'pkcs8' })))).toBe('FERRY_ERR_KEY_INVALID');
    expect(codeOf(() => parsePublicKey(ec.publicKey.export({ format: 'pem', type: 'spki' })))).toBe('FERRY_ERR_KEY_INVALID');
    expect(codeOf(() => signEnvelope('header', doc, []))).toBe('FERRY_ERR_KEY_INVALID');
  });
});
