// Imports an image into a store, for tests that kill it mid-way (test/import-kill.test.ts).
// Usage: node import-child.mjs STORE LAYOUT REF. Prints "ready" just before the import starts and
// "done <ms>" when it has finished. Uses the built package (packages/core/dist).
import { Store, importImage, openImage } from '@ferry/core';

const [storeDir, layoutDir, ref] = process.argv.slice(2);
const store = await Store.open(storeDir, { create: true });
const source = await openImage(layoutDir);
process.stdout.write('ready\n');
const t0 = performance.now();
await importImage(store, source, ref);
process.stdout.write(`done ${Math.round(performance.now() - t0)}\n`);
