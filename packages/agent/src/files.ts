/**
 * Bounded reads of chunk and journal files that input names (a USB stick, a copied cache), over
 * core's readRegularFile (DESIGN.md section 8): regular files only, refused after fstat before any
 * read, and never more than the expected size plus one byte.
 */
import { isFerryError, readRegularFile } from '@ferry/core';

/** Result of {@link readBounded}: the bytes, or why they are refused. */
export type BoundedRead = { ok: true; bytes: Buffer } | { ok: false; missing: boolean; reason: string };

/**
 * Reads a regular file expected to be `size` bytes. A missing file, a special file, or a file of
 * another size is reported (not thrown); I/O failures throw FERRY_ERR_IO.
 */
export async function readBounded(path: string, size: number, signal?: AbortSignal): Promise<BoundedRead> {
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(path, { what: 'file', missing: 'FERRY_ERR_CHUNK_MISSING', notRegular: 'FERRY_ERR_CHUNK_INVALID', tooBig: 'FERRY_ERR_LIMIT_EXCEEDED', maxBytes: size, signal });
  } catch (err) {
    if (isFerryError(err, 'FERRY_ERR_CHUNK_MISSING')) return { ok: false, missing: true, reason: 'no such file' };
    if (isFerryError(err, 'FERRY_ERR_CHUNK_INVALID')) return { ok: false, missing: false, reason: 'not a regular file' };
    if (isFerryError(err, 'FERRY_ERR_LIMIT_EXCEEDED')) return { ok: false, missing: false, reason: `longer than ${size} bytes` };
    throw err;
  }
  if (bytes.length !== size) return { ok: false, missing: false, reason: `${bytes.length} bytes, not ${size}` };
  return { ok: true, bytes };
}

/** Result of {@link readStateJson}: the parsed value, or why there is none. */
export type StateJson = { state: 'ok'; value: unknown } | { state: 'missing' } | { state: 'damaged' };

/**
 * Reads one of the agent's JSON state files (reports.json, committed.json, counter), at most
 * `maxBytes`: a file that is longer or is not JSON is 'damaged' (the caller starts it again), a
 * missing one 'missing'; a special file in its place throws FERRY_ERR_IO, as do I/O failures.
 */
export async function readStateJson(path: string, what: string, maxBytes: number): Promise<StateJson> {
  let text: string;
  try {
    text = (await readRegularFile(path, { what, missing: 'FERRY_ERR_NOT_FOUND', notRegular: 'FERRY_ERR_IO', maxBytes })).toString('utf8');
  } catch (err) {
    if (isFerryError(err, 'FERRY_ERR_NOT_FOUND')) return { state: 'missing' };
    if (isFerryError(err, 'FERRY_ERR_LIMIT_EXCEEDED')) return { state: 'damaged' };
    throw err;
  }
  try {
    return { state: 'ok', value: JSON.parse(text) as unknown };
  } catch {
    return { state: 'damaged' };
  }
}
