/**
 * Sketches of store contents (sketch.ts), computed once per bundle by the patch pool's workers
 * (reading and hashing every candidate body is the bulk of matching's work), with a note of
 * whether the body looks like machine code or other binary data (the bsdiff candidates of
 * DESIGN.md section 5, "Encoding cost").
 */
import type { Digest } from '@ferry/core';
import type { PatchPool } from './patch-pool.js';

/** What is known of one body. */
export interface BodyInfo {
  sketch: Uint32Array;
  /** ELF, or a NUL byte in the first 8 KiB: bsdiff is tried against a same-path reference. */
  binary: boolean;
}

/** Memory a sketch job is estimated to need: one store read buffer and the fingerprints. */
const SKETCH_MEMORY = 4e6;

/** Body infos by digest. */
export class SketchCache {
  private readonly infos = new Map<Digest, Promise<BodyInfo>>();
  /** Body bytes sketched so far (a figure for reports). */
  bytesRead = 0;

  constructor(private readonly pool: PatchPool) {}

  /** The body's info, computed by a worker the first time it is asked for; ask for many at once to use every worker. */
  get(digest: Digest, size: number, signal?: AbortSignal): Promise<BodyInfo> {
    const known = this.infos.get(digest);
    if (known) return known;
    signal?.throwIfAborted();
    const p = this.pool.run({ kind: 'sketch', body: { digest, size } }, SKETCH_MEMORY).then((r) => {
      if (r.job !== 'sketch') throw new Error(`a sketch job answered ${r.job}`);
      return { sketch: r.sketch, binary: r.binary };
    });
    this.bytesRead += size;
    this.infos.set(digest, p);
    return p;
  }

  /** Forgets target bodies once their layer is planned (baseline bodies are asked for again). */
  forget(digests: Iterable<Digest>): void {
    for (const d of digests) this.infos.delete(d);
  }
}
