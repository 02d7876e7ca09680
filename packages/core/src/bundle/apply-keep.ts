/**
 * Stashed group members kept in memory for their MEMBER entries (docs/format.md section 5.3). A
 * GROUP writes its later members as contents at once; each MEMBER entry then hashes its body into
 * the layer. Read back from its file, that cost dep-bump's layer 4,279 opens, reads and decodes of
 * bodies it had just written. The members of a group mostly follow it closely in tar order, so a
 * small slab (KEEP_BYTES, allocated once per layer) holds them until taken: memory stays bounded,
 * and a member that does not fit is read from its file as before.
 */

/**
 * The slab's size: about 10 members of dep-bump's average 24 kB. 2 MiB kept all 4,144 of its
 * members, but the agent's RSS peaks while this layer is rebuilt, and on the dep-bump link bench
 * it then peaked at 134.8-135.2 MB, over 128 MiB, against 133.9 MB with this size.
 */
export const KEEP_BYTES = 256 * 1024;

/** Bodies kept by digest (hex) in one slab, each until taken. */
export class KeptBodies {
  private slab: Buffer | undefined;
  private used = 0;
  private readonly held = new Map<string, Buffer>();

  /** Space for a body of `size` bytes, or undefined when the slab has none left. */
  reserve(size: number): Buffer | undefined {
    // the slab is reused from its start once every body in it was taken
    if (this.held.size === 0) this.used = 0;
    if (this.used + size > KEEP_BYTES) return undefined;
    this.slab ??= Buffer.allocUnsafe(KEEP_BYTES);
    const b = this.slab.subarray(this.used, this.used + size);
    this.used += size;
    return b;
  }

  /** Keeps a reserved body, filled, under its digest (a digest already kept stays as it is). */
  keep(hex: string, body: Buffer): void {
    if (!this.held.has(hex)) this.held.set(hex, body);
  }

  /** Takes the body kept under `hex` of `size` bytes (it is no longer kept), or undefined. */
  take(hex: string, size: number): Buffer | undefined {
    const b = this.held.get(hex);
    if (!b || b.length !== size) return undefined;
    this.held.delete(hex);
    return b;
  }

  /** Bodies kept now. */
  get size(): number {
    return this.held.size;
  }
}
