// Runs gc on a store from another process (test/apply-steps.test.ts), retrying while another
// process holds the store lock. Usage: node gc-child.mjs STORE [REF_TO_REMOVE]. Prints the gc
// report as JSON. Uses the built packages (dist).
import { setTimeout as sleep } from 'node:timers/promises';
import { Store, gc } from '@ferry/core';

const [dir, removeRef] = process.argv.slice(2);
const store = await Store.open(dir);
if (removeRef) await store.deleteRef(removeRef);
for (let attempt = 0; ; attempt++) {
  try {
    const report = await gc(store);
    process.stdout.write(JSON.stringify({ attempts: attempt + 1, report }) + '\n');
    break;
  } catch (err) {
    if (err?.code !== 'FERRY_ERR_STORE_LOCKED' || attempt > 1200) throw err;
    await sleep(25);
  }
}
