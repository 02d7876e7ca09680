// Child of zstd-memory.test.ts: `node zstd-memory-child.mjs CASE`, prints one JSON line.
//   compress: RSS kept after two level-19 zstdCompress calls over ZSTD_REUSE_INPUT_MAX, once
//             collected (a cached context would keep its tables);
//   patch:    peak RSS added by a long-path zstdPatchEncode (an 8 MiB reference, a 256 KiB target),
//             the frame's size, whether two encodes are byte-identical and whether it decodes back.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ZSTD_REUSE_INPUT_MAX, zstdCompress, zstdPatchDecode, zstdPatchEncode } from '@ferry/core';
import { peakRss } from '@ferry/test-support/peak-rss';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');

/** Deterministic text-like bytes (words from a small alphabet, an LCG picking them). */
function text(size, seed) {
  const out = Buffer.alloc(size);
  let x = seed >>> 0;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = (x >>> 24) % 13 === 0 ? 10 : 97 + ((x >>> 16) % 23);
  }
  return out;
}

async function settle() {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

// this process's own high-water mark: maxRSS would start at the vitest worker's RSS (counted between
// fork and exec) and hide any peak below it
const kb = () => peakRss() / 1024;

if (process.argv[2] === 'compress') {
  const data = text(ZSTD_REUSE_INPUT_MAX * 2, 1);
  await settle();
  const before = process.memoryUsage().rss;
  for (let i = 0; i < 2; i++) zstdCompress(data, { compressionLevel: 19 });
  await settle();
  console.log(JSON.stringify({ kept: process.memoryUsage().rss - before }));
} else {
  const ref = text(8 * 1024 * 1024, 2);
  const target = Buffer.concat([ref.subarray(1 << 20, (1 << 20) + (128 << 10)), text(128 << 10, 3)]);
  await settle();
  const before = kb();
  const a = zstdPatchEncode(ref, target, 19);
  const peak = (kb() - before) * 1024;
  await settle();
  const b = zstdPatchEncode(ref, target, 19);
  const back = zstdPatchDecode(a, ref, target.length);
  console.log(JSON.stringify({ peak, bytes: a.length, same: a.equals(b), roundTrip: Buffer.from(back).equals(target) }));
}
