/**
 * Turning one layer's payload ops into skeleton entries, new contents and the layer's bytes
 * (docs/format.md section 5). Every size is checked before the bytes it announces are decoded:
 * an entry's body against its header's size, and the layer's running total against the size the
 * signed header gives the layer, so no decoder (zstd patch-from, bspatch, literal collection) can
 * be made to produce more than the layer holds (DESIGN.md section 8).
 */
import { FerryError } from '../errors.js';
import { bytesToDigest, digestToBytes, type Digest } from '../util/digest.js';
import { parseHeaderGroup, paddingAfter, recomputeChecksums, type MemberInfo } from '../tar/group.js';
import type { SkeletonWriter } from '../tar/skeleton-file.js';
import type { Store } from '../store/store.js';
import type { BaselineTable, TableEntry } from './baseline.js';
import type { LayerSink } from './apply-sink.js';
import { DeltaDecoder, resolveReference } from './apply-delta.js';
import { LayerGroups } from './apply-refset.js';
import { decodeSegmented } from './apply-segmented.js';
import { patchBytes, type DecodedBody, type HeaderSource, type PayloadOp } from './payload.js';

function bad(msg: string): FerryError {
  return new FerryError('FERRY_ERR_BUNDLE_INVALID', `payload is malformed: ${msg}`);
}

/** Bodies of the entries so far, for back references: 32 digest bytes and a size each. */
class History {
  private digests = Buffer.alloc(32 * 1024);
  private sizes = new Float64Array(1024);
  length = 0;

  push(digest: Digest | undefined, size: number): void {
    if (this.length === this.sizes.length) {
      const d = Buffer.alloc(this.digests.length * 2);
      this.digests.copy(d);
      this.digests = d;
      const s = new Float64Array(this.sizes.length * 2);
      s.set(this.sizes);
      this.sizes = s;
    }
    if (digest) digestToBytes(digest).forEach((b, i) => (this.digests[this.length * 32 + i] = b));
    this.sizes[this.length++] = digest ? size : -1;
  }

  /** The body of the entry `k` places back. */
  back(k: number): { digest: Digest; size: number } {
    if (k > this.length) throw bad('back reference before the layer start');
    const i = this.length - k;
    const size = this.sizes[i]!;
    if (size < 0) throw bad('back reference to an entry without a body');
    return { digest: bytesToDigest(this.digests.subarray(i * 32, i * 32 + 32)), size };
  }
}

/** What a layer build works with. */
export interface BuildContext {
  store: Store;
  table: BaselineTable;
  writer: SkeletonWriter;
  /** Where the layer's bytes go (hashed, read and written by the layer writer, apply-sink.ts). */
  out: LayerSink;
  /** The size the signed header gives the layer: the cap of everything decoded. */
  layerSize: number;
  /** Largest delta reference read into memory (PATCH_REFERENCE_MAX or lower). */
  maxReference: number;
  /** Resolves when the skeleton writer may take more (or rejects when its file failed). */
  drained: () => Promise<void>;
  signal?: AbortSignal | undefined;
}

/** One entry's header, as the op sources it. */
interface Header {
  bytes: Buffer;
  base?: TableEntry | undefined;
}

/** Rebuilds one layer's entries from its ops. */
export class LayerBuild {
  private readonly history = new History();
  private readonly deltas: DeltaDecoder;
  private prevSize = 0;
  /** Entries so far. */
  count = 0;
  /** Tar bytes of the entries so far (paddings, header groups, bodies). */
  bytes = 0;
  /** GROUP and MEMBER bodies (format v2, apply-refset.ts). */
  private readonly groups: LayerGroups;

  constructor(private readonly c: BuildContext) {
    this.deltas = new DeltaDecoder(c.store, (d) => c.out.stagedPath(d));
    this.groups = new LayerGroups({ ...c, deltas: this.deltas, back: (k) => this.history.back(k) });
  }

  /** Frees the delta buffers (the layer is done or failed). */
  close(): void {
    this.deltas.close();
  }

  /** Runs every op; returns the layer's tail bytes. */
  async run(ops: AsyncIterable<PayloadOp>): Promise<Uint8Array> {
    let tail: Uint8Array | undefined;
    for await (const op of ops) {
      this.c.signal?.throwIfAborted();
      if (op.op === 'run' || op.op === 'patchrun') {
        if (op.start + op.count > this.c.table.length) throw bad(`a run of ${op.count} entries from ${op.start} runs past the ${this.c.table.length}-entry baseline`);
        for (let i = op.start; i < op.start + op.count; i++) {
          const b = this.c.table.entry(i);
          const header = op.op === 'run' ? b.header : patched(b.header, op.patch, true);
          await this.stored(undefined, header, b.digest, b.size);
        }
      } else if (op.op === 'entry') {
        await this.entry(op.pad, this.header(op.header), op.body);
      } else {
        tail = op.bytes; // the op reader checks that no record follows
      }
    }
    if (!tail) throw bad('frame ended before its tail record');
    this.groups.finish();
    if (this.bytes + tail.length !== this.c.layerSize) {
      throw new FerryError('FERRY_ERR_DIGEST_MISMATCH', `the payload rebuilds ${this.bytes + tail.length} bytes of a ${this.c.layerSize}-byte layer`, { details: { size: this.bytes + tail.length } });
    }
    await this.c.out.bytes(tail);
    return tail;
  }

  private header(h: HeaderSource): Header {
    if (h.kind === 'literal') return { bytes: Buffer.from(h.bytes) };
    const base = this.c.table.entry(h.index);
    if (h.kind === 'base') return { bytes: base.header, base };
    return { bytes: patched(base.header, h.patch, h.fixChecksum ?? false), base };
  }

  /**
   * Starts an entry: checks its padding and that its header's size fits in the layer, then
   * outputs padding and header group. Nothing of the body is decoded before this passes.
   */
  private async begin(pad: Uint8Array | undefined, header: Buffer): Promise<{ raw: Buffer; info: MemberInfo }> {
    const padLen = paddingAfter(this.prevSize);
    const padding = pad ?? Buffer.alloc(padLen);
    if (padding.length !== padLen) throw bad('padding has the wrong length');
    const info = parseHeaderGroup(header);
    const after = this.bytes + padLen + header.length + info.size;
    if (after > this.c.layerSize) {
      throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `entry ${info.path} (${info.size} bytes) takes the rebuilt layer past its ${this.c.layerSize} bytes`, { details: { size: this.c.layerSize } });
    }
    const raw = Buffer.concat([padding, header]);
    await this.c.out.bytes(raw);
    return { raw, info };
  }

  private async finish(raw: Buffer, info: MemberInfo, digest: Digest | undefined): Promise<void> {
    this.c.writer.add({ raw, path: info.path, type: info.type, linkname: info.linkname, size: info.size, digest });
    if (this.c.writer.backedUp) await this.c.drained();
    this.history.push(digest, info.size);
    this.prevSize = info.size;
    this.count++;
    this.bytes += raw.length + info.size;
  }

  /** An entry whose body is a stored content (or none). */
  private async stored(pad: Uint8Array | undefined, header: Buffer, digest: Digest | undefined, size: number): Promise<void> {
    const { raw, info } = await this.begin(pad, header);
    if (info.size !== (digest ? size : 0)) throw bad(`body of ${info.path} is ${digest ? size : 0} bytes, its header says ${info.size}`);
    if (digest) await this.c.out.content(digest, size);
    await this.finish(raw, info, digest);
  }

  private async entry(pad: Uint8Array | undefined, h: Header, b: DecodedBody): Promise<void> {
    switch (b.kind) {
      case 'none':
        return this.stored(pad, h.bytes, undefined, 0);
      case 'same':
        if (!h.base) throw bad('"same body" with a literal header');
        return this.stored(pad, h.bytes, h.base.digest, h.base.size);
      case 'copy': {
        const c = this.c.table.entry(b.index);
        if (!c.digest) throw bad(`copy from baseline entry ${b.index}, which has no body`);
        return this.stored(pad, h.bytes, c.digest, c.size);
      }
      case 'back': {
        const r = this.history.back(b.k);
        return this.stored(pad, h.bytes, r.digest, r.size);
      }
      case 'member': {
        const m = this.groups.next(b.d);
        return this.stored(pad, h.bytes, m.digest, m.size);
      }
      case 'digest': {
        const { raw, info } = await this.begin(pad, h.bytes);
        if (info.size === 0) throw bad(`entry ${info.path} has no body but the payload names one`);
        await this.c.out.content(b.digest, info.size);
        return this.finish(raw, info, b.digest);
      }
      default:
        return this.carried(pad, h.bytes, b);
    }
  }

  /** An entry whose body the payload carries: literal, patch-from, bsdiff or a group's frame. */
  private async carried(pad: Uint8Array | undefined, header: Buffer, b: Extract<DecodedBody, { data: unknown }>): Promise<void> {
    const { raw, info } = await this.begin(pad, header);
    // the op declares the output size; the header group in the same op declares the entry's:
    // they must agree before a byte of the body is decoded
    if (b.size !== info.size) throw bad(`body of ${info.path} is declared ${b.size} bytes, its header says ${info.size}`);
    let digest: Digest;
    if (b.kind === 'literal') {
      digest = await this.c.out.body(info.size, b.data);
    } else if (b.kind === 'group') {
      // the first member enters the layer here (the others are stashed for their MEMBER entries)
      digest = (await this.groups.open(b, this.c.layerSize - this.bytes - raw.length)).digest;
    } else if (b.kind === 'patch') {
      const ref = resolveReference(this.c.table, b.index, this.c.maxReference, info.path);
      const limit = info.size + (info.size >> 8) + 1024;
      if (b.patchSize > limit) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `patch of ${info.path} is ${b.patchSize} bytes, over the ${limit}-byte cap for a ${info.size}-byte body`);
      digest = await this.deltas.patch(ref, b.data, b.patchSize, info.size, (out) => this.c.out.body(info.size, [out]));
    } else if (b.kind === 'segmented') {
      // a body too large for one patch: each segment is one patch against a window (format v3)
      digest = await decodeSegmented({ ...this.c, arena: this.deltas.arena }, b, (out) => this.c.out.body(info.size, out));
    } else {
      const ref = resolveReference(this.c.table, b.index, this.c.maxReference, info.path);
      digest = await this.deltas.bsdiff(ref, b.data, info.size, this.c.signal, (out) => this.c.out.body(info.size, out));
    }
    await this.finish(raw, info, digest);
  }
}

/** A baseline header group with a byte patch applied (and its checksums recomputed when asked). */
function patched(base: Buffer, patch: Uint8Array, fixChecksum: boolean): Buffer {
  const out = patchBytes(base, patch);
  if (fixChecksum && !recomputeChecksums(out, base)) throw bad('a patched header checksum does not fit its field');
  return out;
}
