/**
 * Streams one layer to disk: entries are packed by tar-stream with bodies generated chunk by chunk,
 * hashed as they flow (diff_id), optionally compressed, hashed again (blob digest) and written.
 * Memory stays bounded by stream buffers whatever the layer size.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Duplex, Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { bodyChunks, bodySize } from './body.js';
import type { LayerCompression } from './options.js';
import { tarName, type TreeEntry } from './tree.js';

/** What writing a layer produced. */
export interface LayerWriteResult {
  /** sha256 of the uncompressed tar (`sha256:<hex>`): the config's `rootfs.diff_ids` entry. */
  diffId: string;
  /** Size of the uncompressed tar. */
  size: number;
  /** sha256 of the file written (equal to diffId when uncompressed). */
  digest: string;
  /** Size of the file written. */
  blobSize: number;
}

/** Options for {@link writeLayerFile}. */
export interface LayerFileOptions {
  compression: LayerCompression;
  level: number;
  signal?: AbortSignal | undefined;
}

/** OCI media type of a layer blob with the given compression. */
export function layerMediaType(compression: LayerCompression): string {
  const base = 'application/vnd.oci.image.layer.v1.tar';
  return compression === 'gzip' ? `${base}+gzip` : compression === 'zstd' ? `${base}+zstd` : base;
}

/** A pass-through that hashes and counts the bytes flowing through it. */
class Tap extends Transform {
  private readonly hash = createHash('sha256');
  size = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }

  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

/** A zstd compressor running the `zstd` command (single-threaded, so output is deterministic). */
function zstdStream(level: number): Duplex {
  const child = spawn('zstd', ['-q', '-c', `-${level}`, '-T1', '--no-progress'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const duplex = Duplex.from({ writable: child.stdin, readable: child.stdout });
  child.on('error', (err) => duplex.destroy(new Error(`cannot run zstd (is it installed?): ${err.message}`, { cause: err })));
  child.on('exit', (code) => {
    if (code !== 0) duplex.destroy(new Error(`zstd exited with code ${code}`));
  });
  return duplex;
}

/** A header as tar-stream's pack.entry takes it. */
type PackHeader = Parameters<tar.Pack['entry']>[0];

/** The tar header tar-stream should write for an entry. */
function header(e: TreeEntry): PackHeader {
  const h: PackHeader = { name: tarName(e), mode: e.mode, uid: e.uid, gid: e.gid, mtime: new Date(e.mtime * 1000) };
  if (e.uname !== undefined) h.uname = e.uname;
  if (e.gname !== undefined) h.gname = e.gname;
  if (e.type === 'dir') h.type = 'directory';
  else if (e.type === 'symlink') Object.assign(h, { type: 'symlink', linkname: e.target });
  else if (e.type === 'hardlink') Object.assign(h, { type: 'link', linkname: e.target });
  else Object.assign(h, { type: 'file', size: bodySize(e.body) });
  return h;
}

/** Resolves when a writable emits `drain` (or closes, so a destroyed stream never hangs the writer). */
export function waitDrain(sink: { on(ev: string, fn: () => void): unknown; off(ev: string, fn: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      sink.off('drain', done);
      sink.off('close', done);
      resolve();
    };
    sink.on('drain', done);
    sink.on('close', done);
  });
}

/** Feeds every entry into the pack, honouring backpressure, then finalises it. */
async function feed(pack: tar.Pack, entries: readonly TreeEntry[], signal: AbortSignal | undefined): Promise<void> {
  for (const e of entries) {
    signal?.throwIfAborted();
    let settle!: (err?: Error | null) => void;
    const finished = new Promise<void>((resolve, reject) => {
      settle = (err) => (err ? reject(err) : resolve());
    });
    finished.catch(() => undefined); // awaited below; this only stops an early throw leaving it unhandled
    const w = pack.entry(header(e), settle);
    w.on('error', () => undefined); // a destroyed pack destroys its sink; the error reaches us via settle
    if (e.type === 'file') {
      let produced = 0;
      for (const chunk of bodyChunks(e.body)) {
        produced += chunk.byteLength;
        // A Buffer view, not a plain Uint8Array: streamx would copy the latter.
        if (!w.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) await waitDrain(w);
        if (w.destroyed) break;
      }
      if (produced !== bodySize(e.body) && !w.destroyed) throw new Error(`imagegen bug: body of ${e.path} produced ${produced} bytes, not ${bodySize(e.body)}`);
      w.end(undefined);
    }
    await finished;
  }
  pack.finalize();
}

/**
 * Writes the tar of `entries` to `path` (compressed as asked) and returns its digests and sizes.
 * The file is written directly; callers rename it into place.
 */
export async function writeLayerFile(path: string, entries: readonly TreeEntry[], opts: LayerFileOptions): Promise<LayerWriteResult> {
  const pack = tar.pack();
  const raw = new Tap();
  const stored = new Tap();
  const stages: NodeJS.ReadWriteStream[] = [raw];
  if (opts.compression === 'gzip') stages.push(createGzip({ level: opts.level }), stored);
  else if (opts.compression === 'zstd') stages.push(zstdStream(opts.level), stored);
  const feeding = feed(pack, entries, opts.signal).catch((err: unknown) => {
    pack.destroy(err as Error);
    throw err;
  });
  // tar-stream's pack is a streamx Readable: node's pipeline handles it, its types do not know it.
  const source = pack as unknown as Readable;
  const writing = pipeline([source, ...stages, createWriteStream(path)], { signal: opts.signal });
  await Promise.all([feeding, writing]);
  const diffId = raw.digest();
  if (opts.compression === 'none') return { diffId, size: raw.size, digest: diffId, blobSize: raw.size };
  return { diffId, size: raw.size, digest: stored.digest(), blobSize: stored.size };
}
