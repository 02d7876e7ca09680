#!/usr/bin/env node
/**
 * The `ferry` executable: the only place that reads argv, the environment and the process's
 * stdio (STYLE.md "Layout and layering"). Everything else is in cli.ts.
 */
import { commandWordIndex } from './command-word.js';
import { capYoungGeneration } from './memory.js';
// the commands that run on a device, within its memory budget; the publisher's and the server's
// commands keep V8's default young generation (fewer scavenges while they allocate fast)
const args = process.argv.slice(2);
const at = commandWordIndex(args);
if (at !== undefined && (args[at] === 'apply' || args[at] === 'agent')) capYoungGeneration();
const { readFileSync } = await import('node:fs');
const { runCli } = await import('./cli.js');

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // a closed pipe (| head) ends the command; the write error surfaces where it was written
  process.stdout.on('error', () => {});
  const code = await runCli(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    cwd: process.cwd(),
    storeFromEnv: process.env.FERRY_STORE,
    serverFromEnv: process.env.FERRY_SERVER,
    tokenFromEnv: process.env.FERRY_TOKEN,
    debug: process.env.FERRY_DEBUG === '1',
    version: version(),
    signal: controller.signal,
  });
  process.exitCode = code;
}

await main();
