// Applies a bundle and reports how it failed and the process's peak RSS, for the bounded-decoding
// tests (test/apply-bounds.test.ts), which run it with a small heap.
// Usage: node --max-old-space-size=64 apply-bounded-child.mjs STORE BUNDLE PUBLIC_KEY_PEM_FILE
import { readFile } from 'node:fs/promises';
import { Store, applyBundle, openBundle, parsePublicKey, rolePolicy } from '@ferry/core';

const [storeDir, bundlePath, keyFile] = process.argv.slice(2);
const key = parsePublicKey(await readFile(keyFile, 'utf8'));
let code = 'applied';
try {
  await applyBundle(await Store.open(storeDir), await openBundle(bundlePath), { trust: { release: rolePolicy([key]), header: rolePolicy([key]) } });
} catch (err) {
  code = err?.code ?? `not a FerryError: ${err}`;
}
// VmHWM, not resourceUsage().maxRSS: on Linux ru_maxrss survives fork and exec, so it would
// report the test runner's own peak; VmHWM belongs to this program's address space
const hwm = /VmHWM:\s+(\d+) kB/.exec(await readFile('/proc/self/status', 'utf8'));
process.stdout.write(JSON.stringify({ code, maxRss: Number(hwm?.[1]) * 1024 }) + '\n');
