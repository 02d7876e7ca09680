/**
 * What a pushed image's source declared about its layers: the compressed blob sizes of its
 * manifest (gzip or zstd, as it was pushed). They are what `docker pull` of that image sends for a
 * layer, so the operator's views compare bundles with them; the server never recompresses a layer
 * to find out (docs/protocol.md section 5).
 */
import type { Kysely } from 'kysely';
import type { Digest } from '@ferry/core';
import type { Database } from './schema.js';

/** One layer as the source declared it. */
export interface SourceLayer {
  diffId: Digest;
  mediaType: string;
  /** Compressed blob size in bytes. */
  size: number;
}

/** Declared source layers, by store manifest. */
export class ImageState {
  constructor(private readonly db: Kysely<Database>) {}

  /** Records (or replaces) what the source of `manifest` declared. */
  async putSourceLayers(manifest: Digest, layers: readonly SourceLayer[]): Promise<void> {
    if (layers.length === 0) return;
    await this.db
      .insertInto('source_layers')
      .values(layers.map((l) => ({ manifest, diff_id: l.diffId, media_type: l.mediaType, size: l.size })))
      .onConflict((oc) => oc.columns(['manifest', 'diff_id']).doUpdateSet((eb) => ({ media_type: eb.ref('excluded.media_type'), size: eb.ref('excluded.size') })))
      .execute();
  }

  /** The declared layers of the images with these manifests, by manifest then diff_id. */
  async sourceLayers(manifests: readonly Digest[]): Promise<Map<Digest, Map<Digest, SourceLayer>>> {
    const out = new Map<Digest, Map<Digest, SourceLayer>>();
    if (manifests.length === 0) return out;
    const rows = await this.db.selectFrom('source_layers').selectAll().where('manifest', 'in', [...new Set(manifests)]).execute();
    for (const r of rows) {
      const m = out.get(r.manifest as Digest) ?? new Map<Digest, SourceLayer>();
      m.set(r.diff_id as Digest, { diffId: r.diff_id as Digest, mediaType: r.media_type, size: r.size });
      out.set(r.manifest as Digest, m);
    }
    return out;
  }
}
