/**
 * The code layout DESIGN.md section 3 and STYLE.md "Layout and layering" ask for, checked on the
 * sources: an agent ships core without publisher code, no package or test reaches into another
 * package by a relative path, and package.json dependencies mirror tsconfig references.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import * as core from '@ferry/core';
import { ROOT } from '@ferry/test-support';
import { describe, expect, it } from 'vitest';

const PACKAGES = join(ROOT, 'packages');

function filesUnder(dir: string, ext: RegExp): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const path = join(e.parentPath, e.name);
    if (e.isFile() && ext.test(e.name) && !/\/(node_modules|dist)\//.test(path)) out.push(path);
  }
  return out;
}

/** Relative import specifiers of a source file. */
function relativeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
}

/** Where a path belongs: its package (packages/<name>), or its top-level directory (test, bench). */
function areaOf(path: string): string {
  const [top, name] = relative(ROOT, path).split('/');
  return top === 'packages' ? `packages/${name}` : top!;
}

describe('code layout', () => {
  it('core exports no publisher-only code (bsdiff encoder, suffix sorting, bundle writer)', () => {
    const publisherOnly = ['bsdiff', 'suffixArray', 'SuffixIndex', 'BSDIFF_MAX_REFERENCE', 'signBundle', 'writeFerryFile', 'writeBundleDir', 'DEFAULT_CHUNK_SIZE'];
    expect(publisherOnly.filter((name) => name in core)).toEqual([]);
    // the decoder side stays
    expect(['bspatch', 'BSDIFF_BLOCK', 'readOps', 'encodeHeader', 'signEnvelope'].filter((name) => !(name in core))).toEqual([]);
  });

  it('no source or test imports another package (or the top-level tests) by a relative path', () => {
    const files = [...filesUnder(PACKAGES, /\.(ts|mts|js|mjs)$/), ...filesUnder(join(ROOT, 'test'), /\.(ts|mjs)$/), ...filesUnder(join(ROOT, 'bench'), /\.mjs$/)];
    const crossing: string[] = [];
    for (const file of files) {
      for (const spec of relativeImports(file)) {
        if (areaOf(resolve(file, '..', spec)) !== areaOf(file)) crossing.push(`${relative(ROOT, file)} imports ${spec}`);
      }
    }
    expect(crossing).toEqual([]);
  });

  it('package.json dependencies on @ferry packages mirror tsconfig references', () => {
    for (const name of readdirSync(PACKAGES)) {
      const pkg = JSON.parse(readFileSync(join(PACKAGES, name, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
      const tsconfig = JSON.parse(readFileSync(join(PACKAGES, name, 'tsconfig.json'), 'utf8')) as { references?: { path: string }[] };
      const deps = Object.keys(pkg.dependencies ?? {}).filter((d) => d.startsWith('@ferry/')).map((d) => d.slice('@ferry/'.length)).sort();
      const refs = (tsconfig.references ?? []).map((r) => r.path.replace(/^\.\.\//, '')).sort();
      expect(refs, `packages/${name}`).toEqual(deps);
    }
  });
});
