// Applies a bundle layer by layer with planApply/rebuildLayer and never gets chunk HOLD, as an
// agent whose link went down would (test/apply-steps.test.ts kills it there).
// Usage: node steps-child.mjs STORE BUNDLE PUBLIC_KEY_PEM_FILE HOLD_CHUNK IDLE_MS
// Prints "layer <index>" after each rebuilt layer and "holding" when chunk HOLD is asked for.
import { readFile } from 'node:fs/promises';
import { Store, openBundle, parsePublicKey, planApply, rebuildLayer, rolePolicy, verifyHeader } from '@ferry/core';

const [storeDir, bundlePath, keyFile, hold, idleMs] = process.argv.slice(2);
const key = parsePublicKey(await readFile(keyFile, 'utf8'));
const store = await Store.open(storeDir);
const source = await openBundle(bundlePath);
const header = verifyHeader(source.headerBytes, { trust: { release: rolePolicy([key]), header: rolePolicy([key]) } });
const plan = await planApply(store, header);
const chunks = source.chunks(header);
const held = {
  readChunk(index, digest, size, signal) {
    if (index !== Number(hold)) return chunks.readChunk(index, digest, size, signal);
    process.stdout.write('holding\n');
    setInterval(() => {}, 60_000); // the link never comes back: stay alive until killed
    return new Promise(() => {});
  },
};
for (const l of plan.rebuild) {
  await rebuildLayer(store, plan, l, held, { idleMs: Number(idleMs) });
  process.stdout.write(`layer ${l.index}\n`);
}
process.stdout.write('finished\n');
