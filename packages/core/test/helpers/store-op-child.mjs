// A store operation that retries while the store is locked (packages/core/test/lock.test.ts).
// Usage: node store-op-child.mjs import STORE LAYOUT REF | gc STORE. Prints "ready", waits for
// "go" on stdin, then runs the operation, retrying on FERRY_ERR_STORE_LOCKED, and prints
// "done <tries>". Uses the built package (packages/core/dist).
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { Store, gc, importImage, openImage } from '@ferry/core';

const [op, storeDir, layout, ref] = process.argv.slice(2);
const store = await Store.open(storeDir);
const source = op === 'import' ? await openImage(layout) : undefined;
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
process.stdout.write('ready\n');
if ((await lines.next()).value !== 'go') process.exit(2);
for (let tries = 1; ; tries++) {
  try {
    if (source) await importImage(store, source, ref);
    else await gc(store);
    process.stdout.write(`done ${tries}\n`);
    process.exit(0);
  } catch (err) {
    if (err.code !== 'FERRY_ERR_STORE_LOCKED' || tries > 2000) throw err;
    await delay(5);
  }
}
