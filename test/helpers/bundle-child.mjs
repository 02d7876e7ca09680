// Computes a bundle app:v1 -> app:v2 in a store with a given temp directory, for
// test/bundle-errors.test.ts. Usage: node bundle-child.mjs STORE WORKDIR. Prints the error code
// (or "no error") and then returns without process.exit: the process must end by itself, which it
// cannot while a patch worker thread is left running. Uses the built packages.
import { Store, generateKeyPair, parsePrivateKey } from '@ferry/core';
import { createBundle } from '@ferry/differ';

const [storeDir, workDir] = process.argv.slice(2);
const key = parsePrivateKey(generateKeyPair().privatePem);
const store = await Store.open(storeDir);
try {
  const b = await createBundle(store, { from: ['app:v1'], to: 'app:v2', channel: 'c', release: 1, expires: 4e9, releaseKeys: [key], headerKeys: [key], workers: 2, level: 3, workDir });
  await b.dispose();
  console.log('no error');
} catch (err) {
  console.log(err.code ?? String(err));
}
