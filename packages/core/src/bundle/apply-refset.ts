/**
 * GROUP and MEMBER bodies in a layer rebuild (docs/format.md section 5.3), kept in one place so the
 * layer build (apply-build.ts) calls it at the single point where a body's reference is resolved.
 * A group's reference set names baseline entries (the table) and bodies this layer already rebuilt
 * (its history); the set is checked against both and the cap before a byte is read, then decoded
 * by the layer's DeltaDecoder, and the frame's output is capped at the bytes the layer has left.
 * The first member goes into the layer's bytes at the group's entry; the others are stashed in the
 * store by the layer writer (LayerSink.stash) until their MEMBER entries take them.
 */
import { existsSync } from 'node:fs';
import { FerryError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { BaselineTable } from './baseline.js';
import type { DeltaDecoder, PatchReference } from './apply-delta.js';
import type { LayerSink } from './apply-sink.js';
import { GroupMembers, type GroupBody } from './group.js';
import type { DecodedBody } from './payload.js';
import type { ReferencePart } from './reference.js';

/** What a layer build lends its groups. */
export interface LayerGroupsContext {
  store: Store;
  table: BaselineTable;
  /** The body of the entry `k` places back in this layer (throws FERRY_ERR_BUNDLE_INVALID when there is none). */
  back(k: number): ReferencePart;
  /** The layer's byte stream and content writer. */
  out: LayerSink;
  /** The layer's delta buffers (reference, frame, output). */
  deltas: DeltaDecoder;
  /** Largest reference set read into memory. */
  maxReference: number;
  signal?: AbortSignal | undefined;
}

/** The groups of one layer rebuild. */
export class LayerGroups {
  private readonly members = new GroupMembers();

  constructor(private readonly c: LayerGroupsContext) {}

  /**
   * Decodes a GROUP body whose members may add up to `maxOutput` bytes (what the layer has left):
   * writes its first member into the layer at the current position, stashes the others, and
   * returns the first.
   */
  async open(b: Extract<DecodedBody, { kind: 'group' }>, maxOutput: number): Promise<GroupBody> {
    const total = b.sizes.reduce((a, s) => a + s, 0);
    if (total > maxOutput) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `a group of ${total} bytes takes the rebuilt layer past its size`);
    return this.members.open(b, {
      lookup: (i) => (i >= 0 && i < this.c.table.length ? this.c.table.entry(i) : undefined),
      earlier: (k) => this.c.back(k),
      decode: async (ref, layerParts, data, frameSize, size, use) => {
        await this.durable(ref, layerParts);
        return this.c.deltas.patch(ref, data, frameSize, size, use);
      },
      put: (body, first) => (first ? this.c.out.body(body.length, [body]) : this.c.out.stash(body.length, [body])),
      maxReference: this.c.maxReference,
      signal: this.c.signal,
    });
  }

  /**
   * A body this layer wrote may still be in the writer's temp file, not under its name: the
   * decoder reads it there (LayerSink.stagedPath), once the writer has written it whole
   * (whenStaged: the writer thread may be behind). A body that is neither there nor stored makes
   * the writer flush, which names every staged body. Flushing for every such group cost dep-bump
   * 45 flushes (two syncfs each, and the fork that runs them). Baseline parts are never waited for.
   */
  private async durable(ref: PatchReference, layerParts: number): Promise<void> {
    for (const p of ref.parts.slice(ref.parts.length - layerParts)) {
      if (await this.c.out.whenStaged(p.digest)) continue;
      if (!existsSync(this.c.store.contentPath(p.digest))) return this.c.out.flush();
    }
  }

  /** The body of a MEMBER entry. */
  next(d: number): GroupBody {
    return this.members.next(d);
  }

  /** Refuses a layer that ends with group members untaken. */
  finish(): void {
    this.members.finish();
  }
}
