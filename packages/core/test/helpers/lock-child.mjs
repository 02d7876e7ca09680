// A contender for a store lock (packages/core/test/lock.test.ts). Usage: node lock-child.mjs ROOT.
// Prints "ready"; then, for each "go" line on stdin, tries acquireLock(ROOT) and prints "won" or
// "lost <code>". A winner holds the lock until the next line: "release" releases it (and prints
// "released"), anything else ends the process; the parent may also SIGKILL a winner to leave a
// stale lock. Uses the built package (packages/core/dist).
import { createInterface } from 'node:readline';
import { acquireLock } from '@ferry/core';

const [root] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const next = async () => (await lines.next()).value;

process.stdout.write('ready\n');
while ((await next()) === 'go') {
  let release;
  try {
    release = await acquireLock(root);
  } catch (err) {
    process.stdout.write(`lost ${err.code ?? err.message}\n`);
    continue;
  }
  process.stdout.write('won\n');
  if ((await next()) !== 'release') break;
  await release();
  process.stdout.write('released\n');
}
process.exit(0);
