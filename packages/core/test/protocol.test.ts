import { describe, expect, it } from 'vitest';
import { FerryError, PROTOCOL_LIMITS, digestFromHex, errorBody, errorFromBody, fitsMessage, inventoryDigest, messages, sha256, tokenRole, type CheckinRequest } from '../src/index.js';
import { Value } from '@sinclair/typebox/value';
import { SCHEMAS, protocol } from '../src/protocol/full.js';

const d = (s: string) => sha256(s);

function checkin(over: Partial<CheckinRequest> = {}): CheckinRequest {
  return { counter: 5, channels: ['stable'], inventory: { digest: inventoryDigest([d('a')]), layers: [d('a')] }, ...over };
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as FerryError).code;
  }
  return 'no error';
}

describe('protocol shapes', () => {
  it('accepts a well-formed check-in and tolerates fields a newer agent adds', () => {
    const req = { ...checkin(), future: { anything: 1 } };
    expect(protocol.checkinRequest(req).counter).toBe(5);
  });

  it('refuses each malformed field with FERRY_ERR_PROTOCOL_INVALID', () => {
    const bad: unknown[] = [
      null,
      'text',
      checkin({ counter: 0 }),
      checkin({ counter: 1.5 }),
      { ...checkin(), counter: '7' },
      checkin({ channels: [] }),
      checkin({ channels: ['../etc'] }),
      checkin({ channels: Array.from({ length: PROTOCOL_LIMITS.channels + 1 }, (_, i) => `c${i}`) }),
      checkin({ inventory: { digest: 'sha256:xyz' as never } }),
      checkin({ inventory: { digest: d('x'), layers: Array.from({ length: PROTOCOL_LIMITS.inventoryLayers + 1 }, () => d('a')) } }),
      checkin({ reports: [{ counter: 1 } as never] }),
    ];
    for (const v of bad) {
      expect(code(() => protocol.checkinRequest(v))).toBe('FERRY_ERR_PROTOCOL_INVALID');
      // the compiled check that decides agrees with TypeBox's own reading of the schema
      expect(Value.Check(SCHEMAS.checkinRequest, v)).toBe(false);
    }
    expect([fitsMessage('checkinRequest', checkin()), Value.Check(SCHEMAS.checkinRequest, checkin())]).toEqual([true, true]);
  });

  it('checks answers as strictly as requests (the agent trusts no server)', () => {
    const ok = { now: 1, retryAfter: 60, needInventory: false, assignments: [{ channel: 'stable', state: 'ready', release: 2, bundle: { id: d('b'), payloadSize: 10, chunkSize: 65536, chunks: 1, baseline: 1 }, repository: 'http://x/repo/' }] };
    expect(protocol.checkinAnswer(ok).assignments[0]!.state).toBe('ready');
    expect(code(() => protocol.checkinAnswer({ ...ok, assignments: [{ channel: 'stable', state: 'weird' }] }))).toBe('FERRY_ERR_PROTOCOL_INVALID');
    expect(code(() => protocol.checkinAnswer({ ...ok, retryAfter: -1 }))).toBe('FERRY_ERR_PROTOCOL_INVALID');
  });

  it('the compiled checks decide answers; a misfit still names its first bad field', async () => {
    const ok = { now: 1, retryAfter: 60, needInventory: false, assignments: [{ channel: 'stable', state: 'ready', release: 2 }] };
    expect((await messages.checkinAnswer(ok)).assignments[0]!.release).toBe(2);
    const bad = { ...ok, assignments: [{ channel: 'stable', state: 'weird' }] };
    await expect(messages.checkinAnswer(bad)).rejects.toMatchObject({ code: 'FERRY_ERR_PROTOCOL_INVALID', message: expect.stringMatching(/^check-in answer .* at \/assignments\/0\/state/) });
    await expect(messages.reportsAnswer({ accepted: 1 })).rejects.toMatchObject({ code: 'FERRY_ERR_PROTOCOL_INVALID' });
  });

  it('names the first bad field in the message', () => {
    expect(() => protocol.reportsRequest({ counter: 3, reports: [{ counter: 1, state: 'lost' }] })).toThrow(/\/reports\/0/);
  });
});

describe('protocol helpers', () => {
  it('inventory digest is order- and duplicate-independent', () => {
    expect(inventoryDigest([d('b'), d('a'), d('a')])).toBe(inventoryDigest([d('a'), d('b')]));
    expect(inventoryDigest([d('a'), d('b')])).toBe(sha256([d('a'), d('b')].sort().join('\n')));
  });

  it('URL digests are 64 lowercase hex digits, nothing else', () => {
    const hex = d('x').slice(7);
    expect(digestFromHex(hex)).toBe(`sha256:${hex}`);
    for (const s of ['../../etc/passwd', hex.toUpperCase(), `${hex}0`, `sha256:${hex}`, '', `${hex.slice(0, 63)}/`]) expect(code(() => digestFromHex(s))).toBe('FERRY_ERR_DIGEST_INVALID');
  });

  it('token roles come from their prefixes', () => {
    expect(tokenRole('fya_abc')).toBe('agent');
    expect(tokenRole('fyx_abc')).toBe('admin');
    expect(tokenRole('abc')).toBeUndefined();
  });

  it('an error body round-trips to the same code; anything else is FERRY_ERR_PROTOCOL_INVALID', () => {
    const e = errorFromBody(errorBody(new FerryError('FERRY_ERR_BUNDLE_ROLLBACK', 'release 3 is not above 4')), 409);
    expect([e.code, e.message]).toEqual(['FERRY_ERR_BUNDLE_ROLLBACK', 'release 3 is not above 4']);
    expect(errorFromBody({ error: { code: 'FERRY_ERR_MADE_UP', message: 'x' } }, 500).code).toBe('FERRY_ERR_PROTOCOL_INVALID');
    expect(errorFromBody('<html>', 502).code).toBe('FERRY_ERR_PROTOCOL_INVALID');
  });
});
