// One ferry server process for the server bench: options as JSON in argv[2] (releasePub is a PEM
// file). Prints `{"url", "pid"}` as a JSON line once listening; closes gracefully on SIGTERM.
// Run it with `node --cpu-prof` to profile the server (FERRY_BENCH_CPU_PROF in server.mjs).
import { readFile } from 'node:fs/promises';
import { parsePublicKey } from '@ferry/core';
import { startServer } from '@ferry/server';

const o = JSON.parse(process.argv[2]);
const server = await startServer({ ...o, releaseKeys: [parsePublicKey(await readFile(o.releasePub))] });
process.stdout.write(JSON.stringify({ url: server.url, pid: process.pid }) + '\n');
const stop = () => void server.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
