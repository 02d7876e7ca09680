/**
 * Builds the CLI (tsc -b, which builds core first) when dist/main.js is older than any source.
 * Test files run in parallel processes, so the build runs under a lock directory.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The monorepo root. */
export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../..');
/** The built CLI entry. */
export const MAIN = join(ROOT, 'packages/cli/dist/main.js');

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

function upToDate(): boolean {
  try {
    const built = statSync(MAIN).mtimeMs;
    return ['packages/cli/src', 'packages/core/src', 'packages/differ/src', 'packages/imagegen/src', 'packages/linksim/src', 'packages/server/src'].every((d) => newest(join(ROOT, d)) <= built);
  } catch {
    return false;
  }
}

async function withLock(fn: () => void): Promise<void> {
  const lock = join(ROOT, 'packages/cli/.build-lock');
  for (let i = 0; ; i++) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // another test process builds; a lock older than 5 minutes is stale
      if (Date.now() - statSync(lock, { throwIfNoEntry: false })!.mtimeMs > 300_000) rmSync(lock, { recursive: true, force: true });
      if (i > 1200) throw new Error('timed out waiting for the CLI build lock');
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Makes sure packages/cli/dist is built from the current sources. */
export async function ensureBuilt(): Promise<void> {
  if (upToDate()) return;
  await withLock(() => {
    if (upToDate()) return;
    // tsc -b only rewrites outputs whose inputs changed: touch main.js so the check above settles
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', 'packages/cli'], { cwd: ROOT, stdio: 'inherit' });
    const now = new Date();
    utimesSync(MAIN, now, now);
  });
}
