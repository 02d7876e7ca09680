#!/usr/bin/env node
// The `ferry` command. This file is tracked and exists before the build: npm links a workspace's
// bins when it installs, before `prepare` compiles dist/, so a bin inside dist/ is not linked on a
// fresh clone and `npx ferry` then asks the registry instead. It runs the compiled CLI.
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('ferry: the CLI is not built yet (packages/cli/dist/main.js is missing): run `npm run build` (npm ci does it)\n');
  process.exit(1);
}
await import(main.href);
