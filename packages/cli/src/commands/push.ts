/** `ferry push`: import an image into the local store, then send the server what it lacks. */
import { Store } from '@ferry/core';
import type { CommandSpec } from '../command.js';
import { writeJson, writeLines, type Invocation } from '../context.js';
import { EXIT } from '../errors.js';
import { humanBytes, plural, shortDigest } from '../format.js';
import { createProgress } from '../progress.js';
import { declaredLayers, pushImage } from '../push.js';
import { REMOTE_OPTIONS, apiClient } from '../remote.js';
import { importFromSource } from './import.js';

async function run(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const client = apiClient(inv);
  const { result: imported, source } = await importFromSource(inv);
  const store = await Store.open(global.store);
  const progress = createProgress(ctx, { json: global.json });
  let r;
  try {
    r = await pushImage(store, imported.ref, client, { signal: ctx.signal, onProgress: progress.update, sourceLayers: declaredLayers(source) });
  } finally {
    progress.stop();
  }
  if (global.json) writeJson(ctx, r);
  else {
    writeLines(ctx, [
      `pushed ${r.ref} (image ID ${shortDigest(r.config)})`,
      `  layers: ${r.layers.sent} of ${r.layers.total} sent (the server had the others)`,
      `  contents: ${plural(r.contents.sent, 'content')} sent (${humanBytes(r.bytesSent)} zstd) of ${r.contents.total} in the new layers`,
    ]);
  }
  return EXIT.ok;
}

/** The push command. */
export const pushCommand: CommandSpec = {
  name: 'push',
  summary: 'Upload an image (OCI layout or docker archive) to a ferry server, sending only the contents it lacks; an interrupted push resumes.',
  args: 'SOURCE',
  positionals: { min: 1, max: 1 },
  options: {
    ref: { type: 'string', arg: 'NAME:TAG', description: "name of the image on the server (default: the source's own name:tag)" },
    platform: { type: 'string', arg: 'OS/ARCH[/VARIANT]', description: 'platform to take from a multi-platform index (default: this host)' },
    'source-ref': { type: 'string', arg: 'TAG', description: 'which image of the source to take, when it holds several' },
    ...REMOTE_OPTIONS,
  },
  notes: [
    'The image is first imported into the local store (--store, a cache: later pushes reuse it), then',
    'pushed: the server is asked which layers and contents it lacks, and only those are sent.',
    'The token must be a publisher token (ferry tokens add --role publisher).',
    'example:',
    '  ferry push ./app-oci:v2 --ref app:v2 --server https://ferry.example:8443 --token fyp_...',
  ],
  run,
};
