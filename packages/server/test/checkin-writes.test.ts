/**
 * What a check-in writes (SQLite): an agent request is one transaction (a failure part-way records
 * nothing, so the same counter is accepted on the retry), an inventory the server holds is not
 * written again, a steady check-in runs a fixed, small set of statements, and an agent's token is
 * not looked up again at each check-in.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256, type Digest, type Report } from '@ferry/core';
import { openState, type State } from '../src/index.js';

let dir: string;
let state: State;
let statements: string[];
let clock = 1_000_000;
let token: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-checkin-'));
  statements = [];
  state = await openState({ sqlitePath: join(dir, 'state.db'), now: () => clock, onQuery: (sql) => statements.push(sql) });
  token = await state.agents.create('edge-1');
});

afterEach(async () => {
  await state?.close();
  await rm(dir, { recursive: true, force: true });
});

const layers = [sha256('layer a'), sha256('layer b')] as Digest[];
const inventory = { digest: sha256('inventory') as Digest, layers };
const facts = { channels: ['stable'], installed: {}, inventory: inventory.digest, version: '1' };
const report = (counter: number): Report => ({ counter, at: 'now', state: 'fetching', bytesDone: counter, bytesTotal: 1000, chunksDone: 0, chunksTotal: 1, rate: 0, eta: null, error: null });
/** Statements run by `fn`, by their first words (`update "agents"`). */
async function statementsOf(fn: () => Promise<unknown>): Promise<string[]> {
  statements = [];
  await fn();
  return statements.map((s) => s.split(' ').slice(0, 3).join(' ').replace(/ (set|where|\().*$/, ''));
}

describe('a check-in', () => {
  it('writes a held inventory once, and a steady check-in runs three statements in one transaction', async () => {
    const first = await statementsOf(() => state.agents.record('edge-1', { counter: 1, facts, inventory, reports: [report(2)] }));
    expect(first.filter((s) => s.startsWith('insert into "inventories"'))).toHaveLength(1);
    // sent again (an agent that restarted sends its layers): not rewritten
    const again = await statementsOf(() => state.agents.record('edge-1', { counter: 3, facts, inventory, reports: [report(4)] }));
    expect(again.filter((s) => s.includes('inventories'))).toEqual([]);
    // the steady state: the counter and facts, the report, the agent's newest report
    const steady = await statementsOf(() => state.agents.record('edge-1', { counter: 5, facts, reports: [report(6)] }));
    expect(steady).toEqual(['begin', 'update "agents"', 'insert into "reports"', 'update "agents"', 'commit']);
    expect(await state.agents.getInventory(inventory.digest)).toEqual([...layers].sort());
    expect((await state.agents.get('edge-1'))?.report?.counter).toBe(6);
  });

  it('is one transaction: a failing report write records neither the counter nor the facts', async () => {
    await state.agents.record('edge-1', { counter: 1, facts: { ...facts, version: 'old' } });
    const before = await state.agents.get('edge-1');
    // another connection makes the reports table refuse inserts
    const other = new BetterSqlite3(join(dir, 'state.db'));
    try {
      other.exec(`CREATE TRIGGER refuse BEFORE INSERT ON reports BEGIN SELECT RAISE(ABORT, 'refused'); END;`);
      clock += 1000;
      await expect(state.agents.record('edge-1', { counter: 2, facts: { ...facts, version: 'new' }, inventory, reports: [report(3)] })).rejects.toThrow(/refused/);
      expect(await state.agents.get('edge-1')).toEqual(before);
      other.exec('DROP TRIGGER refuse');
    } finally {
      other.close();
    }
    // nothing was kept, so the same counter is accepted now, and the inventory is written
    const r = await state.agents.record('edge-1', { counter: 2, facts: { ...facts, version: 'new' }, inventory, reports: [report(3)] });
    expect(r.reports).toEqual({ accepted: 1, dropped: 0 });
    expect(await state.agents.get('edge-1')).toMatchObject({ version: 'new', lastSeen: clock, report: { counter: 3 } });
    expect(await state.agents.getInventory(inventory.digest)).toEqual([...layers].sort());
  });

  it('refuses a replayed counter and records nothing of it', async () => {
    await state.agents.record('edge-1', { counter: 5, facts, reports: [report(6)] });
    const before = await state.agents.get('edge-1');
    await expect(state.agents.record('edge-1', { counter: 5, facts: { ...facts, version: 'replayed' }, reports: [report(7)] })).rejects.toMatchObject({ code: 'FERRY_ERR_PROTOCOL_REPLAY' });
    expect(await state.agents.get('edge-1')).toEqual(before);
    expect((await state.agents.recentReports('edge-1')).map((x) => x.counter)).toEqual([6]);
  });
});

describe('an agent token', () => {
  it('is looked up once on SQLite, however long between check-ins, until it is revoked', async () => {
    expect(await statementsOf(() => state.tokens.verify(token))).toEqual(['select * from']);
    clock += 3600_000;
    expect(await statementsOf(async () => expect(await state.tokens.verify(token)).toMatchObject({ role: 'agent', agentId: 'edge-1' }))).toEqual([]);
    await state.tokens.revoke('agent:edge-1');
    expect(await state.tokens.verify(token)).toBeUndefined();
  });
});
