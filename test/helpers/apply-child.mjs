// Applies a bundle to a store, for tests that kill it mid-way (test/apply-kill.test.ts).
// Usage: node apply-child.mjs STORE BUNDLE PUBLIC_KEY_PEM_FILE. Prints "ready" just before the
// apply starts and "done <ms>" when it has finished. Uses the built packages (dist).
import { readFile } from 'node:fs/promises';
import { Store, applyBundle, openBundle, parsePublicKey, rolePolicy } from '@ferry/core';

const [storeDir, bundlePath, keyFile] = process.argv.slice(2);
const key = parsePublicKey(await readFile(keyFile, 'utf8'));
const store = await Store.open(storeDir);
const source = await openBundle(bundlePath);
process.stdout.write('ready\n');
const t0 = performance.now();
await applyBundle(store, source, { trust: { release: rolePolicy([key]), header: rolePolicy([key]) } });
process.stdout.write(`done ${Math.round(performance.now() - t0)}\n`);
