/** `ferry images` and `ferry rm`: the store's refs (DESIGN.md section 4: refs are the mutable part). */
import { Store, parseRef } from '@ferry/core';
import type { CommandSpec } from '../command.js';
import { writeJson, writeLines, type Invocation } from '../context.js';
import { EXIT } from '../errors.js';
import { humanBytes, shortDigest, table } from '../format.js';

async function listImages(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const store = await Store.open(global.store);
  const images = [];
  for (const { ref, manifest } of await store.listRefs()) {
    const img = await store.imageByManifest(ref, manifest);
    images.push({ ref, imageId: shortDigest(img.configDigest), configDigest: img.configDigest, manifestDigest: img.manifestDigest, layers: img.layers.length, size: img.layers.reduce((a, l) => a + l.size, 0) });
  }
  if (global.json) {
    writeJson(ctx, { store: global.store, images });
    return EXIT.ok;
  }
  if (images.length === 0) {
    writeLines(ctx, [`no images in ${global.store}`]);
    return EXIT.ok;
  }
  const rows = images.map((i) => [i.ref, i.imageId, String(i.layers), humanBytes(i.size)]);
  writeLines(ctx, table([['REF', 'IMAGE ID', 'LAYERS', 'SIZE'], ...rows], ['left', 'left', 'right', 'right']));
  return EXIT.ok;
}

async function removeRefs(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  for (const ref of inv.positionals) parseRef(ref);
  const store = await Store.open(global.store);
  const removed: string[] = [];
  await store.withLock(async () => {
    for (const ref of inv.positionals) await store.resolve(ref); // all or nothing: unknown refs first
    for (const ref of inv.positionals) {
      await store.deleteRef(ref);
      removed.push(ref);
    }
  });
  if (global.json) writeJson(ctx, { removed });
  else writeLines(ctx, [...removed.map((r) => `removed ${r}`), "its contents stay until 'ferry gc' frees what no image uses"]);
  return EXIT.ok;
}

/** The images command. */
export const imagesCommand: CommandSpec = {
  name: 'images',
  summary: 'List the images in the store: ref, image ID (config digest), layers, uncompressed size.',
  args: '',
  positionals: { min: 0, max: 0 },
  options: {},
  run: listImages,
};

/** The rm command. */
export const rmCommand: CommandSpec = {
  name: 'rm',
  summary: "Remove image refs from the store; 'ferry gc' then frees what no other image uses.",
  args: 'NAME:TAG...',
  positionals: { min: 1, max: Number.POSITIVE_INFINITY },
  options: {},
  run: removeRefs,
};
