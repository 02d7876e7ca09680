/**
 * The compiled checks (src/protocol/checks.ts) are generated from the TypeBox schemas; importing
 * `@ferry/core` must not load TypeBox (it costs `ferry apply` and the agent about 8 MB of RSS).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadedModules } from '@ferry/test-support';
import { describe, expect, it } from 'vitest';
import { renderChecks } from '../src/protocol/full.js';

const coreDir = fileURLToPath(new URL('..', import.meta.url));

function typeboxLoadedBy(specifier: string): string[] {
  const r = loadedModules(['--input-type=module', '-e', `await import(${JSON.stringify(specifier)}); console.log('imported');`], { cwd: coreDir, pattern: /@sinclair\/typebox/ });
  expect([r.status, r.stdout.trim(), r.stderr.trim()]).toEqual([0, 'imported', '']);
  return r.modules;
}

describe('compiled protocol checks', () => {
  it('checks.ts is what the schemas generate (run `npm run gen:protocol -w @ferry/core` after changing a schema)', () => {
    expect(readFileSync(new URL('../src/protocol/checks.ts', import.meta.url), 'utf8')).toBe(renderChecks());
  });

  it('importing @ferry/core loads no TypeBox; @ferry/core/protocol does', () => {
    expect(typeboxLoadedBy('@ferry/core')).toEqual([]);
    expect(typeboxLoadedBy('@ferry/core/protocol').length).toBeGreaterThan(0);
  });
});
