/**
 * The store lock (docs/format.md section 1.1): many processes racing for one lock, fresh or
 * stale, and exactly one wins every time; owners from another boot or with a reused pid are
 * taken over, live ones are not; an abandoned takeover does not lock the store forever; release
 * removes only its own lock. Real processes throughout (the built package, packages/core/dist).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, buildLayer, ociLayout, writeFiles } from '@ferry/test-support';
import { Store, acquireLock, fsck } from '@ferry/core';
import { appV1, baseFiles } from './helpers/store-images.js';

const CHILD = fileURLToPath(new URL('./helpers/lock-child.mjs', import.meta.url));
const OP_CHILD = fileURLToPath(new URL('./helpers/store-op-child.mjs', import.meta.url));
const SLOW = process.env.FERRY_SLOW_TESTS === '1';

let work: string;
let n = 0;
async function fresh(): Promise<string> {
  const dir = join(work, `store-${n++}`);
  await mkdir(dir);
  return dir;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-lock-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** This boot's id and a process's start time, as the lock records them (proc(5)). */
async function bootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
}
async function startOf(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

/** A lock file as ferry writes it. */
function lockJson(o: { pid: number; boot: string; start: string }): string {
  return JSON.stringify({ ...o, nonce: Math.random().toString(16).slice(2) }) + '\n';
}

/** A process that sleeps until killed. */
function sleeper(): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600_000)']);
}

/** A pid whose process has exited. */
async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => p.on('exit', r));
  return p.pid!;
}

interface Contender {
  child: ChildProcessWithoutNullStreams;
  lines: AsyncIterator<string>;
}

async function nextLine(c: Contender): Promise<string> {
  const r = await c.lines.next();
  return r.done ? '' : r.value;
}

/** A child running `script ARGS`, once it said it is ready. */
async function ready(script: string, args: string[]): Promise<Contender> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const c = { child, lines: createInterface({ input: child.stdout })[Symbol.asyncIterator]() };
  expect(await nextLine(c)).toBe('ready');
  return c;
}

/** A lock contender process. */
const contender = (root: string): Promise<Contender> => ready(CHILD, [root]);

describe('lock races', () => {
  it('of 16 processes racing for a free or a stale lock, exactly one wins, every time', { timeout: 600_000 }, async () => {
    const root = await fresh();
    const rounds = SLOW ? 40 : 4;
    const pool = await Promise.all(Array.from({ length: 16 }, () => contender(root)));
    try {
      for (let round = 0; round < rounds; round++) {
        // all 16 are told "go" back to back; after an even round the lock is stale (its winner
        // was killed holding it), so the next round is 16 simultaneous takeovers
        for (const c of pool) c.child.stdin.write('go\n');
        const answers = await Promise.all(pool.map((c) => nextLine(c)));
        const winners = pool.flatMap((c, i) => (answers[i] === 'won' ? [i] : []));
        expect(winners.length, `round ${round}: ${answers.join(', ')}`).toBe(1);
        expect(answers.filter((a) => a !== 'won').every((a) => a === 'lost FERRY_ERR_STORE_LOCKED'), answers.join(', ')).toBe(true);
        const w = winners[0]!;
        if (round % 2 === 0) {
          pool[w]!.child.kill('SIGKILL');
          await new Promise((r) => pool[w]!.child.on('exit', r));
          pool[w] = await contender(root);
        } else {
          pool[w]!.child.stdin.write('release\n');
          expect(await nextLine(pool[w]!)).toBe('released');
        }
        // a finished takeover leaves no marker behind; a released lock is gone
        const files = await readdir(root);
        expect(files.filter((f) => f.startsWith('lock.takeover-')), files.join(' ')).toEqual([]);
        expect(files.includes('lock')).toBe(round % 2 === 0);
      }
    } finally {
      for (const c of pool) c.child.kill('SIGKILL');
    }
  });
});

/** A store-op child (import or gc that retries while locked). */
const storeOp = (args: string[]): Promise<Contender> => ready(OP_CHILD, args);

describe('gc against import', () => {
  it('gc racing an import never deletes what the import wrote (fsck clean after every round)', { timeout: 600_000 }, async () => {
    const root = await fresh();
    const store = await Store.open(root, { create: true });
    const layout = join(work, 'race-layout');
    const image = buildImage([await buildLayer(baseFiles, 'none'), await buildLayer(appV1, 'gzip')], { label: 'race' });
    await writeFiles(layout, ociLayout([{ image, tag: 'v1' }]).files);
    const rounds = SLOW ? 30 : 3;
    const tries: string[] = [];
    for (let round = 0; round < rounds; round++) {
      // every round the image is unreferenced when gc starts: without a lock that holds, gc
      // deletes the contents the import found present (deduplicated) or just wrote
      if ((await store.listRefs()).length > 0) await store.deleteRef('app:v1');
      if (round % 2 === 1) await writeFile(join(root, 'lock'), lockJson({ pid: await deadPid(), boot: await bootId(), start: '1' }));
      const ops = [await storeOp(['import', root, layout, 'app:v1']), await storeOp(['gc', root])];
      for (const c of ops) c.child.stdin.write('go\n');
      const done = await Promise.all(ops.map((c) => nextLine(c)));
      tries.push(done.join('/'));
      expect(done.every((d) => d.startsWith('done ')), done.join(', ')).toBe(true);
      const report = await fsck(store);
      expect(report.problems, `round ${round}`).toEqual([]);
      expect((await store.resolve('app:v1')).configDigest).toBe(image.configDigest);
      await Promise.all(ops.map((c) => new Promise((r) => (c.child.exitCode !== null ? r(null) : c.child.on('exit', r)))));
    }
    console.log(`gc against import: ${rounds} rounds, tries (import/gc): ${tries.join(' ')}`);
  });
});

/** Runs `fn` while a live process (pid and start time given) sleeps; kills it after. */
async function withLiveProcess(fn: (pid: number, start: string) => Promise<void>): Promise<void> {
  const holder = sleeper();
  try {
    await fn(holder.pid!, await startOf(holder.pid!));
  } finally {
    holder.kill('SIGKILL');
  }
}

/** Takes the lock of `root` (over whatever lock file is there), checks it is ours, releases it. */
async function expectTakenOver(root: string): Promise<void> {
  const release = await acquireLock(root);
  expect(JSON.parse(await readFile(join(root, 'lock'), 'utf8'))).toMatchObject({ pid: process.pid, boot: await bootId() });
  await release();
  expect(await readdir(root)).toEqual([]);
}

describe('lock owners', () => {
  it('a lock naming a live pid from another boot is taken over', async () => {
    const root = await fresh();
    await withLiveProcess(async (pid, start) => {
      await writeFile(join(root, 'lock'), lockJson({ pid, boot: '00000000-0000-4000-8000-000000000000', start }));
      await expectTakenOver(root);
    });
  });

  it('a lock naming a reused pid (same pid, other start time) is taken over', async () => {
    const root = await fresh();
    await withLiveProcess(async (pid, start) => {
      await writeFile(join(root, 'lock'), lockJson({ pid, boot: await bootId(), start: String(Number(start) - 1) }));
      await expectTakenOver(root);
    });
  });

  it('a lock whose owner runs (pid, boot and start time all match) gets FERRY_ERR_STORE_LOCKED and stays', async () => {
    const root = await fresh();
    await withLiveProcess(async (pid, start) => {
      const content = lockJson({ pid, boot: await bootId(), start });
      await writeFile(join(root, 'lock'), content);
      await expect(acquireLock(root)).rejects.toMatchObject({ code: 'FERRY_ERR_STORE_LOCKED', details: { pid } });
      expect(await readFile(join(root, 'lock'), 'utf8')).toBe(content);
      expect((await readdir(root)).filter((f) => f !== 'lock')).toEqual([]);
    });
  });

  /** A stale lock in `root` and the first takeover marker of it, created by `marker`'s owner. */
  async function staleWithMarker(root: string, marker: string): Promise<string> {
    const stale = lockJson({ pid: await deadPid(), boot: await bootId(), start: '1' });
    await writeFile(join(root, 'lock'), stale);
    const id = createHash('sha256').update(stale).digest('hex').slice(0, 32);
    await writeFile(join(root, `lock.takeover-${id}.0`), marker);
    return stale;
  }

  it('a takeover abandoned by a dead contender does not keep the store locked', async () => {
    const root = await fresh();
    await staleWithMarker(root, lockJson({ pid: await deadPid(), boot: await bootId(), start: '1' }));
    await expectTakenOver(root);
  });

  it('a takeover in progress by a live contender is not raced: FERRY_ERR_STORE_LOCKED', async () => {
    const root = await fresh();
    await withLiveProcess(async (pid, start) => {
      const stale = await staleWithMarker(root, lockJson({ pid, boot: await bootId(), start }));
      await expect(acquireLock(root)).rejects.toMatchObject({ code: 'FERRY_ERR_STORE_LOCKED', details: { pid } });
      expect(await readFile(join(root, 'lock'), 'utf8')).toBe(stale);
    });
  });

  it('release removes only its own lock', async () => {
    const root = await fresh();
    const release = await acquireLock(root);
    // (a store damaged by hand: another lock file now stands where ours was)
    const other = lockJson({ pid: 1, boot: await bootId(), start: '1' });
    await writeFile(join(root, 'lock'), other);
    await release();
    expect(await readFile(join(root, 'lock'), 'utf8')).toBe(other);
    // and the same process can take it again (its own operation is no longer registered)
    await rm(join(root, 'lock'));
    await (await acquireLock(root))();
    expect(await readdir(root)).toEqual([]);
  });

  it('a second operation of the same process gets FERRY_ERR_STORE_LOCKED', async () => {
    const root = await fresh();
    const release = await acquireLock(root);
    await expect(acquireLock(root)).rejects.toMatchObject({ code: 'FERRY_ERR_STORE_LOCKED' });
    await release();
  });
});
