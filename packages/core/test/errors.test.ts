import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '@ferry/test-support';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, FerryError, toFerryError } from '../src/index.js';

const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');

describe('error codes', () => {
  it('docs/errors.md lists exactly the codes in ERROR_CODES, with the same retryability', () => {
    const rows = [...doc.matchAll(/^\| `(FERRY_ERR_[A-Z_]+)` \| (yes|no) \|/gm)].map((m) => [m[1], m[2] === 'yes'] as const);
    expect(rows.map(([c]) => c).sort()).toEqual(Object.keys(ERROR_CODES).sort());
    for (const [code, retryable] of rows) expect(ERROR_CODES[code as keyof typeof ERROR_CODES].retryable).toBe(retryable);
  });

  it('codes follow FERRY_ERR_<AREA>_<WHAT>', () => {
    for (const code of Object.keys(ERROR_CODES)) expect(code).toMatch(/^FERRY_ERR_[A-Z]+(_[A-Z0-9]+)*$/);
  });

  it('maps system errors to FERRY_ERR_IO and keeps the cause', () => {
    const sys = Object.assign(new Error('no space left on device'), { code: 'ENOSPC', syscall: 'write', path: '/x' });
    const e = toFerryError(sys, 'writing /x');
    expect(e).toBeInstanceOf(FerryError);
    expect(e.code).toBe('FERRY_ERR_IO');
    expect(e.retryable).toBe(true);
    expect(e.cause).toBe(sys);
    expect(toFerryError(e)).toBe(e);
    expect(toFerryError(new Error('boom')).code).toBe('FERRY_ERR_INTERNAL');
  });
});
