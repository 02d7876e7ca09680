// Fetches a payload's chunks into a cache, for tests that kill it mid-way (test/fetch-kill.test.ts).
// Usage: node fetch-child.mjs CACHE_DIR SOURCE_URL CHUNKS_JSON. Prints "ready" when the fetch
// starts and "done <ms>" when every chunk is verified in the cache. Uses the built packages (dist).
import { readFile } from 'node:fs/promises';
import { ChunkFetcher } from '@ferry/agent';

const [cacheDir, source, chunksFile] = process.argv.slice(2);
const chunks = JSON.parse(await readFile(chunksFile, 'utf8'));
const fetcher = await ChunkFetcher.open({ cacheDir, sources: [source], checkpointMs: 100, minRetryMs: 50, maxRetryMs: 500 });
process.stdout.write('ready\n');
const t0 = performance.now();
try {
  await fetcher.fetch(chunks);
} finally {
  fetcher.close();
}
process.stdout.write(`done ${Math.round(performance.now() - t0)}\n`);
