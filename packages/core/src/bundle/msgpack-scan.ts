/**
 * A pre-scan of msgpack bytes that bounds nesting depth and element count before the decoder sees
 * them (DESIGN.md section 8). @msgpack/msgpack 3.x has length limits but no depth limit, and its
 * decoder keeps a state object per open container: 16 MiB of nested one-element arrays cost it
 * seconds and gigabytes before any shape check runs. The scanner walks the same bytes keeping only
 * a counter per open container (at most `maxDepth` of them), allocates nothing per byte, and can
 * be fed a stream chunk by chunk (a header split across chunks resumes where it stopped).
 */
import { FerryError } from '../errors.js';
import { poisonConsumed } from '../util/poison.js';

/** What the scanner bounds. */
export interface ScanLimits {
  /** Containers open at once: 1 for `[1, 2]`, 2 for `[[1]]`. */
  maxDepth: number;
  /** Values (containers, keys and scalars) in one top-level document. */
  maxElements: number;
}

/** What a pending length field belongs to. */
const enum Pending {
  Bytes,
  Array,
  Map,
}

/** Bytes after the type byte of fixed-size scalars (msgpack spec, "formats"). */
function fixedPayload(b: number): number {
  switch (b) {
    case 0xcc: case 0xd0: return 1;
    case 0xcd: case 0xd1: return 2;
    case 0xca: case 0xce: case 0xd2: return 4;
    case 0xcb: case 0xcf: case 0xd3: return 8;
    default: return -1;
  }
}

/** Length-field size and kind of str/bin/array/map headers with an explicit length. */
function lengthField(b: number): [number, Pending] | undefined {
  switch (b) {
    case 0xc4: case 0xd9: return [1, Pending.Bytes];
    case 0xc5: case 0xda: return [2, Pending.Bytes];
    case 0xc6: case 0xdb: return [4, Pending.Bytes];
    case 0xdc: return [2, Pending.Array];
    case 0xdd: return [4, Pending.Array];
    case 0xde: return [2, Pending.Map];
    case 0xdf: return [4, Pending.Map];
    default: return undefined;
  }
}

/**
 * Incremental msgpack structure scanner. `feed` throws FERRY_ERR_MSGPACK_INVALID past a limit (as
 * the decoder does for its length limits) and on a byte no ferry document uses (0xc1, ext types).
 */
export class MsgpackScanner {
  /** Values still expected in each open container. */
  private readonly left: number[] = [];
  private depth = 0;
  /** Payload bytes of a str, bin or number still to pass over. */
  private skip = 0;
  /** Bytes of a length field still to read, its value so far and what it sizes. */
  private lenBytes = 0;
  private len = 0;
  private lenKind = Pending.Bytes;
  private elements = 0;
  /** Complete top-level documents seen. */
  documents = 0;

  constructor(
    private readonly limits: ScanLimits,
    private readonly what: string,
  ) {}

  /** True between top-level documents (nothing half-read). */
  get atBoundary(): boolean {
    return this.depth === 0 && this.skip === 0 && this.lenBytes === 0;
  }

  /** Scans the next bytes of the stream. */
  feed(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; ) {
      const end = this.scanDocument(bytes, i);
      if (end < 0) return;
      i = end;
    }
  }

  /**
   * Scans `bytes` from `from` until the current top-level document ends: returns the index just
   * past its last byte, or -1 when `bytes` ends first (the scan resumes with the next bytes).
   */
  scanDocument(bytes: Uint8Array, from = 0): number {
    const docs = this.documents;
    let i = from;
    while (i < bytes.length) {
      if (this.skip > 0) {
        const k = Math.min(this.skip, bytes.length - i);
        this.skip -= k;
        i += k;
        if (this.skip === 0) this.endValue();
      } else if (this.lenBytes > 0) {
        this.len = this.len * 256 + bytes[i++]!;
        if (--this.lenBytes === 0) this.lengthRead();
      } else {
        this.head(bytes[i++]!);
      }
      if (this.documents !== docs) return i;
    }
    return -1;
  }

  private head(b: number): void {
    if (++this.elements > this.limits.maxElements) throw this.limit(`more than ${this.limits.maxElements} values`);
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) return this.endValue();
    if (b <= 0x8f) return this.open((b & 0x0f) * 2);
    if (b <= 0x9f) return this.open(b & 0x0f);
    if (b <= 0xbf) return this.payload(b & 0x1f);
    const fixed = fixedPayload(b);
    if (fixed > 0) return this.payload(fixed);
    const field = lengthField(b);
    if (!field) throw new FerryError('FERRY_ERR_MSGPACK_INVALID', `${this.what} holds msgpack type 0x${b.toString(16)}, which no ferry document uses`);
    [this.lenBytes, this.lenKind] = field;
    this.len = 0;
  }

  private lengthRead(): void {
    if (this.lenKind === Pending.Bytes) this.payload(this.len);
    else this.open(this.lenKind === Pending.Map ? this.len * 2 : this.len);
  }

  private payload(n: number): void {
    if (n === 0) this.endValue();
    else this.skip = n;
  }

  private open(items: number): void {
    if (items === 0) return this.endValue();
    if (this.depth >= this.limits.maxDepth) throw this.limit(`nesting deeper than ${this.limits.maxDepth}`);
    this.left[this.depth++] = items;
  }

  /** A value ended: count it in its container, closing every container it completes. */
  private endValue(): void {
    for (;;) {
      if (this.depth === 0) {
        this.documents++;
        this.elements = 0;
        return;
      }
      if (--this.left[this.depth - 1]! > 0) return;
      this.depth--;
    }
  }

  private limit(msg: string): FerryError {
    return new FerryError('FERRY_ERR_MSGPACK_INVALID', `${this.what} is not valid msgpack within limits: ${msg}`);
  }
}

/** Options of {@link msgpackDocuments}. */
export interface MsgpackDocumentsOptions {
  /**
   * Hand out views instead of copies: the whole documents of an input chunk as a view of that
   * chunk, a document assembled from several chunks as a view of the one buffer that assembles
   * them. A view is valid until the next document is asked for, so every value decoded from it
   * must be used or copied before then (the payload's data records: readOps, payload.ts). The
   * decoder never holds one across that pull: it is handed whole documents, so it takes each
   * buffer as it is and asks for the next only when none of it is left.
   */
  views?: boolean | undefined;
}

/**
 * Cuts a byte stream into buffers of whole top-level documents, scanning each before it is handed
 * on: a buffer holds the documents that ended in one input chunk (or one document assembled from
 * several), copied out of the input unless `options.views`. The input chunks may therefore be
 * views of one buffer the source reuses; the msgpack decoder, handed whole documents, never
 * concatenates a partial one with the next chunk (which costs it a copy of everything it holds per
 * chunk: quadratic in a document's size). A document is at most `maxBytes`
 * (FERRY_ERR_MSGPACK_INVALID past it).
 */
export async function* msgpackDocuments(source: AsyncIterable<Uint8Array>, limits: ScanLimits, what: string, maxBytes: number, options: MsgpackDocumentsOptions = {}): AsyncGenerator<Uint8Array> {
  const scanner = new MsgpackScanner(limits, what);
  const out = options.views ? (b: Uint8Array): Uint8Array => b : (b: Uint8Array): Uint8Array => Buffer.from(b);
  /** The bytes of a document begun in an earlier chunk. */
  let pending = Buffer.alloc(0);
  let held = 0;
  const hold = (bytes: Uint8Array): void => {
    if (held + bytes.length > maxBytes) throw new FerryError('FERRY_ERR_MSGPACK_INVALID', `${what} holds a document over ${maxBytes} bytes`);
    if (held + bytes.length > pending.length) {
      const grown = Buffer.allocUnsafe(Math.min(maxBytes, Math.max(held + bytes.length, 2 * pending.length, 64 * 1024)));
      pending.copy(grown, 0, 0, held);
      pending = grown;
    }
    pending.set(bytes, held);
    held += bytes.length;
  };
  for await (const chunk of source) {
    let pos = 0;
    if (held > 0) {
      const end = scanner.scanDocument(chunk);
      hold(chunk.subarray(0, end < 0 ? chunk.length : end));
      if (end < 0) continue;
      // held is reset only after the pull: a view of pending stays intact until then
      yield out(pending.subarray(0, held));
      if (options.views) poisonConsumed(pending.subarray(0, held));
      held = 0;
      pos = end;
    }
    // the whole documents of this chunk go on in one piece; one it only begins is held
    const first = pos;
    let last = pos;
    while (pos < chunk.length) {
      const end = scanner.scanDocument(chunk, pos);
      if (end < 0) break;
      last = pos = end;
    }
    if (last > first) yield out(chunk.subarray(first, last));
    if (last < chunk.length) hold(chunk.subarray(last));
  }
  // an unfinished document goes on as it is: the decoder reports it
  if (held > 0) yield out(pending.subarray(0, held));
}
