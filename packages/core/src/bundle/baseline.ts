/**
 * The baseline entry table (docs/format.md section 5.1): every entry of every baseline layer, in
 * the header's baseline order and skeleton order. Payload ops name baseline entries by their index
 * in this table, so the differ and the applier must build it identically.
 */
import { FerryError } from '../errors.js';
import type { Digest } from '../util/digest.js';
import { paddingAfter } from '../tar/group.js';
import type { Store } from '../store/store.js';

/** One baseline entry. */
export interface BaselineEntry {
  /** Index of the baseline layer in the header's list. */
  layer: number;
  /** The entry's header group: its raw bytes minus the previous body's padding. */
  header: Buffer;
  path: string;
  type: string;
  size: number;
  digest?: Digest | undefined;
}

/** Splits a skeleton entry's raw bytes into the previous body's padding and its header group. */
export function splitRaw(raw: Uint8Array, prevSize: number): { pad: Buffer; header: Buffer } {
  const b = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const n = Math.min(paddingAfter(prevSize), b.length);
  return { pad: b.subarray(0, n), header: b.subarray(n) };
}

/** Loads the table from the store; a missing layer is FERRY_ERR_BASELINE_MISSING. */
export async function loadBaseline(store: Store, layers: Digest[]): Promise<BaselineEntry[]> {
  const missing: Digest[] = [];
  for (const d of layers) if (!(await store.hasSkeleton(d))) missing.push(d);
  if (missing.length > 0) {
    throw new FerryError('FERRY_ERR_BASELINE_MISSING', `the store lacks ${missing.length} baseline layer(s) the bundle needs: ${missing.join(', ')}`, { details: { missing } });
  }
  const out: BaselineEntry[] = [];
  for (const [layer, d] of layers.entries()) {
    const r = await store.openSkeleton(d);
    let prev = 0;
    for await (const e of r.entries) {
      const { header } = splitRaw(e.raw, prev);
      out.push({ layer, header: Buffer.from(header), path: e.path, type: e.type, size: e.size, digest: e.digest });
      prev = e.size;
    }
  }
  return out;
}
