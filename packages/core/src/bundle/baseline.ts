/**
 * The baseline entry table (docs/format.md section 5.1): every entry of every baseline layer, in
 * the header's baseline order and skeleton order. Payload ops name baseline entries by their index
 * in this table, so the differ and the applier must build it identically: both read it through
 * {@link baselineEntries}. The differ holds it in memory ({@link loadBaseline}); the applier, whose
 * memory is bounded (DESIGN.md section 6), spills it to a file ({@link BaselineTable}).
 */
import { randomBytes } from 'node:crypto';
import { readSync } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, toFerryError } from '../errors.js';
import { bytesToDigest, digestToBytes, type Digest } from '../util/digest.js';
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

/** Throws FERRY_ERR_BASELINE_MISSING naming every baseline layer the store lacks. */
export async function checkBaselinePresent(store: Store, layers: readonly Digest[]): Promise<void> {
  const missing: Digest[] = [];
  for (const d of layers) if (!(await store.hasSkeleton(d))) missing.push(d);
  if (missing.length > 0) {
    throw new FerryError('FERRY_ERR_BASELINE_MISSING', `the store lacks ${missing.length} baseline layer(s) the bundle needs: ${missing.join(', ')}`, { details: { missing } });
  }
}

/** Streams the table's entries in order, one skeleton at a time (the one definition of the table). */
export async function* baselineEntries(store: Store, layers: readonly Digest[], signal?: AbortSignal): AsyncGenerator<BaselineEntry> {
  for (const [layer, d] of layers.entries()) {
    const r = await store.openSkeleton(d);
    let prev = 0;
    for await (const e of r.entries) {
      signal?.throwIfAborted();
      const { header } = splitRaw(e.raw, prev);
      yield { layer, header, path: e.path, type: e.type, size: e.size, digest: e.digest };
      prev = e.size;
    }
  }
}

/** Loads the whole table into memory; a missing layer is FERRY_ERR_BASELINE_MISSING. */
export async function loadBaseline(store: Store, layers: Digest[]): Promise<BaselineEntry[]> {
  await checkBaselinePresent(store, layers);
  const out: BaselineEntry[] = [];
  for await (const e of baselineEntries(store, layers)) out.push({ ...e, header: Buffer.from(e.header) });
  return out;
}

/** What the applier needs of a baseline entry. */
export interface TableEntry {
  header: Buffer;
  size: number;
  digest?: Digest | undefined;
}

/** A growable column of numbers. */
class Column<T extends Float64Array | Uint32Array> {
  data: T;
  constructor(private readonly make: (n: number) => T) {
    this.data = make(4096);
  }
  set(i: number, v: number): void {
    if (i >= this.data.length) {
      const bigger = this.make(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[i] = v;
  }
}

const WRITE_BUFFER = 1024 * 1024;
const READ_WINDOW = 256 * 1024;

/**
 * The baseline entry table with its header groups and digests spilled to an unlinked file (the
 * disk space goes when the table is closed or the process dies: nothing for gc to find). Memory
 * is 20 bytes an entry; an entry is read back with one `pread` into a read-ahead window, so ops
 * that walk the baseline in order (runs, which are most of them) read it sequentially.
 */
export class BaselineTable {
  /** The read-ahead window, allocated once; `windowLength` bytes from `windowStart` are valid. */
  private readonly window = Buffer.allocUnsafe(READ_WINDOW);
  private windowStart = 0;
  private windowLength = 0;

  private constructor(
    private readonly fh: FileHandle,
    /** Entry count. */
    readonly length: number,
    private readonly offsets: Float64Array,
    private readonly headerLengths: Uint32Array,
    /** Body size, negated minus one for entries without a digest (size 0). */
    private readonly sizes: Float64Array,
  ) {}

  /** Builds the table of `layers` (which must be present) in a file under `dir`. */
  static async build(store: Store, layers: readonly Digest[], options: { dir: string; signal?: AbortSignal | undefined }): Promise<BaselineTable> {
    await checkBaselinePresent(store, layers);
    const path = join(options.dir, `.tmp-${process.pid}-table-${randomBytes(6).toString('hex')}`);
    let fh: FileHandle;
    try {
      fh = await open(path, 'w+');
      await unlink(path);
    } catch (err) {
      throw toFerryError(err, 'creating the baseline table');
    }
    try {
      return await BaselineTable.fill(fh, store, layers, options.signal);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  private static async fill(fh: FileHandle, store: Store, layers: readonly Digest[], signal?: AbortSignal): Promise<BaselineTable> {
    const offsets = new Column((n) => new Float64Array(n));
    const headerLengths = new Column((n) => new Uint32Array(n));
    const sizes = new Column((n) => new Float64Array(n));
    const buf = Buffer.allocUnsafe(WRITE_BUFFER);
    let used = 0;
    let written = 0;
    const flush = async (): Promise<void> => {
      if (used > 0) await fh.write(buf, 0, used, written);
      written += used;
      used = 0;
    };
    const put = async (bytes: Uint8Array): Promise<void> => {
      if (used + bytes.length > buf.length) await flush();
      if (bytes.length > buf.length) {
        await fh.write(bytes, 0, bytes.length, written);
        written += bytes.length;
      } else {
        buf.set(bytes, used);
        used += bytes.length;
      }
    };
    let n = 0;
    for await (const e of baselineEntries(store, layers, signal)) {
      offsets.set(n, written + used);
      headerLengths.set(n, e.header.length);
      sizes.set(n, e.digest ? e.size : -1);
      await put(e.header);
      if (e.digest) await put(digestToBytes(e.digest));
      n++;
    }
    await flush();
    return new BaselineTable(fh, n, offsets.data, headerLengths.data, sizes.data);
  }

  /** Entry `i`; an index outside the table is FERRY_ERR_BUNDLE_INVALID (the payload named it). */
  entry(i: number): TableEntry {
    if (!(i >= 0 && i < this.length)) throw new FerryError('FERRY_ERR_BUNDLE_INVALID', `payload is malformed: baseline entry ${i} does not exist (the baseline has ${this.length})`);
    const stored = this.sizes[i]!;
    const headerLength = this.headerLengths[i]!;
    const bytes = this.read(this.offsets[i]!, headerLength + (stored >= 0 ? 32 : 0));
    const header = Buffer.from(bytes.subarray(0, headerLength));
    if (stored < 0) return { header, size: 0 };
    return { header, size: stored, digest: bytesToDigest(bytes.subarray(headerLength)) };
  }

  /** Bytes [pos, pos + len) of the file: a view valid until the next read (entry() copies). */
  private read(pos: number, len: number): Buffer {
    if (pos >= this.windowStart && pos + len <= this.windowStart + this.windowLength) {
      return this.window.subarray(pos - this.windowStart, pos - this.windowStart + len);
    }
    const big = len > READ_WINDOW;
    const buf = big ? Buffer.allocUnsafe(len) : this.window;
    const got = readSync(this.fh.fd, buf, 0, big ? len : READ_WINDOW, pos);
    if (got < len) throw new FerryError('FERRY_ERR_INTERNAL', `baseline table file is short at ${pos}`);
    if (!big) {
      this.windowStart = pos;
      this.windowLength = got;
    }
    return buf.subarray(0, len);
  }

  /** Closes the file (its space is freed). */
  async close(): Promise<void> {
    await this.fh.close();
  }
}
