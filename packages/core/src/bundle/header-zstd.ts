/**
 * Compressed bundle headers (docs/format.md section 4.1): from version 4 the signed bytes of a
 * header envelope may be a small msgpack map `{type: "ferry-bundle", v: 4, z: bin}` whose `z` is
 * one zstd frame holding the header document. The signature covers those exact bytes, so this
 * runs only on bytes whose signatures verified (or, for inspection, on bytes read with every cap
 * in force), and the frame's declared size is checked against HEADER_MAX_BYTES before anything is
 * allocated for its output.
 */
import type { CompressParameters } from 'zstd-napi';
import { FerryError } from '../errors.js';
import { zstdCompress, zstdDecompress, zstdDeclaredSize } from '../util/zstd.js';
import { check, encodeMsgpack } from './msgpack.js';

/** The header format version whose signed bytes wrap a zstd-compressed header document. */
export const COMPRESSED_HEADER_VERSION = 4;

/** Largest header document (and header envelope) a reader accepts: 16 MiB. */
export const HEADER_MAX_BYTES = 16 * 1024 * 1024;

/**
 * zstd level 19, no checksum (the signature covers the frame) and the content size declared (a
 * reader refuses a frame without it). One-shot compression of the same bytes with the same
 * parameters gives the same frame, so bundles stay byte-identical for the same inputs.
 */
const HEADER_ZSTD: CompressParameters = { compressionLevel: 19, checksumFlag: false, contentSizeFlag: true };

/** Wraps an encoded header document (encodeHeader) into the signed bytes of a version 4 header. */
export function compressHeaderDocument(doc: Uint8Array): Uint8Array {
  return encodeMsgpack({ type: 'ferry-bundle', v: COMPRESSED_HEADER_VERSION, z: zstdCompress(doc, HEADER_ZSTD) });
}

/**
 * The header document inside a decoded version 4 wrapper `m`: its keys must be exactly `type`,
 * `v` and `z`, and `z` one zstd frame declaring at most HEADER_MAX_BYTES with nothing after it,
 * decoding to exactly that size. Over the cap: FERRY_ERR_LIMIT_EXCEEDED (before any allocation);
 * any other frame fault: FERRY_ERR_BUNDLE_INVALID.
 */
export function inflateHeaderDocument(m: Record<string, unknown>): Uint8Array {
  const bad = (msg: string, cause?: unknown): FerryError => new FerryError('FERRY_ERR_BUNDLE_INVALID', `compressed bundle header: ${msg}`, cause === undefined ? {} : { cause });
  const keys = Object.keys(m).sort().join(',');
  if (keys !== 'type,v,z') throw bad(`it holds the fields ${keys.slice(0, 80)}, not exactly type, v and z`);
  const z = check.bin(m.z, 'header.z');
  const size = zstdDeclaredSize(z);
  if (size === undefined) throw bad('z must be exactly one zstd frame that declares its content size');
  if (size > HEADER_MAX_BYTES) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `compressed bundle header declares ${size} bytes, over the ${HEADER_MAX_BYTES} cap`);
  try {
    return zstdDecompress(z, size);
  } catch (err) {
    throw bad('its zstd frame does not decode to the size it declares', err);
  }
}
