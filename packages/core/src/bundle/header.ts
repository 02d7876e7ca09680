/**
 * Bundle headers and release statements (docs/format.md sections 3-4). Both are msgpack documents
 * wrapped in a signed envelope `{ signed: bin, signatures: [[keyid, sig], ...] }`; the signature
 * covers the exact `signed` bytes, which are decoded only after the signature verified.
 */
import { FerryError } from '../errors.js';
import { bytesToDigest, digestToBytes, isDigest, sha256, type Digest } from '../util/digest.js';
import { check, decodeLimited, encodeMsgpack } from './msgpack.js';
import { signBytes, verifySignatures, type PrivateKey, type RolePolicy, type Signature, type SigningRole } from './keys.js';

/**
 * Format version of headers and payloads this ferry writes: 2 adds reference-set groups to the
 * payload (docs/format.md section 5.3). Version 1 bundles (a subset) are still read.
 */
export const BUNDLE_FORMAT_VERSION = 2;
/** Header and payload versions this ferry reads. */
export const BUNDLE_FORMAT_VERSIONS_READ: readonly number[] = [1, 2];
/** Format version of release statements (unchanged by payload versions: the engineer signs these offline). */
export const RELEASE_FORMAT_VERSION = 1;
/** Largest header (envelope) accepted, checked before any byte is decoded. */
export const HEADER_MAX_BYTES = 16 * 1024 * 1024;

const ENVELOPE_LIMITS = { maxStrLength: 256, maxBinLength: HEADER_MAX_BYTES, maxArrayLength: 64, maxMapLength: 4 };
const DOC_LIMITS = { maxStrLength: 4096, maxBinLength: 8 * 1024 * 1024, maxArrayLength: 4 * 1024 * 1024, maxMapLength: 32 };

/** What the offline release key vouches for (Uptane's image role). */
export interface ReleaseStatement {
  channel: string;
  /** Monotonically increasing per channel; devices refuse anything not higher than installed. */
  release: number;
  /** The name:tag the device installs the image under. */
  ref: string;
  manifest: Digest;
  config: Digest;
  /** Unix seconds after which the statement (and any header carrying it) is refused. */
  expires: number;
  created: number;
}

/** How a target layer is obtained. */
export interface LayerPlan {
  diffId: Digest;
  /** Uncompressed tar size. */
  size: number;
  /** 'reuse': the baseline holds it whole; 'rebuild': the payload range [start, end) rebuilds it. */
  mode: 'reuse' | 'rebuild';
  start: number;
  end: number;
  /** The layer's size gzip-compressed (level 6), as a registry would send it: for reports only. */
  gzipSize: number;
}

/** The bundle header (signed by the online bundle key; carries the signed release statement). */
export interface BundleHeader {
  version: number;
  /** The release statement envelope, exact bytes. */
  releaseEnvelope: Uint8Array;
  release: ReleaseStatement;
  /** Target image: the store manifest and config, verbatim. */
  manifest: Uint8Array;
  config: Uint8Array;
  /** Baseline layers the device must hold, in the order payload references count entries. */
  baseline: Digest[];
  layers: LayerPlan[];
  payloadSize: number;
  chunkSize: number;
  chunks: Digest[];
  /** Bytes of new store data the apply writes at most (uncompressed new bodies plus skeletons). */
  need: number;
  created: number;
}

function envelope(signed: Uint8Array, signatures: Signature[]): Uint8Array {
  return encodeMsgpack({ signed, signatures: signatures.map((s) => [s.keyid, s.sig]) });
}

/** Signs a document for a role; several keys may sign (thresholds). */
export function signEnvelope(role: SigningRole, doc: Uint8Array, keys: PrivateKey[]): Uint8Array {
  if (keys.length === 0) throw new FerryError('FERRY_ERR_KEY_INVALID', 'no signing key given');
  return envelope(doc, keys.map((k) => signBytes(role, doc, k)));
}

/** Decodes an envelope's shape (size cap first) without checking its signatures. */
export function parseEnvelope(role: SigningRole, bytes: Uint8Array): { signed: Uint8Array; signatures: Signature[] } {
  if (bytes.length > HEADER_MAX_BYTES) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `${role} envelope is ${bytes.length} bytes, over the ${HEADER_MAX_BYTES} cap`);
  const env = check.map(decodeLimited(bytes, ENVELOPE_LIMITS, `${role} envelope`), `${role} envelope`);
  const signed = check.bin(env.signed, `${role} envelope signed`);
  const signatures = check.array(env.signatures, `${role} envelope signatures`).map((s, i) => {
    const pair = check.array(s, `signature ${i}`);
    return { keyid: check.str(pair[0], `signature ${i} keyid`), sig: check.bin(pair[1], `signature ${i} sig`) };
  });
  return { signed, signatures };
}

/** Verifies an envelope and returns the signed bytes (not yet decoded). */
export function openEnvelope(role: SigningRole, bytes: Uint8Array, policy: RolePolicy): Uint8Array {
  const { signed, signatures } = parseEnvelope(role, bytes);
  verifySignatures(role, signed, signatures, policy);
  return signed;
}

/** Encodes a release statement (field order fixed: the bytes are what is signed). */
export function encodeRelease(r: ReleaseStatement): Uint8Array {
  return encodeMsgpack({ type: 'ferry-release', v: RELEASE_FORMAT_VERSION, channel: r.channel, release: r.release, ref: r.ref, manifest: r.manifest, config: r.config, expires: r.expires, created: r.created });
}

function digestField(v: unknown, what: string): Digest {
  if (!isDigest(v)) throw new FerryError('FERRY_ERR_MSGPACK_INVALID', `${what} must be a sha256 digest`);
  return v;
}

/** Decodes verified release statement bytes. */
export function decodeRelease(bytes: Uint8Array): ReleaseStatement {
  const m = check.map(decodeLimited(bytes, DOC_LIMITS, 'release statement'), 'release statement');
  if (m.type !== 'ferry-release') throw new FerryError('FERRY_ERR_BUNDLE_INVALID', 'not a ferry release statement');
  if (m.v !== RELEASE_FORMAT_VERSION) throw new FerryError('FERRY_ERR_BUNDLE_VERSION', `release statement version ${String(m.v)} is not supported`);
  return {
    channel: check.str(m.channel, 'release.channel'),
    release: check.uint(m.release, 'release.release'),
    ref: check.str(m.ref, 'release.ref'),
    manifest: digestField(m.manifest, 'release.manifest'),
    config: digestField(m.config, 'release.config'),
    expires: check.uint(m.expires, 'release.expires'),
    created: check.uint(m.created, 'release.created'),
  };
}

const MODES = ['reuse', 'rebuild'] as const;

/** Encodes a header document (to be signed with signEnvelope('header', ...)). */
export function encodeHeader(h: Omit<BundleHeader, 'release' | 'version'>): Uint8Array {
  return encodeMsgpack({
    type: 'ferry-bundle',
    v: BUNDLE_FORMAT_VERSION,
    release: h.releaseEnvelope,
    manifest: h.manifest,
    config: h.config,
    baseline: h.baseline.map(digestToBytes),
    layers: h.layers.map((l) => [digestToBytes(l.diffId), l.size, MODES.indexOf(l.mode), l.start, l.end, l.gzipSize]),
    payload: [h.payloadSize, h.chunkSize, h.chunks.map(digestToBytes)],
    need: h.need,
    created: h.created,
  });
}

function decodeLayers(v: unknown): LayerPlan[] {
  return check.array(v, 'header.layers').map((x, i) => {
    const a = check.array(x, `layer ${i}`);
    const mode = MODES[check.uint(a[2], `layer ${i} mode`)];
    if (!mode) throw new FerryError('FERRY_ERR_MSGPACK_INVALID', `layer ${i} has an unknown mode`);
    const start = check.uint(a[3], `layer ${i} start`);
    const end = check.uint(a[4], `layer ${i} end`);
    if (end < start) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `layer ${i} payload range ends before it starts`);
    return { diffId: bytesToDigest(check.bin(a[0], `layer ${i} diffId`, 32)), size: check.uint(a[1], `layer ${i} size`), mode, start, end, gzipSize: check.uint(a[5], `layer ${i} gzip size`) };
  });
}

/** Decodes verified header bytes; the embedded release envelope is verified with `releasePolicy`. */
export function decodeHeader(bytes: Uint8Array, releasePolicy: RolePolicy): BundleHeader {
  return decodeHeaderWith(bytes, (env) => openEnvelope('release', env, releasePolicy));
}

/**
 * Decodes header bytes, opening the embedded release envelope with `openRelease` (which verifies
 * it, or for inspection only, does not). Shape, limits and consistency are always checked.
 */
export function decodeHeaderWith(bytes: Uint8Array, openRelease: (envelope: Uint8Array) => Uint8Array): BundleHeader {
  const m = check.map(decodeLimited(bytes, DOC_LIMITS, 'bundle header'), 'bundle header');
  if (m.type !== 'ferry-bundle') throw new FerryError('FERRY_ERR_BUNDLE_INVALID', 'not a ferry bundle header');
  if (typeof m.v !== 'number' || !BUNDLE_FORMAT_VERSIONS_READ.includes(m.v)) throw new FerryError('FERRY_ERR_BUNDLE_VERSION', `bundle format version ${String(m.v)} is not supported (this ferry reads ${BUNDLE_FORMAT_VERSIONS_READ.join(', ')})`);
  const releaseEnvelope = check.bin(m.release, 'header.release');
  const release = decodeRelease(openRelease(releaseEnvelope));
  const payload = check.array(m.payload, 'header.payload');
  const header: BundleHeader = {
    version: m.v,
    releaseEnvelope,
    release,
    manifest: check.bin(m.manifest, 'header.manifest'),
    config: check.bin(m.config, 'header.config'),
    baseline: check.array(m.baseline, 'header.baseline').map((d, i) => bytesToDigest(check.bin(d, `baseline ${i}`, 32))),
    layers: decodeLayers(m.layers),
    payloadSize: check.uint(payload[0], 'payload size'),
    chunkSize: check.uint(payload[1], 'chunk size'),
    chunks: check.array(payload[2], 'chunk list').map((d, i) => bytesToDigest(check.bin(d, `chunk ${i}`, 32))),
    need: check.uint(m.need, 'header.need'),
    created: check.uint(m.created, 'header.created'),
  };
  checkConsistent(header);
  return header;
}

function checkConsistent(h: BundleHeader): void {
  const bad = (msg: string): FerryError => new FerryError('FERRY_ERR_BUNDLE_INVALID', `bundle header is inconsistent: ${msg}`);
  if (sha256(h.manifest) !== h.release.manifest) throw bad('its manifest is not the one the release statement names');
  if (sha256(h.config) !== h.release.config) throw bad('its config is not the one the release statement names');
  if (h.chunkSize < 1) throw bad('chunk size is 0');
  if (h.chunks.length !== Math.ceil(h.payloadSize / h.chunkSize)) throw bad(`${h.chunks.length} chunks cannot hold ${h.payloadSize} bytes in chunks of ${h.chunkSize}`);
  for (const l of h.layers) if (l.end > h.payloadSize) throw bad(`layer ${l.diffId} payload range runs past the payload`);
}

/** Checks done before any chunk is touched (DESIGN.md section 6). */
export interface HeaderChecks {
  /** Trust policy per role. */
  trust: { release: RolePolicy; header: RolePolicy };
  /** Current time in unix seconds (injected for tests). */
  now?: number;
  /** When set, a header for another channel is refused. */
  channel?: string | undefined;
}

/** Verifies signatures, expiry and channel, and decodes a header envelope. */
export function verifyHeader(envelopeBytes: Uint8Array, checks: HeaderChecks): BundleHeader {
  const signed = openEnvelope('header', envelopeBytes, checks.trust.header);
  const h = decodeHeader(signed, checks.trust.release);
  const now = checks.now ?? Math.floor(Date.now() / 1000);
  if (h.release.expires <= now) {
    throw new FerryError('FERRY_ERR_BUNDLE_EXPIRED', `bundle for ${h.release.ref} (release ${h.release.release}) expired at ${new Date(h.release.expires * 1000).toISOString()}`);
  }
  if (checks.channel !== undefined && checks.channel !== h.release.channel) {
    throw new FerryError('FERRY_ERR_BUNDLE_CHANNEL', `bundle is for channel ${h.release.channel}, not ${checks.channel}`);
  }
  return h;
}

/** The bundle id: sha256 of the header envelope bytes. */
export function bundleId(envelopeBytes: Uint8Array): Digest {
  return sha256(envelopeBytes);
}
