/**
 * Compressed bundle headers (docs/format.md section 4.1): the signed bytes of a version 4 header
 * are `{type: "ferry-bundle", v: 4, z: <one zstd frame holding the header document>}`. The
 * signature covers those bytes and is checked before anything is decompressed; the frame must
 * declare its size, at most HEADER_MAX_BYTES, checked before any allocation, and hold nothing else.
 */
import { describe, expect, it } from 'vitest';
import {
  COMPRESSED_HEADER_VERSION,
  HEADER_MAX_BYTES,
  compressHeaderDocument,
  decodeLimited,
  encodeHeader,
  encodeMsgpack,
  encodeRelease,
  generateKeyPair,
  headerDocument,
  parsePrivateKey,
  rolePolicy,
  sha256,
  signEnvelope,
  verifyHeader,
  zstdCompress,
  type PrivateKey,
} from '../src/index.js';
import { errorCode } from '@ferry/test-support';

const NOW = 1_800_000_000;
const key = parsePrivateKey(generateKeyPair().privatePem);
const trust = { release: rolePolicy([key.publicKey]), header: rolePolicy([key.publicKey]) };

/** A small but complete header document: a config and manifest of some JSON, three chunks. */
function headerDoc(): Uint8Array {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] }, rootfs: { type: 'layers', diff_ids: [] } }));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length }, layers: [] }));
  const release = { channel: 'stable', release: 7, ref: 'app:v2', manifest: sha256(manifest), config: sha256(config), expires: NOW + 86400, created: NOW - 60 };
  const chunks = [0, 1, 2].map((i) => sha256(Buffer.from(`chunk ${i}`)));
  return encodeHeader({ releaseEnvelope: signEnvelope('release', encodeRelease(release), [key]), manifest, config, baseline: [], layers: [], payloadSize: 3000, chunkSize: 1024, chunks, need: 0, created: NOW - 60 });
}

const doc = headerDoc();

/** The signed bytes of a version 4 header whose `z` is `frame` (any bytes). */
function wrapper(z: unknown, extra: Record<string, unknown> = {}): Uint8Array {
  return encodeMsgpack({ type: 'ferry-bundle', v: COMPRESSED_HEADER_VERSION, z, ...extra });
}

function verify(signed: Uint8Array, signer: PrivateKey = key): ReturnType<typeof verifyHeader> {
  return verifyHeader(signEnvelope('header', signed, [signer]), { trust, now: NOW });
}


/** zstd frame header bytes: magic, descriptor, then the frame content size field as given. */
function frameHead(descriptor: number, rest: number[]): Buffer {
  return Buffer.from([0x28, 0xb5, 0x2f, 0xfd, descriptor, ...rest]);
}

/** A raw block (last) holding `data`: 3-byte header (size << 3 | type 0 << 1 | last). */
function rawBlock(data: Uint8Array, last = true): Buffer {
  const h = (data.length << 3) | (last ? 1 : 0);
  return Buffer.concat([Buffer.from([h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff]), data]);
}

/** An RLE block of `n` copies of one byte (type 1). */
function rleBlock(n: number, last: boolean): Buffer {
  const h = (n << 3) | (1 << 1) | (last ? 1 : 0);
  return Buffer.from([h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff, 0x00]);
}

describe('compressed bundle headers (format version 4)', () => {
  it('decodes to the same header as the plain document, smaller, and the same bytes every time', () => {
    const signed = compressHeaderDocument(doc);
    const plain = verify(doc);
    const packed = verify(signed);
    expect(packed.version).toBe(plain.version);
    const norm = (h: typeof plain): unknown => ({ ...h, id: undefined, releaseEnvelope: Buffer.from(h.releaseEnvelope), manifest: Buffer.from(h.manifest), config: Buffer.from(h.config) });
    expect(norm(packed)).toEqual(norm(plain));
    expect(signed.length).toBeLessThan(doc.length);
    expect(Buffer.from(compressHeaderDocument(doc)).equals(Buffer.from(signed))).toBe(true);
    expect(Buffer.from(headerDocument(signed)).equals(Buffer.from(doc))).toBe(true);
    expect(Buffer.from(headerDocument(doc)).equals(Buffer.from(doc))).toBe(true);
  });

  it('shows a reader of versions 1-3 a ferry-bundle map of version 4 (which it refuses with FERRY_ERR_BUNDLE_VERSION)', () => {
    const outer = decodeLimited(compressHeaderDocument(doc), { maxStrLength: 64, maxBinLength: 1 << 20, maxArrayLength: 0, maxMapLength: 4 }, 'test') as Record<string, unknown>;
    expect([outer.type, outer.v]).toEqual(['ferry-bundle', 4]);
  });

  it('checks the signature before decompressing: a bomb signed by an untrusted key is FERRY_ERR_SIGNATURE_INVALID', () => {
    const other = parsePrivateKey(generateKeyPair().privatePem);
    const bomb = wrapper(Buffer.concat([frameHead(0xc0, [0x00, 0, 0, 0, 0, 0, 1, 0, 0]), rawBlock(Buffer.alloc(0))]));
    expect(errorCode(() => verify(bomb, other))).toBe('FERRY_ERR_SIGNATURE_INVALID');
    expect(errorCode(() => verify(bomb))).toBe('FERRY_ERR_LIMIT_EXCEEDED');
  });

  it('refuses a frame declaring more than HEADER_MAX_BYTES before allocating: FERRY_ERR_LIMIT_EXCEEDED', () => {
    // 2^40 declared (8-byte size field, a 1 MiB window, one empty raw block)
    const huge = Buffer.concat([frameHead(0xc0, [0x50, 0, 0, 0, 0, 0, 1, 0, 0]), rawBlock(Buffer.alloc(0))]);
    expect(errorCode(() => verify(wrapper(huge)))).toBe('FERRY_ERR_LIMIT_EXCEEDED');
    // a real frame of one byte over the cap (zeros: a few hundred bytes of frame)
    const over = zstdCompress(Buffer.alloc(HEADER_MAX_BYTES + 1), { compressionLevel: 1 });
    expect(over.length).toBeLessThan(4096);
    expect(errorCode(() => verify(wrapper(over)))).toBe('FERRY_ERR_LIMIT_EXCEEDED');
  });

  it('refuses a frame that does not declare its size, trailing bytes and a second frame: FERRY_ERR_BUNDLE_INVALID', () => {
    const frame = zstdCompress(doc, { compressionLevel: 19 });
    // the document itself in a raw block of a frame with no content size field (1 MiB window)
    const undeclared = Buffer.concat([frameHead(0x00, [0x50]), rawBlock(doc)]);
    const cases: [string, Uint8Array][] = [
      ['no declared size', undeclared],
      ['a byte after the frame', Buffer.concat([frame, Buffer.from([0])])],
      ['a second frame', Buffer.concat([frame, frame])],
      ['not zstd', Buffer.from(doc)],
      ['empty', Buffer.alloc(0)],
      ['cut short', frame.subarray(0, frame.length - 3)],
    ];
    for (const [what, z] of cases) expect(errorCode(() => verify(wrapper(z))), what).toBe('FERRY_ERR_BUNDLE_INVALID');
  });

  it('refuses a bomb that declares a small size and expands past it: FERRY_ERR_BUNDLE_INVALID', () => {
    // declares 100 bytes (single segment, 1-byte size field) and holds 200 RLE blocks of 128 KiB (25 MiB)
    const blocks = Array.from({ length: 200 }, (_, i) => rleBlock(128 * 1024, i === 199));
    const bomb = Buffer.concat([frameHead(0x20, [100]), ...blocks]);
    expect(bomb.length).toBeLessThan(1024);
    expect(errorCode(() => verify(wrapper(bomb)))).toBe('FERRY_ERR_BUNDLE_INVALID');
    // and one that declares more than it holds
    const short = Buffer.concat([frameHead(0x20, [200]), rawBlock(Buffer.alloc(100))]);
    expect(errorCode(() => verify(wrapper(short)))).toBe('FERRY_ERR_BUNDLE_INVALID');
  });

  it('refuses a wrapper with other fields, a wrapper inside a wrapper and a non-header inside', () => {
    const frame = zstdCompress(doc, { compressionLevel: 3 });
    expect(errorCode(() => verify(wrapper(frame, { extra: 1 })))).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(errorCode(() => verify(compressHeaderDocument(compressHeaderDocument(doc))))).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(errorCode(() => verify(compressHeaderDocument(encodeMsgpack({ type: 'other', v: 2 }))))).toBe('FERRY_ERR_BUNDLE_INVALID');
    expect(errorCode(() => verify(wrapper('a string, not a frame')))).toBe('FERRY_ERR_MSGPACK_INVALID');
  });

  it('decodes a frame of exactly HEADER_MAX_BYTES and refuses it as a document like any other: FERRY_ERR_MSGPACK_INVALID', () => {
    const atCap = zstdCompress(Buffer.alloc(HEADER_MAX_BYTES), { compressionLevel: 1 });
    expect(errorCode(() => verify(wrapper(atCap)))).toBe('FERRY_ERR_MSGPACK_INVALID');
  });
});
