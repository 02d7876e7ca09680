// Rewrites src/protocol/checks.ts from the built schemas (run `npx tsc -b` first).
import { writeFileSync } from 'node:fs';
import { renderChecks } from '@ferry/core/protocol';

const file = new URL('../src/protocol/checks.ts', import.meta.url);
writeFileSync(file, renderChecks());
console.log(`wrote ${file.pathname}`);
