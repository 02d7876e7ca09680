/**
 * Bundle headers and release statements (docs/format.md sections 3-4). Both are msgpack documents
 * wrapped in a signed envelope `{ signed: bin, signatures: [[keyid, sig], ...] }`; the signature
 * covers the exact `signed` bytes, which are decoded only after the signature verified.
 */
import { FerryError } from '../errors.js';
import { bytesToDigest, digestToBytes, isDigest, sha256, type Digest } from '../util/digest.js';
import { isChannelName, parseRef } from '../store/refs.js';
import { check, decodeLimited, encodeMsgpack } from './msgpack.js';
import { COMPRESSED_HEADER_VERSION, HEADER_MAX_BYTES, inflateHeaderDocument } from './header-zstd.js';
import { signBytes, verifySignatures, type PrivateKey, type RolePolicy, type Signature, type SigningRole } from './keys.js';

/**
 * Format version of headers and payloads this ferry writes: 2 adds reference-set groups to the
 * payload (docs/format.md section 5.3). Version 1 bundles (a subset) are still read.
 */
export const BUNDLE_FORMAT_VERSION = 2;
/**
 * Format version of a bundle whose payload holds segmented patches (docs/format.md section 5.4):
 * an applier that reads only versions 1 and 2 refuses it with FERRY_ERR_BUNDLE_VERSION instead of
 * failing on an op it does not know. Bundles without segmented patches stay version 2.
 */
export const SEGMENTED_FORMAT_VERSION = 3;
/** Header and payload versions this ferry reads. */
export const BUNDLE_FORMAT_VERSIONS_READ: readonly number[] = [1, 2, 3];
/** Format version of release statements (unchanged by payload versions: the engineer signs these offline). */
export const RELEASE_FORMAT_VERSION = 1;
/** Largest header (envelope, and header document once decompressed), checked before any byte is decoded. */
export { HEADER_MAX_BYTES, COMPRESSED_HEADER_VERSION, compressHeaderDocument } from './header-zstd.js';

/** Target layers a header may list (docs/format.md section 4). */
export const HEADER_MAX_LAYERS = 1024;
/** Baseline layers a header may list, each at most once. */
export const HEADER_MAX_BASELINE = 4096;
/** Chunks a header may list (at 34 bytes each, about what fits in HEADER_MAX_BYTES). */
export const HEADER_MAX_CHUNKS = 1 << 19;
/** Smallest and largest chunk size: readers allocate a chunk, so its size is capped. */
export const CHUNK_SIZE_MIN = 1024;
export const CHUNK_SIZE_MAX = 16 * 1024 * 1024;
/** Largest payload: as many of the largest chunks as a header may list. */
export const PAYLOAD_MAX_BYTES = HEADER_MAX_CHUNKS * CHUNK_SIZE_MAX;

/** An envelope is `{signed, signatures: [[keyid, sig], ...]}`: 3 deep, at most 64 signatures. */
const ENVELOPE_LIMITS = { maxStrLength: 256, maxBinLength: HEADER_MAX_BYTES, maxArrayLength: 64, maxMapLength: 4, maxDepth: 3, maxElements: 256 };
/** A release statement is a flat map of 8 fields. */
const RELEASE_LIMITS = { maxStrLength: 4096, maxBinLength: 0, maxArrayLength: 0, maxMapLength: 16, maxDepth: 1, maxElements: 64 };
/** A header: a map of lists (`payload: [size, chunkSize, [chunk, ...]]`, `layers: [[...], ...]`): 3 deep. */
const HEADER_LIMITS = {
  maxStrLength: 4096,
  maxBinLength: 8 * 1024 * 1024,
  maxArrayLength: HEADER_MAX_CHUNKS,
  maxMapLength: 32,
  maxDepth: 3,
  maxElements: HEADER_MAX_CHUNKS + HEADER_MAX_BASELINE + 8 * HEADER_MAX_LAYERS + 256,
};
/** The signed bytes as first read: a header document or a version 4 wrapper, whose `z` may take the whole envelope. */
const SIGNED_HEADER_LIMITS = { ...HEADER_LIMITS, maxBinLength: HEADER_MAX_BYTES };

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

/** A channel becomes a file name on the device: the CLI's rule holds for signed headers too. */
function channelField(v: unknown): string {
  const channel = check.str(v, 'release.channel');
  if (!isChannelName(channel)) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `release statement names channel ${JSON.stringify(channel.slice(0, 200))}, not a valid channel name (letters, digits, '.', '_' and '-', up to 128, starting with a letter or digit)`);
  return channel;
}

/** The ref a device installs as must be a valid name:tag (FERRY_ERR_REF_INVALID). */
function refField(v: unknown): string {
  const ref = check.str(v, 'release.ref');
  parseRef(ref);
  return ref;
}

/** Decodes verified release statement bytes. */
export function decodeRelease(bytes: Uint8Array): ReleaseStatement {
  const m = check.map(decodeLimited(bytes, RELEASE_LIMITS, 'release statement'), 'release statement');
  if (m.type !== 'ferry-release') throw new FerryError('FERRY_ERR_BUNDLE_INVALID', 'not a ferry release statement');
  if (m.v !== RELEASE_FORMAT_VERSION) throw new FerryError('FERRY_ERR_BUNDLE_VERSION', `release statement version ${String(m.v)} is not supported`);
  return {
    channel: channelField(m.channel),
    release: check.uint(m.release, 'release.release'),
    ref: refField(m.ref),
    manifest: digestField(m.manifest, 'release.manifest'),
    config: digestField(m.config, 'release.config'),
    expires: check.uint(m.expires, 'release.expires'),
    created: check.uint(m.created, 'release.created'),
  };
}

const MODES = ['reuse', 'rebuild'] as const;

/** Encodes a header document (to be signed with signEnvelope('header', ...)). */
export function encodeHeader(h: Omit<BundleHeader, 'release' | 'version'> & { version?: number | undefined }): Uint8Array {
  return encodeMsgpack({
    type: 'ferry-bundle',
    v: h.version ?? BUNDLE_FORMAT_VERSION,
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

/** An array of at most `max` items, checked before any item is looked at. */
function list(v: unknown, what: string, max: number): unknown[] {
  const a = check.array(v, what);
  if (a.length > max) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `${what} has ${a.length} items, over the cap of ${max}`);
  return a;
}

function decodeLayers(v: unknown): LayerPlan[] {
  return list(v, 'header.layers', HEADER_MAX_LAYERS).map((x, i) => {
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
  const m = headerFields(bytes);
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
    baseline: list(m.baseline, 'header.baseline', HEADER_MAX_BASELINE).map((d, i) => bytesToDigest(check.bin(d, `baseline ${i}`, 32))),
    layers: decodeLayers(m.layers),
    payloadSize: check.uint(payload[0], 'payload size'),
    chunkSize: check.uint(payload[1], 'chunk size'),
    chunks: list(payload[2], 'chunk list', HEADER_MAX_CHUNKS).map((d, i) => bytesToDigest(check.bin(d, `chunk ${i}`, 32))),
    need: check.uint(m.need, 'header.need'),
    created: check.uint(m.created, 'header.created'),
  };
  checkConsistent(header);
  return header;
}

/**
 * The header document's fields from the signed bytes: decoded as they are, or, for a version 4
 * wrapper (docs/format.md section 4.1), from the document its zstd frame holds (decompressed
 * within HEADER_MAX_BYTES). A wrapper inside a wrapper is refused.
 */
function headerFields(bytes: Uint8Array): Record<string, unknown> {
  let m = check.map(decodeLimited(bytes, SIGNED_HEADER_LIMITS, 'bundle header'), 'bundle header');
  if (m.type !== 'ferry-bundle') throw new FerryError('FERRY_ERR_BUNDLE_INVALID', 'not a ferry bundle header');
  if (m.v !== COMPRESSED_HEADER_VERSION) return m;
  m = check.map(decodeLimited(inflateHeaderDocument(m), HEADER_LIMITS, 'bundle header'), 'bundle header');
  if (m.type !== 'ferry-bundle') throw new FerryError('FERRY_ERR_BUNDLE_INVALID', 'compressed bundle header: not a ferry bundle header inside');
  if (m.v === COMPRESSED_HEADER_VERSION) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', 'compressed bundle header: another compressed header inside');
  return m;
}

/** The header document inside verified signed header bytes: the bytes themselves, or a version 4 wrapper's decompressed document. */
export function headerDocument(bytes: Uint8Array): Uint8Array {
  const m = check.map(decodeLimited(bytes, SIGNED_HEADER_LIMITS, 'bundle header'), 'bundle header');
  return m.type === 'ferry-bundle' && m.v === COMPRESSED_HEADER_VERSION ? inflateHeaderDocument(m) : bytes;
}

/**
 * Checks the header's sizes and lists against each other and against the caps, before anything
 * is loaded for it (docs/format.md section 4): a repeated baseline layer or an absurd chunk size
 * would otherwise make the applier load or allocate accordingly.
 */
function checkConsistent(h: BundleHeader): void {
  const bad = (msg: string): FerryError => new FerryError('FERRY_ERR_BUNDLE_INVALID', `bundle header is inconsistent: ${msg}`);
  if (sha256(h.manifest) !== h.release.manifest) throw bad('its manifest is not the one the release statement names');
  if (sha256(h.config) !== h.release.config) throw bad('its config is not the one the release statement names');
  if (h.chunkSize < CHUNK_SIZE_MIN || h.chunkSize > CHUNK_SIZE_MAX) throw bad(`chunk size ${h.chunkSize} is outside ${CHUNK_SIZE_MIN}..${CHUNK_SIZE_MAX}`);
  if (h.payloadSize > PAYLOAD_MAX_BYTES) throw bad(`payload size ${h.payloadSize} is over the cap of ${PAYLOAD_MAX_BYTES}`);
  if (h.chunks.length !== Math.ceil(h.payloadSize / h.chunkSize)) throw bad(`${h.chunks.length} chunks cannot hold ${h.payloadSize} bytes in chunks of ${h.chunkSize}`);
  if (new Set(h.baseline).size !== h.baseline.length) throw bad('its baseline names a layer more than once');
  for (const l of h.layers) if (l.end > h.payloadSize) throw bad(`layer ${l.diffId} payload range runs past the payload`);
  // new store data is at most the rebuilt layers' bytes (bodies plus header records) and change
  const rebuilt = h.layers.reduce((a, l) => a + (l.mode === 'rebuild' ? l.size : 0), 0);
  if (h.need > 2 * rebuilt + NEED_SLACK) throw bad(`it says the apply needs ${h.need} bytes, more than twice the ${rebuilt} bytes of the layers it rebuilds`);
}

/** What `need` may exceed twice the rebuilt layer bytes by (skeleton overhead of tiny layers). */
const NEED_SLACK = 1024 * 1024;

/** Checks done before any chunk is touched (DESIGN.md section 6). */
export interface HeaderChecks {
  /** Trust policy per role. */
  trust: { release: RolePolicy; header: RolePolicy };
  /** Current time in unix seconds (injected for tests). */
  now?: number;
  /** When set, a header for another channel is refused. */
  channel?: string | undefined;
}

declare const verifiedBrand: unique symbol;

/**
 * A header whose envelope verified against trusted keys, decoded and checked for consistency,
 * expiry and channel. Only {@link verifyHeader} produces one (the brand cannot be written in a
 * literal), so planApply can take it as proof that the signatures were checked.
 */
export type VerifiedHeader = BundleHeader & {
  /** The bundle id: sha256 of the header envelope bytes (docs/format.md section 4). */
  readonly id: Digest;
  readonly [verifiedBrand]: true;
};

/** Verifies signatures, expiry and channel, and decodes a header envelope. */
export function verifyHeader(envelopeBytes: Uint8Array, checks: HeaderChecks): VerifiedHeader {
  const signed = openEnvelope('header', envelopeBytes, checks.trust.header);
  const h = decodeHeader(signed, checks.trust.release);
  checkExpiry(h, checks.now);
  checkChannel(h, checks.channel);
  return Object.assign(h, { id: bundleId(envelopeBytes) }) as VerifiedHeader;
}

/** Refuses a header whose release statement has expired (`expires <= now`): FERRY_ERR_BUNDLE_EXPIRED. */
export function checkExpiry(h: BundleHeader, now = Math.floor(Date.now() / 1000)): void {
  if (h.release.expires <= now) {
    throw new FerryError('FERRY_ERR_BUNDLE_EXPIRED', `bundle for ${h.release.ref} (release ${h.release.release}) expired at ${new Date(h.release.expires * 1000).toISOString()}`);
  }
}

/** Refuses a header for another channel than `channel` (when given): FERRY_ERR_BUNDLE_CHANNEL. */
export function checkChannel(h: BundleHeader, channel: string | undefined): void {
  if (channel !== undefined && channel !== h.release.channel) {
    throw new FerryError('FERRY_ERR_BUNDLE_CHANNEL', `bundle is for channel ${h.release.channel}, not ${channel}`);
  }
}

/** The bundle id: sha256 of the header envelope bytes. */
export function bundleId(envelopeBytes: Uint8Array): Digest {
  return sha256(envelopeBytes);
}
