/**
 * Sketches of store contents, computed once per bundle by streaming each body from the store
 * (sketch.ts), with a note of whether the body looks like machine code or other binary data
 * (the bsdiff candidates of DESIGN.md section 5, "Encoding cost").
 */
import type { Digest, Store } from '@ferry/core';
import { Sketcher } from './sketch.js';

/** What is known of one body. */
export interface BodyInfo {
  sketch: Uint32Array;
  /** ELF, or a NUL byte in the first 8 KiB: bsdiff is tried against a same-path reference. */
  binary: boolean;
}

const ELF = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const SNIFF = 8192;

function looksBinary(head: Uint8Array): boolean {
  return Buffer.from(head.buffer, head.byteOffset, Math.min(head.length, 4)).equals(ELF) || head.subarray(0, SNIFF).includes(0);
}

/** Body infos by digest, read from one store. */
export class SketchCache {
  private readonly infos = new Map<Digest, BodyInfo>();
  /** Body bytes read so far (a figure for reports). */
  bytesRead = 0;

  constructor(private readonly store: Store) {}

  /** The body's info, read from the store the first time it is asked for. */
  async get(digest: Digest, size: number, signal?: AbortSignal): Promise<BodyInfo> {
    const known = this.infos.get(digest);
    if (known) return known;
    signal?.throwIfAborted();
    const s = new Sketcher();
    let head: Uint8Array | undefined;
    for await (const c of this.store.openContent(digest, { maxSize: size, verify: false })) {
      head ??= c;
      s.update(c);
    }
    this.bytesRead += size;
    const info = { sketch: s.digest(), binary: head !== undefined && looksBinary(head) };
    this.infos.set(digest, info);
    return info;
  }

  /** Forgets target bodies once their layer is planned (baseline bodies are asked for again). */
  forget(digests: Iterable<Digest>): void {
    for (const d of digests) this.infos.delete(d);
  }
}
