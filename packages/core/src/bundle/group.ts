/**
 * Decoding GROUP and MEMBER bodies (docs/format.md section 5.3): one zstd patch-from frame against
 * a reference set rebuilds the bodies of several entries. The set is checked before anything is
 * read; the frame is decoded in one call against the set (the layer's DeltaDecoder, with its
 * reused buffers), so memory is the set, the frame and the members (their sum is capped by
 * PATCH_SPAN_MAX, as a single patch's is). The first member is this entry's body; the others are
 * stored at once and their later MEMBER entries take them as stored contents, so no member body
 * is held in memory past its group's decode.
 */
import { FerryError } from '../errors.js';
import type { Digest } from '../util/digest.js';
import { PATCH_SPAN_MAX } from '../util/zstd.js';
import { resolveReferenceSet, type ReferencePart } from './reference.js';
import type { PatchReference } from './apply-delta.js';
import type { DecodedBody } from './payload.js';

/** What decoding a group needs from the applier: the baseline table, the decoder and the content writer. */
export interface GroupContext {
  /** The baseline entry at index i (digest and size), or undefined past the table's end. */
  lookup(i: number): ReferencePart | undefined;
  /** The entry of this layer k places before the group's (k >= 1), or undefined before the layer's start. */
  earlier(k: number): ReferencePart | undefined;
  /**
   * Decodes `frameSize` bytes of frame `data` against `ref` (checked) into `size` bytes handed to
   * `use`, valid until it returns. The last `layerParts` parts of `ref` are bodies of this layer.
   */
  decode<T>(ref: PatchReference, layerParts: number, data: AsyncIterable<Uint8Array>, frameSize: number, size: number, use: (out: Uint8Array) => Promise<T>): Promise<T>;
  /**
   * Writes one member body as a content: the first (`first` true) is this entry's body, at the
   * layer's current position; the others wait, stored, for their MEMBER entries. Resolves with its digest.
   */
  put(body: Uint8Array, first: boolean): Promise<Digest>;
  /** Largest reference set accepted (bytes). */
  maxReference: number;
  signal?: AbortSignal | undefined;
}

/** A rebuilt body: its content digest and size. */
export interface GroupBody {
  digest: Digest;
  size: number;
}

function bad(msg: string): FerryError {
  return new FerryError('FERRY_ERR_BUNDLE_INVALID', `payload is malformed: ${msg}`);
}

/** Groups a layer may have open at once (opened, with members not yet taken). */
export const MAX_OPEN_GROUPS = 1024;

/** Member bodies decoded and not yet taken, over every open group of a layer, at most. */
export const MAX_PENDING_MEMBERS = 65_536;

/**
 * The bodies of a layer's open groups that later MEMBER entries take, in order. One per layer
 * rebuild; `finish` at the layer's end refuses members that no entry took.
 */
export class GroupMembers {
  /** Untaken bodies by group number (groups are numbered as they open). */
  private readonly pending = new Map<number, GroupBody[]>();
  private opened = 0;
  private waiting = 0;

  /** Decodes a GROUP body: writes every member and returns the first (this entry's body). */
  async open(body: Extract<DecodedBody, { kind: 'group' }>, ctx: GroupContext): Promise<GroupBody> {
    if (this.pending.size >= MAX_OPEN_GROUPS) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `more than ${MAX_OPEN_GROUPS} groups open at once`);
    if (this.waiting + body.sizes.length - 1 > MAX_PENDING_MEMBERS) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `more than ${MAX_PENDING_MEMBERS} group members waiting for their entries`);
    const base = resolveReferenceSet(body.set, ctx.lookup, ctx.maxReference);
    const earlier = resolveReferenceSet(body.earlier, (k) => ctx.earlier(k), ctx.maxReference - base.size);
    const parts = [...base.parts, ...earlier.parts].map((p) => ({ digest: p.digest!, size: p.size }));
    const refSize = base.size + earlier.size;
    if (parts.length === 0) throw bad('a group has an empty reference');
    const total = body.sizes.reduce((a, s) => a + s, 0);
    if (refSize + total > PATCH_SPAN_MAX) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `group of ${total} bytes against a ${refSize}-byte reference exceeds the ${PATCH_SPAN_MAX}-byte patch span`);
    const cap = total + (total >> 8) + 1024;
    if (body.frameSize > cap) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `group frame of ${body.frameSize} bytes is over the ${cap}-byte cap for ${total} bytes of members`);
    const bodies = await ctx.decode({ parts, size: refSize }, earlier.parts.length, body.data, body.frameSize, total, async (out) => {
      const list: GroupBody[] = [];
      let at = 0;
      for (const size of body.sizes) {
        ctx.signal?.throwIfAborted();
        list.push({ digest: await ctx.put(out.subarray(at, at + size), list.length === 0), size });
        at += size;
      }
      return list;
    });
    const n = this.opened++;
    if (bodies.length > 1) this.pending.set(n, bodies.slice(1));
    this.waiting += bodies.length - 1;
    return bodies[0]!;
  }

  /** The next member of the group opened `d` groups before the latest one (a MEMBER body). */
  next(d: number): GroupBody {
    const n = this.opened - 1 - d;
    const pending = this.pending.get(n);
    const b = pending?.shift();
    if (!b) throw bad(`a member body names group ${n}, which has no member left`);
    this.waiting--;
    if (pending!.length === 0) this.pending.delete(n);
    return b;
  }

  /** Refuses a layer that ends with group members untaken. */
  finish(): void {
    if (this.pending.size > 0) throw bad(`the layer ends with ${this.pending.size} group(s) holding untaken members`);
  }
}
