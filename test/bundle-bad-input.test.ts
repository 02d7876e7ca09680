/**
 * Bad bundles (DESIGN.md sections 5, 6 and 8): every refused bundle gets its stable code and leaves
 * the device store as it was: the same refs, the same channel state, fsck clean, no temp file, the
 * lock released. What a refused apply may add is resume progress (layers it rebuilt and verified,
 * its pending-apply record, for a retryable failure only) and unreferenced contents: abandoning
 * the apply and running gc gives back the store file for file. One fixture (imagegen v1/v2, a bundle written both as a
 * `.ferry` file and into a repository directory); each case damages a copy, or builds a signed
 * header or payload that lies, and applies it to a device store that holds v1. Refusals all go to
 * one shared device whose every file is compared before and after (see expectRefused); cases that
 * change a device on purpose (rollback, missing or corrupted baseline) use clones.
 */
import { cp, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FERRY_FILE_MAGIC,
  HEADER_MAX_BYTES,
  PAYLOAD_PART,
  SEGMENTED_FORMAT_VERSION,
  SEGMENTS_MAX,
  abandonApply,
  applyBundle,
  bundleId,
  decodeLimited,
  digestHex,
  encodeMsgpack,
  encodeRelease,
  fsck,
  gc,
  headerDocument,
  loadBaseline,
  openBundle,
  openEnvelope,
  packSegments,
  packU32,
  payloadRange,
  readOps,
  signEnvelope,
  verifyHeader,
  zstdCompress,
  type ApplyOptions,
  type BundleHeader,
  type BundleSource,
  type Digest,
  type FerryError,
  type PrivateKey,
  type Segment,
  type Store,
  type TrustPolicy,
} from '@ferry/core';
import { createBundle, signBundle, writeBundleDir, writeFerryFile, type ComputedBundle } from '@ferry/differ';
import { writeImagePair } from '@ferry/imagegen';
import {
  buildPackages,
  cloneStore,
  createStore,
  expected,
  expectUnchanged,
  importTags,
  newKey,
  remove,
  scratch,
  storeState,
  tarHeader,
  treeChanges,
  treeSnapshot,
  trustOf,
  verifyExport,
  type ExpectedImage,
  type StoreState,
} from '@ferry/test-support';
import { withFrame as replaceFrame } from './helpers/apply-fixture.js';

const CREATED = Math.floor(Date.now() / 1000) - 3600;
const EXPIRES = CREATED + 30 * 86400;
const CHUNK = 2 * 1024;

let work: string;
let pub: Store;
/** A device holding app:v1, cloned for cases that change a device on purpose. */
let deviceDir: string;
let key: PrivateKey;
let trust: TrustPolicy;
let bundle: ComputedBundle;
let ferry: string;
let repo: string;
let v2: ExpectedImage;
let header: BundleHeader;
/** The decoded header document, for crafting lies. */
let doc: Record<string, unknown>;
let cases = 0;
/** The device every refusal is tried on (after fsck passed on it). */
let shared: Store;
let sharedState: StoreState;

beforeAll(async () => {
  buildPackages();
  work = await scratch('bad-input');
  const layout = join(work, 'layout');
  await writeImagePair(layout, { targetBytes: 1024 * 1024, fileScale: 0.25, tags: ['v1', 'v2'] });
  pub = await createStore(join(work, 'pub'));
  await importTags(pub, layout, ['v1', 'v2']);
  deviceDir = join(work, 'device');
  await importTags(await createStore(deviceDir), layout, ['v1']);
  key = newKey();
  trust = trustOf(key);
  bundle = await createBundle(pub, { from: ['app:v1'], to: 'app:v2', channel: 'stable', release: 2, expires: EXPIRES, releaseKeys: [key], headerKeys: [key], created: CREATED, chunkSize: CHUNK });
  ferry = join(work, 'v2.ferry');
  await writeFerryFile(ferry, bundle.signed);
  repo = join(work, 'repo');
  await writeBundleDir(repo, bundle.signed);
  v2 = await expected(pub, 'app:v2');
  header = verifyHeader(bundle.signed.envelope, { trust });
  doc = decodeLimited(headerDocument(openEnvelope('header', bundle.signed.envelope, trust.header)), { maxStrLength: 1 << 20, maxBinLength: 1 << 26, maxArrayLength: 1 << 22, maxMapLength: 64 }, 'test') as Record<string, unknown>;
  console.log(`bad-input fixture: payload ${bundle.signed.payloadSize} bytes in ${header.chunks.length} chunks; layers ${header.layers.map((l) => `${l.mode} [${l.start}, ${l.end})`).join(', ')}`);
  shared = await cloneStore(deviceDir, join(work, 'shared-device'));
  sharedState = await storeState(shared);
  expect((await fsck(shared)).ok).toBe(true);
  // the fixture must be able to hit every case: several rebuilt layers, several chunks
  expect(header.layers.filter((l) => l.mode === 'rebuild').length).toBeGreaterThanOrEqual(2);
  expect(header.chunks.length).toBeGreaterThanOrEqual(3);
});

afterAll(async () => {
  await bundle?.dispose();
  if (work) await remove(work);
});

/** A fresh clone of the v1 device and its state before the case. */
async function device(from = deviceDir): Promise<{ store: Store; before: StoreState; dir: string }> {
  const dir = join(work, `case-${cases++}`);
  const store = await cloneStore(from, dir);
  return { store, before: await storeState(store), dir };
}

/** Awaits `p`, which must fail with a FerryError whose code is one of `codes`. */
async function refused(p: Promise<unknown>, ...codes: string[]): Promise<FerryError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${codes.join(' or ')}`).toBeDefined();
  expect(codes, (err as Error).message).toContain((err as FerryError).code);
  return err as FerryError;
}

const CONTENT_FILE = /^contents\/[0-9a-f]{2}\/[0-9a-f]{64}$/;
const PENDING_FILE = /^pending\//;

/**
 * Opens `path` and applies it to the shared v1 device; the apply must fail with `codes`. Every file
 * of the store is compared before and after (size and mtime): nothing may be removed or changed;
 * the only files a refusal may add are new contents, skeletons of the bundle's target layers (a
 * rebuilt layer verified against its diff_id is resume progress) and the bundle's pending-apply
 * directory, which only a retryable failure keeps. Abandoning the apply and running gc must then
 * give back exactly the files there were. The shared device is checked once more at the end.
 */
async function expectRefused(label: string, path: string | (() => Promise<BundleSource>), opts: Partial<ApplyOptions>, ...codes: string[]): Promise<FerryError> {
  const before = await treeSnapshot(shared.root);
  let headerBytes: Uint8Array | undefined;
  const attempt = async (): Promise<unknown> => {
    const source = typeof path === 'string' ? await openBundle(path) : await path();
    headerBytes = source.headerBytes;
    return applyBundle(shared, source, { trust, ...opts });
  };
  const err = await refused(attempt(), ...codes);
  const changes = treeChanges(before, await treeSnapshot(shared.root));
  expect(changes.removed, label).toEqual([]);
  expect(changes.changed, label).toEqual([]);
  const targets = new Set(header.layers.map((l) => `skeletons/${digestHex(l.diffId)}`));
  expect(changes.added.filter((p) => !CONTENT_FILE.test(p) && !targets.has(p) && !PENDING_FILE.test(p)), label).toEqual([]);
  if (!err.retryable) expect(changes.added.filter((p) => PENDING_FILE.test(p)), `${label}: a failure retrying cannot cure abandons the apply`).toEqual([]);
  if (changes.added.length > 0) {
    const state = await storeState(shared);
    expect({ refs: state.refs, channels: state.channels, blobs: state.blobs }, label).toEqual({ refs: sharedState.refs, channels: sharedState.channels, blobs: sharedState.blobs });
    expect((await fsck(shared)).problems, label).toEqual([]);
    if (headerBytes) await abandonApply(shared, bundleId(headerBytes));
    await gc(shared);
    expect(treeChanges(before, await treeSnapshot(shared.root)), `${label}: after abandon and gc`).toEqual({ added: [], removed: [], changed: [] });
  }
  return err;
}

/** A copy of a file with one byte XORed. */
async function flipped(src: string, dst: string, offset: number): Promise<void> {
  const bytes = await readFile(src);
  bytes[offset]! ^= 0x20;
  await writeFile(dst, bytes);
}

/** A copy of the repository directory. */
async function repoCopy(name: string): Promise<string> {
  const dir = join(work, name);
  await cp(repo, dir, { recursive: true });
  return dir;
}

function chunkFile(dir: string, i: number): string {
  return join(dir, 'chunks', digestHex(header.chunks[i]!));
}

/** Byte offset of the payload in the .ferry file. */
function payloadStart(): number {
  return FERRY_FILE_MAGIC.length + 4 + bundle.signed.envelope.length;
}

describe('the fixture bundle', () => {
  it('applies to the v1 device from both containers and gives the publisher image', async () => {
    for (const path of [ferry, repo]) {
      const { store } = await device();
      const r = await applyBundle(store, await openBundle(path), { trust });
      expect(r.manifestDigest).toBe(v2.manifestDigest);
      await verifyExport(store, 'app:v2', v2, work);
    }
  });
});

describe('signatures and trust', () => {
  it('refuses a bundle signed by an untrusted key: FERRY_ERR_SIGNATURE_INVALID', async () => {
    const other = newKey();
    await expectRefused('untrusted header and release key', ferry, { trust: trustOf(other) }, 'FERRY_ERR_SIGNATURE_INVALID');
    await expectRefused('untrusted release key', repo, { trust: trustOf(other, key) }, 'FERRY_ERR_SIGNATURE_INVALID');
    await expectRefused('untrusted header key', repo, { trust: trustOf(key, other) }, 'FERRY_ERR_SIGNATURE_INVALID');
  });

  it('refuses a header with one byte flipped inside its signed bytes (.ferry): FERRY_ERR_SIGNATURE_INVALID', async () => {
    const file = await readFile(ferry);
    const signed = openEnvelope('header', bundle.signed.envelope, trust.header);
    const at = file.indexOf(Buffer.from(signed.subarray(0, 64)));
    expect(at).toBeGreaterThan(12);
    // a byte in the middle of the signed document, and its very first and last bytes
    for (const off of [at + (signed.length >> 1), at, at + signed.length - 1]) {
      const path = join(work, `tampered-header-${off}.ferry`);
      await flipped(ferry, path, off);
      await expectRefused(`header byte ${off - at} flipped`, path, {}, 'FERRY_ERR_SIGNATURE_INVALID');
    }
  });

  it('refuses a tampered repository header: in place (name mismatch) and renamed to its new digest', async () => {
    const dir = await repoCopy('repo-tampered-header');
    const name = digestHex(bundle.signed.id);
    const file = join(dir, 'headers', name);
    const signed = openEnvelope('header', bundle.signed.envelope, trust.header);
    const at = Buffer.from(bundle.signed.envelope).indexOf(Buffer.from(signed.subarray(0, 64)));
    await flipped(file, file, at + 100);
    await expectRefused('repository header flipped in place', dir, {}, 'FERRY_ERR_BUNDLE_INVALID');
    // an attacker who rewrites a header also renames it: then the signature check catches it
    const bytes = await readFile(file);
    await remove(file);
    await writeFile(join(dir, 'headers', digestHex(bundleId(bytes))), bytes);
    await expectRefused('repository header flipped and renamed', dir, {}, 'FERRY_ERR_SIGNATURE_INVALID');
  });
});

describe('chunks', () => {
  it('refuses a chunk file with one byte flipped (first, middle and last chunk): FERRY_ERR_CHUNK_INVALID', async () => {
    const n = header.chunks.length;
    for (const i of [0, n >> 1, n - 1]) {
      const dir = await repoCopy(`repo-bad-chunk-${i}`);
      await flipped(chunkFile(dir, i), chunkFile(dir, i), 17);
      const err = await expectRefused(`chunk ${i} flipped`, dir, {}, 'FERRY_ERR_CHUNK_INVALID');
      expect(err.details?.index).toBe(i);
    }
  });

  it('refuses a byte flipped in the payload region of the .ferry file: FERRY_ERR_CHUNK_INVALID', async () => {
    const size = bundle.signed.payloadSize;
    for (const off of [0, size >> 1, size - 1]) {
      const path = join(work, `bad-payload-${off}.ferry`);
      await flipped(ferry, path, payloadStart() + off);
      const err = await expectRefused(`payload byte ${off} flipped`, path, {}, 'FERRY_ERR_CHUNK_INVALID');
      expect(err.details?.index).toBe(Math.floor(off / CHUNK));
    }
  });

  it('refuses a chunk file one byte short or one byte long: FERRY_ERR_CHUNK_INVALID', async () => {
    const last = header.chunks.length - 1;
    for (const [what, i, edit] of [
      ['short', 0, (b: Buffer) => b.subarray(0, b.length - 1)],
      ['long', 0, (b: Buffer) => Buffer.concat([b, Buffer.from([0])])],
      ['short', last, (b: Buffer) => b.subarray(0, b.length - 1)],
      ['long', last, (b: Buffer) => Buffer.concat([b, Buffer.from([0])])],
    ] as const) {
      const dir = await repoCopy(`repo-${what}-chunk-${i}`);
      await writeFile(chunkFile(dir, i), edit(await readFile(chunkFile(dir, i))));
      await expectRefused(`chunk ${i} one byte ${what}`, dir, {}, 'FERRY_ERR_CHUNK_INVALID');
    }
  });

  it('refuses a repository missing a chunk: FERRY_ERR_CHUNK_MISSING', async () => {
    const dir = await repoCopy('repo-missing-chunk');
    await remove(chunkFile(dir, header.chunks.length - 1));
    await expectRefused('last chunk missing', dir, {}, 'FERRY_ERR_CHUNK_MISSING');
  });
});

describe('truncated and oversized containers', () => {
  it('refuses a .ferry file cut inside its header, its prefix or its payload: FERRY_ERR_BUNDLE_TRUNCATED', async () => {
    const full = (await readFile(ferry)).length;
    const env = bundle.signed.envelope.length;
    for (const [what, len] of [
      ['in the magic', 5],
      ['in the length field', 10],
      ['right after the prefix', 12],
      ['in the header', 12 + (env >> 1)],
      ['one byte into the payload', payloadStart() + 1],
      ['in the payload', payloadStart() + (bundle.signed.payloadSize >> 1)],
      ['one byte short', full - 1],
    ] as const) {
      const path = join(work, `cut-${len}.ferry`);
      await cp(ferry, path);
      await truncate(path, len);
      await expectRefused(`.ferry cut ${what}`, path, {}, 'FERRY_ERR_BUNDLE_TRUNCATED');
    }
  });

  it('refuses trailing bytes after the payload and a file that is not a bundle: FERRY_ERR_BUNDLE_INVALID', async () => {
    const long = join(work, 'long.ferry');
    await writeFile(long, Buffer.concat([await readFile(ferry), Buffer.from('x')]));
    await expectRefused('.ferry with a trailing byte', long, {}, 'FERRY_ERR_BUNDLE_INVALID');
    const junk = join(work, 'junk.ferry');
    await writeFile(junk, Buffer.from('PK\x03\x04 this is a zip file, not a ferry bundle'));
    await expectRefused('not a .ferry file', junk, {}, 'FERRY_ERR_BUNDLE_INVALID');
  });

  it('refuses a header over its byte cap before reading it: FERRY_ERR_LIMIT_EXCEEDED', async () => {
    // .ferry: the declared length alone is over the cap (the file is short: the cap is checked first)
    const path = join(work, 'huge-header.ferry');
    const prefix = Buffer.alloc(12);
    FERRY_FILE_MAGIC.copy(prefix);
    prefix.writeUInt32BE(HEADER_MAX_BYTES + 1, 8);
    await writeFile(path, Buffer.concat([prefix, Buffer.from(bundle.signed.envelope)]));
    await expectRefused('.ferry declaring a header over the cap', path, {}, 'FERRY_ERR_LIMIT_EXCEEDED');
    prefix.writeUInt32BE(0xffffffff, 8);
    await writeFile(path, prefix);
    await expectRefused('.ferry declaring a 4 GiB header', path, {}, 'FERRY_ERR_LIMIT_EXCEEDED');
    // repository: a header file one byte over the cap (sparse, so the test writes almost nothing)
    const dir = await repoCopy('repo-huge-header');
    const huge = join(dir, 'headers', digestHex(bundle.signed.id));
    await truncate(huge, HEADER_MAX_BYTES + 1);
    await expectRefused('repository header over the cap', dir, {}, 'FERRY_ERR_LIMIT_EXCEEDED');
    // and an envelope handed over directly
    await expectRefused('envelope over the cap', async () => ({ where: 'memory', headerBytes: new Uint8Array(HEADER_MAX_BYTES + 1), chunks: () => { throw new Error('must not be reached'); } }), {}, 'FERRY_ERR_LIMIT_EXCEEDED');
  });
});

/** msgpack map built by hand: each value encoded normally unless given as raw bytes. */
function rawMap(fields: [string, unknown | { raw: Uint8Array }][]): Buffer {
  const parts: Uint8Array[] = [Buffer.from([0x80 | fields.length])];
  for (const [k, v] of fields) {
    parts.push(encodeMsgpack(k));
    parts.push(v && typeof v === 'object' && 'raw' in v ? (v as { raw: Uint8Array }).raw : encodeMsgpack(v));
  }
  return Buffer.concat(parts);
}

/** bin32 whose declared length is `declared` but which carries only `data`. */
function lyingBin(data: Uint8Array, declared: number): { raw: Uint8Array } {
  const h = Buffer.alloc(5);
  h[0] = 0xc6;
  h.writeUInt32BE(declared, 1);
  return { raw: Buffer.concat([h, data]) };
}

/** The fixture's header document fields, in order, with some replaced or removed. */
function docFields(changes: Record<string, unknown | { raw: Uint8Array } | undefined>, order?: string[]): [string, unknown][] {
  const keys = order ?? Object.keys(doc);
  return keys.filter((k) => !(k in changes) || changes[k] !== undefined).map((k) => [k, k in changes ? changes[k] : doc[k]]);
}

/** Writes a .ferry file whose header document is `docBytes`, signed by the trusted key. */
async function signedFerry(name: string, docBytes: Uint8Array, signer: PrivateKey = key): Promise<string> {
  const path = join(work, `${name}.ferry`);
  const envelope = signEnvelope('header', docBytes, [signer]);
  await writeFerryFile(path, { ...bundle.signed, envelope, id: bundleId(envelope) });
  return path;
}

describe('signed headers that lie (the signature passes, the body is malformed)', () => {
  it('refuses msgpack whose lengths run past the data: FERRY_ERR_MSGPACK_INVALID', async () => {
    const manifest = doc.manifest as Uint8Array;
    const lies: [string, Buffer][] = [
      // the last field is a bin declaring 1000 bytes more than there are
      ['bin longer than the data (last field)', rawMap(docFields({ manifest: undefined }).concat([['manifest', lyingBin(manifest, manifest.length + 1000)]]))],
      // a bin declaring 4 GiB - 1
      ['bin of 4 GiB', rawMap(docFields({ config: lyingBin(doc.config as Uint8Array, 0xffffffff) }))],
      // an array declaring 2^31 elements (over the decoder limit) and one declaring 1000 of 2
      ['array of 2^31 elements', rawMap(docFields({ baseline: { raw: Buffer.from([0xdd, 0x80, 0, 0, 0]) } }))],
      ['array of 1000 elements holding 1', rawMap(docFields({ baseline: { raw: Buffer.concat([Buffer.from([0xdc, 0x03, 0xe8]), encodeMsgpack((doc.baseline as unknown[])[0])]) } }))],
      // a string declaring more bytes than the document holds
      ['str longer than the data', rawMap(docFields({ created: { raw: Buffer.concat([Buffer.from([0xd9, 0xff]), Buffer.from('soon')]) } }))],
      // a map declaring 65535 entries
      ['map of 65535 entries', Buffer.concat([Buffer.from([0xde, 0xff, 0xff]), rawMap(docFields({})).subarray(1)])],
      // cut in the middle, and with trailing bytes after the document
      ['document cut in half', Buffer.from(encodeMsgpack(doc)).subarray(0, 200)],
      ['trailing bytes after the document', Buffer.concat([encodeMsgpack(doc), Buffer.from([0x01])])],
      ['never-used type byte 0xc1', Buffer.from([0xc1])],
      ['an ext type', Buffer.from([0xd4, 0x01, 0x00])],
    ];
    for (const [what, bytes] of lies) {
      await expectRefused(`signed header: ${what}`, await signedFerry(`lie-${what.replace(/\W+/g, '-')}`, bytes), {}, 'FERRY_ERR_MSGPACK_INVALID');
    }
  });

  it('refuses a compressed header (format 4) whose frame lies about its size, before decompressing it', async () => {
    const inner = encodeMsgpack(doc);
    const wrap = (z: Uint8Array): Uint8Array => encodeMsgpack({ type: 'ferry-bundle', v: 4, z });
    // declares 2^40 bytes: refused from the frame header, nothing allocated
    const huge = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xc0, 0x50, 0, 0, 0, 0, 0, 1, 0, 0, 0x01, 0, 0]);
    await expectRefused('compressed header declaring 2^40 bytes', await signedFerry('z-huge', wrap(huge)), {}, 'FERRY_ERR_LIMIT_EXCEEDED');
    // a valid frame of the document followed by one byte
    const trailing = Buffer.concat([zstdCompress(inner, { compressionLevel: 19 }), Buffer.from([0])]);
    await expectRefused('compressed header with a byte after its frame', await signedFerry('z-trailing', wrap(trailing)), {}, 'FERRY_ERR_BUNDLE_INVALID');
    // the differ's own wrapper of the same document applies (the fixture bundle is one)
    expect(Buffer.from(openEnvelope('header', bundle.signed.envelope, trust.header)).subarray(0, 20).includes(Buffer.from('ferry-bundle'))).toBe(true);
  });

  it('refuses a bin that claims a few bytes too many in the middle of the document', async () => {
    const rel = doc.release as Uint8Array;
    const bytes = rawMap(docFields({ release: lyingBin(rel, rel.length + 10) }));
    await expectRefused('signed header: mid-document bin 10 bytes too long', await signedFerry('lie-mid-bin', bytes), {}, 'FERRY_ERR_MSGPACK_INVALID', 'FERRY_ERR_BUNDLE_INVALID');
  });

  it('refuses wrong types: FERRY_ERR_MSGPACK_INVALID', async () => {
    const payload = doc.payload as unknown[];
    const layers = doc.layers as unknown[][];
    const wrong: [string, Record<string, unknown>][] = [
      ['payload size as a string', { payload: [String(payload[0]), payload[1], payload[2]] }],
      ['chunk size negative', { payload: [payload[0], -1, payload[2]] }],
      ['payload size fractional', { payload: [(payload[0] as number) + 0.5, payload[1], payload[2]] }],
      ['chunk digest 31 bytes', { payload: [payload[0], payload[1], (payload[2] as Uint8Array[]).map((c) => c.subarray(0, 31))] }],
      ['chunk digest as a hex string', { payload: [payload[0], payload[1], (payload[2] as Uint8Array[]).map((c) => Buffer.from(c).toString('hex'))] }],
      ['layer size as a string', { layers: layers.map((l) => [l[0], String(l[1]), ...l.slice(2)]) }],
      ['layer mode unknown', { layers: layers.map((l) => [l[0], l[1], 7, ...l.slice(3)]) }],
      ['layer as a map', { layers: layers.map((l) => ({ diffId: l[0] })) }],
      ['release envelope as a string', { release: 'trust me' }],
      ['manifest as a string', { manifest: Buffer.from(doc.manifest as Uint8Array).toString('utf8') }],
      ['baseline digest as a number', { baseline: [1, 2, 3] }],
      ['created as a float', { created: 1.5 }],
      ['created negative', { created: -5 }],
      ['payload as a map', { payload: { size: payload[0] } }],
    ];
    for (const [what, change] of wrong) {
      await expectRefused(`signed header: ${what}`, await signedFerry(`type-${what.replace(/\W+/g, '-')}`, rawMap(docFields(change))), {}, 'FERRY_ERR_MSGPACK_INVALID');
    }
    // the document itself not a map
    await expectRefused('signed header: an array', await signedFerry('type-array', encodeMsgpack(Object.values(doc))), {}, 'FERRY_ERR_MSGPACK_INVALID');
  });

  it('refuses missing fields: FERRY_ERR_MSGPACK_INVALID, or FERRY_ERR_BUNDLE_INVALID for the type tag', async () => {
    for (const field of ['release', 'manifest', 'config', 'baseline', 'layers', 'payload', 'need', 'created']) {
      await expectRefused(`signed header without ${field}`, await signedFerry(`missing-${field}`, rawMap(docFields({ [field]: undefined }))), {}, 'FERRY_ERR_MSGPACK_INVALID');
    }
    await expectRefused('signed header without its type tag', await signedFerry('missing-type', rawMap(docFields({ type: undefined }))), {}, 'FERRY_ERR_BUNDLE_INVALID');
    await expectRefused('signed header of another type', await signedFerry('other-type', rawMap(docFields({ type: 'ferry-release' }))), {}, 'FERRY_ERR_BUNDLE_INVALID');
    await expectRefused('signed header of format version 5 (a later one)', await signedFerry('version-5', rawMap(docFields({ v: 5 }))), {}, 'FERRY_ERR_BUNDLE_VERSION');
    // version 4 is the compressed wrapper (docs/format.md section 4.1): a plain document claiming it has the wrong fields
    await expectRefused('a plain header document claiming version 4', await signedFerry('version-4', rawMap(docFields({ v: 4 }))), {}, 'FERRY_ERR_BUNDLE_INVALID');
  });

  it('refuses headers whose fields disagree with each other: FERRY_ERR_BUNDLE_INVALID', async () => {
    const payload = doc.payload as unknown[];
    const chunks = payload[2] as Uint8Array[];
    const layers = doc.layers as unknown[][];
    const otherConfig = Buffer.concat([Buffer.from(doc.config as Uint8Array), Buffer.from(' ')]);
    const bad: [string, Record<string, unknown>][] = [
      ['one chunk short', { payload: [payload[0], payload[1], chunks.slice(1)] }],
      ['chunk size 0', { payload: [payload[0], 0, chunks] }],
      ['a layer range past the payload', { layers: layers.map((l, i) => (i === layers.length - 1 ? [l[0], l[1], l[2], l[3], (payload[0] as number) + 1, l[5]] : l)) }],
      ['a layer range ending before it starts', { layers: layers.map((l, i) => (i === 0 ? [l[0], l[1], 1, 10, 5, l[5]] : l)) }],
      ['a config the release statement does not name', { config: otherConfig }],
      ['a layer plan that is not the manifest', { layers: layers.slice(1) }],
      ['layers in another order', { layers: [...layers].reverse() }],
    ];
    for (const [what, change] of bad) {
      await expectRefused(`signed header: ${what}`, await signedFerry(`inconsistent-${what.replace(/\W+/g, '-')}`, rawMap(docFields(change))), {}, 'FERRY_ERR_BUNDLE_INVALID');
    }
  });

  it('refuses a header claiming more room than its layers can use, before anything: FERRY_ERR_BUNDLE_INVALID', async () => {
    // (a plausible need over the disk's free space is FERRY_ERR_DISK_FULL: test/full-disk.test.ts)
    await expectRefused('signed header: need of 2^53 - 1 bytes', await signedFerry('need-huge', rawMap(docFields({ need: Number.MAX_SAFE_INTEGER }))), {}, 'FERRY_ERR_BUNDLE_INVALID');
  });

  it('refuses a malformed release statement signed by the trusted release key', async () => {
    const r = header.release;
    const statements: [string, Uint8Array, string][] = [
      ['without a channel', encodeMsgpack({ type: 'ferry-release', v: 1, release: r.release, ref: r.ref, manifest: r.manifest, config: r.config, expires: r.expires, created: r.created }), 'FERRY_ERR_MSGPACK_INVALID'],
      ['release as a string', encodeMsgpack({ type: 'ferry-release', v: 1, channel: r.channel, release: '2', ref: r.ref, manifest: r.manifest, config: r.config, expires: r.expires, created: r.created }), 'FERRY_ERR_MSGPACK_INVALID'],
      ['manifest not a digest', encodeMsgpack({ type: 'ferry-release', v: 1, channel: r.channel, release: r.release, ref: r.ref, manifest: 'latest', config: r.config, expires: r.expires, created: r.created }), 'FERRY_ERR_MSGPACK_INVALID'],
      ['cut short', encodeRelease(r).subarray(0, 40), 'FERRY_ERR_MSGPACK_INVALID'],
      // (3 deep where a release statement is 1: refused by the depth cap, before its type tag)
      ['a header document in its place', encodeMsgpack(doc), 'FERRY_ERR_MSGPACK_INVALID'],
      ['naming another manifest', encodeRelease({ ...r, manifest: `sha256:${'0'.repeat(64)}` as Digest }), 'FERRY_ERR_BUNDLE_INVALID'],
      ['with a bad ref', encodeRelease({ ...r, ref: 'no tag here!' }), 'FERRY_ERR_REF_INVALID'],
    ];
    for (const [what, statement, code] of statements) {
      const releaseEnvelope = signEnvelope('release', statement, [key]);
      await expectRefused(`release statement ${what}`, await signedFerry(`release-${what.replace(/\W+/g, '-')}`, rawMap(docFields({ release: releaseEnvelope }))), {}, code);
    }
    // a release statement signed for the header role (domain separation across the two roles)
    const crossRole = signEnvelope('header', encodeRelease(r), [key]);
    await expectRefused('release statement signed as a header', await signedFerry('release-cross-role', rawMap(docFields({ release: crossRole }))), {}, 'FERRY_ERR_SIGNATURE_INVALID');
  });
});

describe('payloads that lie (valid chunks, malformed ops)', () => {
  /** A signed bundle for v2 whose first rebuilt layer's frame is `frame`, other layers unchanged. */
  const withFrame = (name: string, frame: Uint8Array, version?: number): Promise<string> => replaceFrame({ header, payloadFile: bundle.signed.payloadFile, key, chunkSize: CHUNK, work }, name, frame, version);
  const frame = (...records: unknown[]): Buffer => zstdCompress(Buffer.concat(records.map((r) => encodeMsgpack(r))));

  /**
   * A zstd bomb that is a well-formed op stream: one literal file of 64 MiB of zeros, its tar
   * header saying so, a few KiB compressed. Only the cap on a frame's decoded size stops it.
   */
  function bomb(): Buffer {
    const size = 64 * 1024 * 1024;
    const zeros = Buffer.alloc(PAYLOAD_PART);
    const parts = Array.from({ length: size / PAYLOAD_PART }, () => zeros);
    const records = [[1, tarHeader({ name: 'bomb.bin', size }), [3, size]], ...parts, [2, Buffer.alloc(1024)]];
    // a window the applier accepts (2^20), so the frame gets past the window check
    return zstdCompress(Buffer.concat(records.map((r) => encodeMsgpack(r))), { compressionLevel: 3, windowLog: 20, checksumFlag: true });
  }

  it('refuses malformed op streams: FERRY_ERR_BUNDLE_INVALID, FERRY_ERR_ZSTD_CORRUPT or FERRY_ERR_LIMIT_EXCEEDED', async () => {
    const cases: [string, Uint8Array, string[]][] = [
      ['a frame that is not zstd', Buffer.from('definitely not a zstd frame'), ['FERRY_ERR_ZSTD_CORRUPT', 'FERRY_ERR_BUNDLE_INVALID']],
      ['an empty frame', Buffer.alloc(0), ['FERRY_ERR_BUNDLE_INVALID', 'FERRY_ERR_ZSTD_CORRUPT']],
      ['no tail record', frame([0, 0, 1]), ['FERRY_ERR_BUNDLE_INVALID']],
      ['an unknown op', frame([9, 1, 2], [2, Buffer.alloc(1024)]), ['FERRY_ERR_BUNDLE_INVALID']],
      ['a run past the baseline', frame([0, 0, 1e9], [2, Buffer.alloc(1024)]), ['FERRY_ERR_BUNDLE_INVALID']],
      ['a copy of a baseline entry that does not exist', frame([1, 0, [0, 1e9]], [2, Buffer.alloc(1024)]), ['FERRY_ERR_BUNDLE_INVALID']],
      ['a back reference before the layer start', frame([1, 0, [1, 5]], [2, Buffer.alloc(1024)]), ['FERRY_ERR_BUNDLE_INVALID']],
      ['a literal longer than its data', frame([1, 0, [3, 100]], Buffer.alloc(10), [2, Buffer.alloc(1024)]), ['FERRY_ERR_BUNDLE_INVALID']],
      ['a literal header that is not tar', frame([1, Buffer.alloc(512, 0x41), null], [2, Buffer.alloc(1024)]), ['FERRY_ERR_BUNDLE_INVALID', 'FERRY_ERR_TAR_BAD_HEADER']],
      ['records after the tail', frame([2, Buffer.alloc(1024)], [0, 0, 1]), ['FERRY_ERR_BUNDLE_INVALID']],
      ['a tail that makes the wrong layer', frame([2, Buffer.alloc(1024)]), ['FERRY_ERR_DIGEST_MISMATCH', 'FERRY_ERR_BUNDLE_INVALID']],
    ];
    for (const [what, bytes, codes] of cases) {
      await expectRefused(`payload: ${what}`, await withFrame(`ops-${what.replace(/\W+/g, '-')}`, bytes), {}, ...codes);
    }
  });

  it('refuses hostile reference sets (format v2 GROUP) before reading a body or decoding the frame', async () => {
    // baseline entries of the bundle's table: one with a body over 4 KiB, one without a body
    const table = await loadBaseline(pub, header.baseline);
    const withBody = table.findIndex((e) => e.digest !== undefined && e.size > 4096);
    const bodiless = table.findIndex((e) => e.digest === undefined);
    expect(withBody).toBeGreaterThanOrEqual(0);
    expect(bodiless).toBeGreaterThanOrEqual(0);
    // frame bytes that are not zstd: reading them would fail with FERRY_ERR_ZSTD_CORRUPT, not the code asserted
    const junk = Buffer.alloc(64, 0x5a);
    const group = (set: number[], sizes = [100]): Buffer => frame([1, tarHeader({ name: 'grouped.js', size: sizes[0]! }), [6, packU32(set), packU32(sizes), junk.length]], junk, [2, Buffer.alloc(1024)]);
    const cases: [string, Buffer, Partial<ApplyOptions>, string][] = [
      ['a set naming an entry twice', group([withBody, withBody]), {}, 'FERRY_ERR_BUNDLE_INVALID'],
      ['a set naming an entry past the baseline', group([table.length + 5]), {}, 'FERRY_ERR_BUNDLE_INVALID'],
      ['a set naming an entry without a body', group([bodiless]), {}, 'FERRY_ERR_BUNDLE_INVALID'],
      ['a set over the device\'s reference cap', group([withBody]), { maxPatchReference: 4096 }, 'FERRY_ERR_LIMIT_EXCEEDED'],
      ['members past the layer\'s size', group([withBody], [100, 2 ** 31]), {}, 'FERRY_ERR_LIMIT_EXCEEDED'],
    ];
    for (const [what, bytes, opts, code] of cases) {
      await expectRefused(`group: ${what}`, await withFrame(`group-${what.replace(/\W+/g, '-')}`, bytes), opts, code);
    }
  });

  it('refuses hostile segment tables (format v3 SEGMENTED) before reading the reference or decoding a frame', async () => {
    const table = await loadBaseline(pub, header.baseline);
    const withBody = table.findIndex((e) => e.digest !== undefined && e.size > 4096);
    const bodiless = table.findIndex((e) => e.digest === undefined);
    const refSize = table[withBody]!.size;
    // frames that are not zstd: decoding one would fail with FERRY_ERR_ZSTD_CORRUPT, not the code asserted
    const junk = Buffer.alloc(64, 0x5a);
    const seg = (offset: number, length: number, size: number, frame = 32): Segment => ({ offset, length, size, frame });
    const segmented = (segments: Segment[], index = withBody, bytes = junk): Buffer => {
      const size = segments.reduce((a, x) => a + x.size, 0);
      return frame([1, tarHeader({ name: 'big.so', size }), [8, index, size, packSegments(segments), bytes.length]], bytes, [2, Buffer.alloc(1024)]);
    };
    const two = [seg(0, 1024, 50), seg(512, 1024, 50)];
    const cases: [string, Buffer, Partial<ApplyOptions>, string][] = [
      ['a window past the end of its reference', segmented([seg(0, 1024, 50), seg(refSize - 100, 101, 50)]), {}, 'FERRY_ERR_BUNDLE_INVALID'],
      ['windows out of order', segmented([seg(512, 1024, 50), seg(0, 1024, 50)]), {}, 'FERRY_ERR_BUNDLE_INVALID'],
      ['a reference entry past the baseline', segmented(two, table.length + 5), {}, 'FERRY_ERR_BUNDLE_INVALID'],
      ['a reference entry without a body', segmented(two, bodiless), {}, 'FERRY_ERR_BUNDLE_INVALID'],
      ['segments that do not add up to the entry', frame([1, tarHeader({ name: 'big.so', size: 101 }), [8, withBody, 101, packSegments(two), junk.length]], junk, [2, Buffer.alloc(1024)]), {}, 'FERRY_ERR_BUNDLE_INVALID'],
      ['frames that do not add up to the op', segmented([seg(0, 1024, 50, 10), seg(512, 1024, 50, 10)]), {}, 'FERRY_ERR_BUNDLE_INVALID'],
      ['a ragged segment table', frame([1, tarHeader({ name: 'big.so', size: 100 }), [8, withBody, 100, Buffer.alloc(20), junk.length]], junk, [2, Buffer.alloc(1024)]), {}, 'FERRY_ERR_BUNDLE_INVALID'],
      ["a window over the device's reference cap", segmented([seg(0, 4097, 50), seg(0, 4097, 50)]), { maxPatchReference: 4096 }, 'FERRY_ERR_LIMIT_EXCEEDED'],
      ['a frame over its segment\'s cap', segmented([seg(0, 1024, 1, 1026), seg(0, 1024, 1, 1026)], withBody, Buffer.alloc(2052, 0x5a)), {}, 'FERRY_ERR_LIMIT_EXCEEDED'],
      ['more segments than SEGMENTS_MAX', segmented(Array.from({ length: SEGMENTS_MAX + 1 }, () => seg(0, 1024, 1, 1)), withBody, Buffer.alloc(SEGMENTS_MAX + 1, 0x5a)), {}, 'FERRY_ERR_LIMIT_EXCEEDED'],
    ];
    for (const [what, bytes, opts, code] of cases) {
      await expectRefused(`segmented: ${what}`, await withFrame(`segmented-${what.replace(/\W+/g, '-')}`, bytes, SEGMENTED_FORMAT_VERSION), opts, code);
    }
    // a well-formed segmented body in a header that declares version 2 (an applier of version 2 would not know it)
    expect(header.version).toBe(2);
    await expectRefused('segmented: a version 2 header', await withFrame('segmented-in-v2', segmented(two)), {}, 'FERRY_ERR_BUNDLE_INVALID');
  });

  it('refuses a zstd bomb with FERRY_ERR_LIMIT_EXCEEDED, stopped by the layer size and frame caps', async () => {
    const frameBytes = bomb();
    expect(frameBytes.length).toBeLessThan(64 * 1024); // 64 MiB decoded, a few KiB on the link
    await expectRefused('payload: a zstd bomb', await withFrame('ops-zstd-bomb', frameBytes), {}, 'FERRY_ERR_LIMIT_EXCEEDED');
  });
});

describe('baseline', () => {
  it('refuses a device without v1, naming the missing layers: FERRY_ERR_BASELINE_MISSING', async () => {
    const dir = join(work, 'empty-device');
    const store = await createStore(dir);
    const before = await storeState(store);
    const err = await refused(applyBundle(store, await openBundle(ferry), { trust }), 'FERRY_ERR_BASELINE_MISSING');
    const missing = err.details?.missing as Digest[];
    expect(new Set(missing)).toEqual(new Set(header.baseline));
    for (const d of header.baseline) expect(err.message).toContain(d);
    await expectUnchanged(store, before, 'empty device');
  });

  it('names exactly the one baseline layer a device lacks', async () => {
    const { store, dir } = await device();
    const gone = header.baseline[header.baseline.length - 1]!;
    await remove(join(dir, 'skeletons', digestHex(gone)));
    await store.deleteRef('app:v1');
    const before = await storeState(store);
    const err = await refused(applyBundle(store, await openBundle(repo), { trust }), 'FERRY_ERR_BASELINE_MISSING');
    expect(err.details?.missing).toEqual([gone]);
    expect(err.message).toContain(gone);
    expect(await storeState(store)).toEqual(before);
  });

  /** The baseline entries the payload uses, by how: whole runs, bodies copied or patched. */
  async function usedBaseline(store: Store): Promise<{ run: Set<number>; copy: Set<number>; patch: Set<number> }> {
    const table = await loadBaseline(store, header.baseline);
    const source = await openBundle(ferry);
    const chunks = source.chunks(header);
    const used = { run: new Set<number>(), copy: new Set<number>(), patch: new Set<number>() };
    for (const l of header.layers.filter((x) => x.mode === 'rebuild')) {
      for await (const op of readOps(payloadRange(header, chunks, l.start, l.end), 4 * l.size + (1 << 20))) {
        if (op.op === 'run') for (let i = op.start; i < op.start + op.count; i++) if (table[i]!.digest) used.run.add(i);
        if (op.op === 'entry') {
          const b = op.body;
          if (b.kind === 'same' && op.header.kind !== 'literal') used.run.add(op.header.index);
          if (b.kind === 'copy') used.copy.add(b.index);
          if ('data' in b) for await (const _ of b.data) { /* consume in order */ }
          if (b.kind === 'patch' || b.kind === 'bsdiff') used.patch.add(b.index);
        }
      }
    }
    return used;
  }

  it('detects a corrupted baseline content used by runs, copies and patches: never a wrong image', async () => {
    const used = await usedBaseline(shared);
    const table = await loadBaseline(shared, header.baseline);
    expect(used.run.size).toBeGreaterThan(0);
    expect(used.patch.size).toBeGreaterThan(0);
    const picks: [string, number][] = [
      ['run/same body', [...used.run][0]!],
      ['run/same body (last)', [...used.run].at(-1)!],
      ['patch reference', [...used.patch][0]!],
    ];
    if (used.copy.size > 0) picks.push(['copied body', [...used.copy][0]!]);
    const seen: string[] = [];
    for (const [what, index] of picks) {
      const digest = table[index]!.digest!;
      for (const how of ['byte flipped', 'other valid content'] as const) {
        const { store, before } = await device();
        const path = store.contentPath(digest);
        if (how === 'byte flipped') {
          const bytes = await readFile(path);
          await flipped(path, path, bytes.length >> 1);
        } else {
          await writeFile(path, zstdCompress(Buffer.from(`not the content of ${table[index]!.path}\n`)));
        }
        const label = `${what} ${table[index]!.path}: ${how}`;
        const err = await refused(applyBundle(store, await openBundle(ferry), { trust }), 'FERRY_ERR_BASELINE_MISSING', 'FERRY_ERR_OBJECT_CORRUPT');
        seen.push(`${label}: ${err.code}`);
        const after = await storeState(store);
        expect(after.refs, label).toEqual(before.refs);
        expect(after.channels, label).toEqual(before.channels);
        expect(after.skeletons.filter((s) => s.startsWith('.')), label).toEqual([]);
      }
    }
    console.log(`corrupted baseline contents:\n  ${seen.join('\n  ')}`);
  });
});

describe('release, expiry and channel', () => {
  it('refuses the same release again and a lower one: FERRY_ERR_BUNDLE_ROLLBACK', async () => {
    const { store, dir } = await device();
    await applyBundle(store, await openBundle(ferry), { trust });
    const installed = await storeState(store);
    expect(Object.keys(installed.channels)).toHaveLength(1);
    const again = await refused(applyBundle(store, await openBundle(repo), { trust }), 'FERRY_ERR_BUNDLE_ROLLBACK');
    expect(again.details).toEqual({ installed: 2, offered: 2 });
    const r1 = await createBundle(pub, { from: ['app:v1'], to: 'app:v2', channel: 'stable', release: 1, expires: EXPIRES, releaseKeys: [key], headerKeys: [key], created: CREATED, chunkSize: CHUNK });
    try {
      const p = join(work, 'release-1.ferry');
      await writeFerryFile(p, r1.signed);
      const lower = await refused(applyBundle(store, await openBundle(p), { trust }), 'FERRY_ERR_BUNDLE_ROLLBACK');
      expect(lower.details).toEqual({ installed: 2, offered: 1 });
      await expectUnchanged(store, installed, 'after refused rollbacks');
      // a rollback on a copy of this device also leaves it alone (state files compared byte for byte)
      const copy = await cloneStore(dir, `${dir}-copy`);
      await refused(applyBundle(copy, await openBundle(p), { trust }), 'FERRY_ERR_BUNDLE_ROLLBACK');
      await expectUnchanged(copy, installed, 'copy after refused rollback');
    } finally {
      await r1.dispose();
    }
  });

  it('refuses an expired header (at and after its expiry): FERRY_ERR_BUNDLE_EXPIRED', async () => {
    await expectRefused('expired: now == expires', ferry, { now: EXPIRES }, 'FERRY_ERR_BUNDLE_EXPIRED');
    await expectRefused('expired: a year later', repo, { now: EXPIRES + 365 * 86400 }, 'FERRY_ERR_BUNDLE_EXPIRED');
    // one second before expiry it still applies
    const { store } = await device();
    await applyBundle(store, await openBundle(ferry), { trust, now: EXPIRES - 1 });
  });

  it('refuses a header for another channel: FERRY_ERR_BUNDLE_CHANNEL', async () => {
    const err = await expectRefused('channel beta asked, stable offered', ferry, { channel: 'beta' }, 'FERRY_ERR_BUNDLE_CHANNEL');
    expect(err.message).toContain('stable');
    await expectRefused('channel "" asked', repo, { channel: '' }, 'FERRY_ERR_BUNDLE_CHANNEL');
    const { store } = await device();
    await applyBundle(store, await openBundle(ferry), { trust, channel: 'stable' });
  });
});

describe('envelopes', () => {
  it('refuses malformed envelopes before any signature check: FERRY_ERR_MSGPACK_INVALID', async () => {
    const env = decodeLimited(bundle.signed.envelope, { maxStrLength: 256, maxBinLength: 1 << 26, maxArrayLength: 64, maxMapLength: 4 }, 'test') as { signed: Uint8Array; signatures: unknown[] };
    const bad: [string, Uint8Array][] = [
      ['signatures as a map', encodeMsgpack({ signed: env.signed, signatures: { a: 1 } })],
      ['a signature as a string', encodeMsgpack({ signed: env.signed, signatures: ['sig'] })],
      ['signed as a string', encodeMsgpack({ signed: 'hello', signatures: env.signatures })],
      ['an envelope of 100 signatures', encodeMsgpack({ signed: env.signed, signatures: Array.from({ length: 100 }, () => env.signatures[0]) })],
      ['an empty file', new Uint8Array(0)],
    ];
    for (const [what, bytes] of bad) {
      await expectRefused(`envelope: ${what}`, async () => ({ where: 'memory', headerBytes: bytes, chunks: () => { throw new Error('must not be reached'); } }), {}, 'FERRY_ERR_MSGPACK_INVALID');
    }
    // no signatures at all is a signature failure, not a shape failure
    await expectRefused('envelope without signatures', async () => ({ where: 'memory', headerBytes: encodeMsgpack({ signed: env.signed, signatures: [] }), chunks: () => { throw new Error('must not be reached'); } }), {}, 'FERRY_ERR_SIGNATURE_INVALID');
  });
});

describe('the shared device after every refusal', () => {
  it('still holds exactly v1, passes fsck and has no temp files', async () => {
    await expectUnchanged(shared, sharedState, 'shared device at the end');
    expect(sharedState.refs.map((r) => r.ref)).toEqual(['app:v1']);
    expect(sharedState.channels).toEqual({});
  });
});
