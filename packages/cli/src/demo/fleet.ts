/**
 * A whole deployment on this machine, for the live demo, the agent's end-to-end tests and the
 * link bench: two versions of a sample image (imagegen, or a given OCI layout; plus an unrelated
 * app for a second channel), a server on a free loopback port with a temp data dir, the images
 * pushed and v2 released with the same commands a release engineer types (run in-process through
 * runCli), an agent id and token, and a device store holding v1. A fleet made in a given directory
 * is kept by close() and can be reopened later (the bench caches a pair whose bundle takes minutes
 * to build).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { FerryError, parsePublicKey } from '@ferry/core';
import { writeImagePair } from '@ferry/imagegen';
import type { RunningServer } from '@ferry/server';
import { runCli } from '../cli.js';
import type { CliContext } from '../context.js';

export const FLEET_PLATFORM = 'linux/amd64';

/** Options of {@link startFleet}. */
export interface FleetOptions {
  /** Uncompressed size of the sample image (default imagegen's 40 MiB). */
  targetBytes?: number | undefined;
  /** Also push the unrelated app as `other:v1` (for a second channel). */
  other?: boolean;
  /** Where the work directory goes (default the OS temp dir). */
  tmp?: string | undefined;
  /** An OCI layout holding the pair as tags `v1` and `v2` (default: imagegen writes one). */
  layout?: string | undefined;
  /**
   * The fleet's own directory instead of a temp one: close() keeps it, and a directory that holds
   * a fleet already (its `fleet.json`) is reopened: its server starts again on its data directory,
   * with the images, releases, agents and built bundles it had.
   */
  dir?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** What a fleet directory remembers between runs (`fleet.json`). */
interface FleetRecord {
  /** The pair's OCI layout: relative to the fleet directory when inside it (the directory may be copied), else absolute. */
  oci: string;
  publisherToken: string;
  configs: Record<string, string>;
}

/** The running deployment. */
export interface Fleet {
  work: string;
  server: RunningServer;
  url: string;
  adminToken: string;
  publisherToken: string;
  /** Trust files an agent needs: the release key and the server's bundle key. */
  trust: string[];
  /** Image IDs (config digests) by ref. */
  configs: Record<string, string>;
  /** Runs a ferry command in-process (`--json` added); its JSON answer. */
  ferry<T = Record<string, unknown>>(args: string[]): Promise<T>;
  /** Releases `ref` on `channel`. */
  release(ref: string, channel: string, urgent?: boolean): Promise<void>;
  /** A new agent: its token and a device store holding app:v1. */
  addAgent(id: string): Promise<{ token: string; store: string }>;
  /** Stops the server and removes the work directory (kept when the fleet was made in `dir`). */
  close(): Promise<void>;
}

function capture(signal?: AbortSignal): { ctx: CliContext; out: () => string; err: () => string } {
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  const sink = (parts: Buffer[]): Writable => new Writable({ write: (c: Buffer, _enc, cb) => (parts.push(c), cb()) });
  const ctx: CliContext = { stdout: sink(o), stderr: sink(e), cwd: process.cwd(), debug: false, version: '0.1.0', signal };
  return { ctx, out: () => Buffer.concat(o).toString('utf8'), err: () => Buffer.concat(e).toString('utf8') };
}

/** Starts the server of a fleet in `work` (a data dir made before is reused as it is). */
async function startFleetServer(work: string): Promise<RunningServer> {
  const { startServer } = await import('@ferry/server');
  return startServer({ dataDir: join(work, 'data'), port: 0, logger: false, releaseKeys: [parsePublicKey(await readFile(join(work, 'release.pub')))], build: { pollMs: 100 }, buildRetryAfter: 1, checkinInterval: 5 });
}

/** A new fleet in `work`: keys, server, the pair pushed; returns what fleet.json keeps. */
async function createFleet(work: string, o: FleetOptions, ferry: Fleet['ferry']): Promise<{ server: RunningServer; record: FleetRecord }> {
  let oci = o.layout;
  if (!oci) {
    oci = join(work, 'oci');
    await writeImagePair(oci, { tags: o.other ? ['v1', 'v2', 'other'] : ['v1', 'v2'], targetBytes: o.targetBytes, platform: FLEET_PLATFORM, signal: o.signal });
  }
  await ferry(['keygen', '--out', join(work, 'release')]);
  const server = await startFleetServer(work);
  try {
    const remote = ['--server', server.url];
    const publisherToken = (await ferry<{ token: string }>(['tokens', 'add', '--role', 'publisher', '--name', 'demo', ...remote, '--token', server.admin.token])).token;
    const configs: Record<string, string> = {};
    for (const [tag, ref] of [['v1', 'app:v1'], ['v2', 'app:v2'], ...(o.other ? [['other', 'other:v1']] : [])] as const) {
      configs[ref] = (await ferry<{ config: string }>(['push', `${oci}:${tag}`, '--ref', ref, '--store', join(work, 'publisher'), ...remote, '--token', publisherToken, '--platform', FLEET_PLATFORM])).config;
    }
    return { server, record: { oci: o.layout ? resolve(oci) : relative(work, oci), publisherToken, configs } };
  } catch (err) {
    await server.close();
    throw err;
  }
}

/** Starts the deployment (or reopens the one in `o.dir`); close it on every path. */
export async function startFleet(o: FleetOptions = {}): Promise<Fleet> {
  const keep = o.dir !== undefined;
  const work = o.dir ?? (await mkdtemp(join(o.tmp ?? tmpdir(), 'ferry-fleet-')));
  let server: RunningServer | undefined;
  try {
    const ferry = async <T>(args: string[]): Promise<T> => {
      const c = capture(o.signal);
      const code = await runCli([...args, '--json'], c.ctx);
      if (code !== 0) throw new FerryError('FERRY_ERR_INTERNAL', `ferry ${args[0]} failed (exit ${code}): ${c.err().trim() || c.out().trim()}`);
      return JSON.parse(c.out()) as T;
    };
    const recordPath = join(work, 'fleet.json');
    let record = await readFile(recordPath, 'utf8').then((t) => JSON.parse(t) as FleetRecord, () => undefined);
    if (record) server = await startFleetServer(work);
    else {
      await mkdir(work, { recursive: true });
      ({ server, record } = await createFleet(work, o, ferry));
      if (keep) await writeFile(recordPath, JSON.stringify(record));
    }
    const { publisherToken, configs } = record;
    const oci = resolve(work, record.oci);
    const remote = ['--server', server.url];
    const pubStore = join(work, 'publisher');
    const running = server;
    const fleet: Fleet = {
      work,
      server,
      url: server.url,
      adminToken: server.admin.token,
      publisherToken,
      trust: [join(work, 'release.pub'), server.paths.bundlePub],
      configs,
      ferry,
      release: async (ref, channel, urgent = false) => {
        await ferry(['release', ref, '--channel', channel, '--key', join(work, 'release.key'), '--store', pubStore, ...remote, '--token', publisherToken, ...(urgent ? ['--urgent'] : [])]);
      },
      addAgent: async (id) => {
        const token = (await ferry<{ token: string }>(['agents', 'add', id, ...remote, '--token', running.admin.token])).token;
        const store = join(work, `device-${id}`);
        await ferry(['import', `${oci}:v1`, '--ref', 'app:v1', '--store', store, '--platform', FLEET_PLATFORM]);
        return { token, store };
      },
      close: async () => {
        await running.close();
        if (!keep) await rm(work, { recursive: true, force: true });
      },
    };
    return fleet;
  } catch (err) {
    await server?.close();
    if (!keep) await rm(work, { recursive: true, force: true });
    throw err;
  }
}
