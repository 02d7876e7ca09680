/**
 * A throwaway PostgreSQL cluster for tests and benches: initdb in a temp directory, pg_ctl start
 * on a free loopback port with its socket in the same directory, and stop()
 * that shuts it down and removes everything. As root, the server runs as the `postgres` user
 * (PostgreSQL refuses to run as root), via runuser.
 */
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireTool } from './tools.js';

const execFileP = promisify(execFile);

/** A running cluster. */
export interface TempPostgres {
  port: number;
  /** `postgres://USER@127.0.0.1:PORT/postgres` */
  url: string;
  stop(): Promise<void>;
}

/** A loopback port that was free a moment ago (for servers that cannot listen on port 0). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function asOwner(args: string[]): Promise<void> {
  const cmd = process.getuid?.() === 0 ? ['/usr/sbin/runuser', '-u', 'postgres', '--', ...args] : args;
  await execFileP(cmd[0]!, cmd.slice(1), { env: { ...process.env, LC_ALL: 'C' } });
}

/** Starts a cluster (the tools must be there: guard with toolsOrSkip); use its `postgres` database. */
export async function startPostgres(): Promise<TempPostgres> {
  const root = await mkdtemp(join(tmpdir(), 'ferry-pg-'));
  await chmod(root, 0o755);
  const data = join(root, 'data');
  await mkdir(data, { mode: 0o700 });
  if (process.getuid?.() === 0) {
    const { stdout } = await execFileP('id', ['-u', 'postgres']);
    const uid = Number(stdout.trim());
    const gid = Number((await execFileP('id', ['-g', 'postgres'])).stdout.trim());
    await chown(data, uid, gid);
    await chown(root, uid, gid);
  }
  const user = process.getuid?.() === 0 ? 'postgres' : userInfo().username;
  await asOwner([requireTool('initdb'), '-D', data, '-A', 'trust', '-U', user, '--no-sync']);
  const port = await freePort();
  const opts = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`;
  await asOwner([requireTool('pg_ctl'), '-D', data, '-o', opts, '-l', join(root, 'log'), '-w', 'start']);
  const base = `postgres://${user}@127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    await asOwner([requireTool('pg_ctl'), '-D', data, '-m', 'fast', '-w', 'stop']).catch(() => {});
    await rm(root, { recursive: true, force: true });
  };
  return { port, url: `${base}/postgres`, stop };
}
