// The agent side of the link bench, in its own process so its peak RSS is its own: fetches a
// bundle's header and chunks from a repository URL (through linksim) with the agent's ChunkFetcher
// and applies it with the applier's steps (planApply, rebuildLayer per layer as its chunks arrive,
// commitApply). This is the one module to swap for `ferry agent --once` when the agent daemon lands.
// Usage: node link-agent.mjs '{"store","cache","repo","bundle","publicPem","fetcher":{...}}'
// Prints `RESULT {json}`: seconds (header request to commit), maxRss, manifestDigest, link stats.
import { setTimeout as delay } from 'node:timers/promises';
import { ChunkFetcher } from '@ferry/agent';
import { Store, chunkLength, commitApply, parsePublicKey, planApply, rebuildLayer, rolePolicy, verifyHeader } from '@ferry/core';

const p = JSON.parse(process.argv[2]);
const key = parsePublicKey(p.publicPem);
const trust = { release: rolePolicy([key]), header: rolePolicy([key]) };

/** The header, retried while the link is down (its bytes count on the wire like everything else). */
async function fetchHeader(url) {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
      if (res.ok) return { bytes: new Uint8Array(await res.arrayBuffer()), attempts: attempt + 1 };
    } catch {
      // the link is down: try again
    }
    await delay(Math.min(4000, 250 * 2 ** attempt));
  }
}

const t0 = performance.now();
const header = await fetchHeader(new URL(`headers/${p.bundle.slice(7)}`, p.repo));
const h = verifyHeader(header.bytes, { trust });
const store = await Store.open(p.store);
const plan = await planApply(store, h);
const fetcher = await ChunkFetcher.open({ cacheDir: p.cache, sources: [p.repo], ...p.fetcher });
let result;
try {
  const chunks = plan.chunks.map((i) => ({ digest: h.chunks[i], size: chunkLength(h, i) }));
  const fetching = fetcher.fetch(chunks);
  fetching.catch(() => {}); // awaited below; a rebuild waiting on it fails with its error first
  const source = fetcher.chunkSource();
  for (const layer of plan.rebuild) await rebuildLayer(store, plan, layer, source);
  const summary = await fetching;
  const applied = await commitApply(store, plan);
  result = { manifestDigest: applied.manifestDigest, payloadBytes: plan.payloadBytes, chunks: chunks.length, headerBytes: header.bytes.length, headerAttempts: header.attempts, fetched: summary.fetched, link: summary.progress.link };
} finally {
  fetcher.close();
}
const seconds = (performance.now() - t0) / 1000;
const ru = process.resourceUsage();
console.log(`RESULT ${JSON.stringify({ ...result, seconds, maxRss: ru.maxRSS * 1024 })}`);
