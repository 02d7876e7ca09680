/**
 * GROUP and MEMBER bodies in a layer rebuild (docs/format.md section 5.3), kept in one place so the
 * layer build (apply-build.ts) calls it at the single point where a body's reference is resolved.
 * A group's reference set names baseline entries (the table) and bodies this layer already rebuilt
 * (its history); the set is checked against both and the cap before a byte is read, then read into
 * one buffer, and the frame's output is capped at the bytes the layer has left.
 */
import { createReadStream } from 'node:fs';
import { FerryError } from '../errors.js';
import type { Digest } from '../util/digest.js';
import { zstdDecode } from '../util/zstd.js';
import type { ContentBatch } from '../store/contents.js';
import type { Store } from '../store/store.js';
import type { BaselineTable } from './baseline.js';
import { GroupMembers, type GroupBody } from './group.js';
import type { DecodedBody } from './payload.js';
import type { ReferencePart, ReferenceSource } from './reference.js';

/** What a layer build lends its groups. */
export interface LayerGroupsContext {
  store: Store;
  table: BaselineTable;
  /** The body of the entry `k` places back in this layer (throws FERRY_ERR_BUNDLE_INVALID when there is none). */
  back(k: number): ReferencePart;
  batch: ContentBatch;
  /** Largest reference set read into memory. */
  maxReference: number;
  signal?: AbortSignal | undefined;
}

/** The groups of one layer rebuild. */
export class LayerGroups {
  private readonly members = new GroupMembers();
  private readonly source: ReferenceSource;

  constructor(private readonly c: LayerGroupsContext) {
    // a body this layer rebuilt may still be in the batch's temp file rather than under its name
    this.source = {
      openContent: async function* (d: Digest, o?: { maxSize?: number }) {
        const staged = await c.batch.stagedPath(d);
        if (staged) yield* zstdDecode(createReadStream(staged), o?.maxSize);
        else yield* c.store.openContent(d, o);
      },
    };
  }

  /**
   * Decodes a GROUP body whose members may add up to `maxOutput` bytes (what the layer has left):
   * stores every member and returns the first, this entry's body.
   */
  async open(b: Extract<DecodedBody, { kind: 'group' }>, maxOutput: number): Promise<GroupBody> {
    const total = b.sizes.reduce((a, s) => a + s, 0);
    if (total > maxOutput) throw new FerryError('FERRY_ERR_LIMIT_EXCEEDED', `a group of ${total} bytes takes the rebuilt layer past its size`);
    return this.members.open(b, {
      lookup: (i) => (i >= 0 && i < this.c.table.length ? this.c.table.entry(i) : undefined),
      earlier: (k) => this.c.back(k),
      source: this.source,
      put: (body, size) => this.c.batch.put(body, size),
      maxReference: this.c.maxReference,
      signal: this.c.signal,
    });
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
