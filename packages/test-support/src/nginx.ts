/**
 * Debian's nginx serving a directory as static files, as docs/protocol.md section 2 allows for the
 * bundle repository: one process in the foreground (no master, no daemon) with its config, logs
 * and temp paths in a temp prefix, on a free loopback port. Guard callers with toolsOrSkip('nginx').
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './postgres.js';
import { requireTool } from './tools.js';

const execFileP = promisify(execFile);

/** What nginx serves. */
export interface NginxOptions {
  /** Directory served under `location`. */
  root: string;
  /** URL prefix, with slashes (default `/repo/`). */
  location?: string;
  /** worker_connections (default 256). */
  workerConnections?: number;
  /** Write an access log (default true; benches turn it off, as a CDN edge would not log to disk per request). */
  accessLog?: boolean;
}

/** A running nginx. */
export interface RunningNginx {
  /** `http://127.0.0.1:PORT` */
  url: string;
  pid: number;
  stop(): Promise<void>;
}

function config(prefix: string, port: number, o: NginxOptions): string {
  const location = o.location ?? '/repo/';
  return [
    'daemon off;',
    'master_process off;',
    `pid ${join(prefix, 'nginx.pid')};`,
    `error_log ${join(prefix, 'logs', 'error.log')};`,
    `events { worker_connections ${o.workerConnections ?? 256}; }`,
    'http {',
    `  access_log ${o.accessLog === false ? 'off' : join(prefix, 'logs', 'access.log')};`,
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `  ${k}_temp_path ${join(prefix, `${k}-temp`)};`),
    '  sendfile on;',
    '  server {',
    `    listen 127.0.0.1:${port};`,
    `    location ${location} {`,
    `      alias ${o.root}/;`,
    '      default_type application/octet-stream;',
    '      add_header Cache-Control "public, max-age=31536000, immutable";',
    '    }',
    '  }',
    '}',
  ].join('\n');
}

/** Starts nginx and waits until it answers; `stop` ends it and removes its prefix. */
export async function startNginx(o: NginxOptions): Promise<RunningNginx> {
  const nginx = requireTool('nginx');
  const prefix = await mkdtemp(join(tmpdir(), 'ferry-nginx-'));
  await mkdir(join(prefix, 'logs'));
  const port = await freePort();
  const conf = join(prefix, 'nginx.conf');
  await writeFile(conf, config(prefix, port, o));
  await execFileP(nginx, ['-t', '-q', '-p', prefix, '-c', conf]);
  const child = spawn(nginx, ['-p', prefix, '-c', conf], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    await rm(prefix, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (await fetch(`${url}/`).then(() => true, () => false)) break;
    if (i >= 200 || child.exitCode !== null) {
      await stop();
      throw new Error(`nginx did not start on ${url}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { url, pid: child.pid!, stop };
}
