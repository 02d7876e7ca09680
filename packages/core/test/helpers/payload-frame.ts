/** Payload frames made in tests: OpWriter records compressed into one zstd frame, fed back to readOps. */
import { OpWriter, zstdCompressStream } from '../../src/index.js';

/** One frame holding `write`'s records, as the compressor's output pieces. */
export async function frameOf(write: (w: OpWriter) => void): Promise<Uint8Array[]> {
  const z = zstdCompressStream({ compressionLevel: 3 });
  const out: Uint8Array[] = [];
  const done = (async () => {
    for await (const c of z as AsyncIterable<Buffer>) out.push(c);
  })();
  write(new OpWriter(z));
  z.end();
  await done;
  return out;
}

/** The pieces as an async source. */
export async function* chunks(list: Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* list;
}
