/**
 * The content-addressed store (DESIGN.md section 4). Contents are kept once per store,
 * zstd-compressed; skeletons by diff_id; manifests and configs by digest; refs are the only
 * mutable part and move by atomic rename.
 *
 * Layout (docs/format.md section 1):
 *   ferry-store.json          format marker and version
 *   contents/<xx>/<hex>       zstd frame of one file body, named by the body's sha256
 *   skeletons/<hex>           skeleton of the layer whose diff_id is sha256:<hex>
 *   blobs/<hex>               manifests and configs, verbatim
 *   refs/<urlencoded name:tag> JSON { manifest }
 *   lock                      writer lock (pid)
 */
import { createHash } from 'node:crypto';
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, toFerryError } from '../errors.js';
import { digestHex, hashToDigest, isDigest, parseDigest, sha256, type Digest } from '../util/digest.js';
import { exists, fsyncDir, readPieces, writeFileAtomic } from '../util/fs.js';
import { zstdDecode, zstdDecompress } from '../util/zstd.js';
import { readSkeletonFile, type SkeletonReader } from '../tar/skeleton-file.js';
import { configDiffIds, parseJsonObject, toDescriptor, toDescriptors } from '../image/json.js';
import { MT } from '../image/media.js';
import { contentReadError } from './content-reader.js';
import { acquireLock } from './lock.js';
import { checkMarker } from './marker.js';
import { isChannelName, parseRef, refFileName, refFromFileName } from './refs.js';


/** An image as the store holds it. */
export interface StoredImage {
  ref: string;
  manifestDigest: Digest;
  manifest: Buffer;
  config: Buffer;
  configDigest: Digest;
  layers: { diffId: Digest; size: number }[];
}

/** The install record of a channel. */
export interface ChannelState {
  release: number;
  ref: string;
  manifest: Digest;
  installed: string;
}

function parseChannelState(text: string, channel: string, path: string): ChannelState {
  try {
    const v = JSON.parse(text) as ChannelState;
    if (typeof v.release !== 'number' || typeof v.ref !== 'string') throw new Error('bad shape');
    return v;
  } catch (err) {
    throw new FerryError('FERRY_ERR_OBJECT_CORRUPT', `channel state ${channel} is corrupt`, { cause: err, details: { path } });
  }
}

/** Options for Store.open. */
export interface StoreOptions {
  /** Create the store if the directory is empty or missing (default false). */
  create?: boolean;
}

/** A ferry store on disk. */
export class Store {
  private constructor(readonly root: string) {}

  /** Opens (or with `create`, initialises) a store. Not a store: FERRY_ERR_STORE_INVALID. */
  static async open(root: string, options: StoreOptions = {}): Promise<Store> {
    await checkMarker(root, options.create ?? false);
    return new Store(root);
  }

  /** Runs `fn` holding the writer lock. */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const release = await acquireLock(this.root);
    try {
      return await fn();
    } finally {
      await release();
    }
  }

  // ---- paths

  contentPath(d: Digest): string {
    const hex = digestHex(d);
    return join(this.root, 'contents', hex.slice(0, 2), hex);
  }
  skeletonPath(diffId: Digest): string {
    return join(this.root, 'skeletons', digestHex(diffId));
  }
  blobPath(d: Digest): string {
    return join(this.root, 'blobs', digestHex(d));
  }
  private refPath(ref: string): string {
    return join(this.root, 'refs', refFileName(ref));
  }

  // ---- contents

  /** True when the content is present. */
  async hasContent(d: Digest): Promise<boolean> {
    return exists(this.contentPath(d));
  }

  /**
   * Streams a content's body. With `verify` (default) the body is hashed and a mismatch fails
   * the stream at its end with FERRY_ERR_OBJECT_CORRUPT; missing: FERRY_ERR_OBJECT_MISSING. The
   * file is read into one reused buffer; with `reuseOutput` every piece is yielded in one buffer
   * too, valid until the next is asked for (for a consumer that copies what it keeps).
   */
  async *openContent(d: Digest, options: { verify?: boolean; maxSize?: number; reuseOutput?: boolean } = {}): AsyncGenerator<Buffer> {
    const path = this.contentPath(d);
    const verify = options.verify ?? true;
    const hash = verify ? createHash('sha256') : undefined;
    try {
      for await (const chunk of zstdDecode(readPieces(path), options.maxSize, { reuseOutput: options.reuseOutput })) {
        hash?.update(chunk);
        yield chunk;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FerryError('FERRY_ERR_OBJECT_MISSING', `content ${d} is missing from the store`, { details: { digest: d } });
      if (err instanceof FerryError && (err.code === 'FERRY_ERR_ZSTD_CORRUPT' || err.code === 'FERRY_ERR_LIMIT_EXCEEDED')) {
        throw new FerryError('FERRY_ERR_OBJECT_CORRUPT', `content ${d} is corrupt (${err.message})`, { cause: err, details: { digest: d, path } });
      }
      throw toFerryError(err, `reading content ${d}`);
    }
    if (hash && hashToDigest(hash) !== d) throw new FerryError('FERRY_ERR_OBJECT_CORRUPT', `content ${d} does not match its digest`, { details: { digest: d, path } });
  }

  /**
   * Reads a whole small content in one go (file read on the thread pool, then decode). With
   * `verify` the body is re-hashed (FERRY_ERR_OBJECT_CORRUPT on a mismatch); exports skip that and
   * check the whole layer's diff_id instead.
   */
  async readContent(d: Digest, size: number, verify = false): Promise<Buffer> {
    const path = this.contentPath(d);
    let z: Buffer;
    try {
      z = await readFile(path);
    } catch (err) {
      throw contentReadError(d, path, 'io', err);
    }
    let body: Buffer;
    try {
      body = zstdDecompress(z, size);
    } catch (err) {
      throw contentReadError(d, path, 'corrupt', err);
    }
    if (verify && sha256(body) !== d) throw contentReadError(d, path, 'digest', undefined);
    return body;
  }

  // ---- skeletons and blobs

  async hasSkeleton(diffId: Digest): Promise<boolean> {
    return exists(this.skeletonPath(diffId));
  }

  /** Reads a layer's skeleton; missing: FERRY_ERR_OBJECT_MISSING. */
  async openSkeleton(diffId: Digest): Promise<SkeletonReader> {
    const path = this.skeletonPath(diffId);
    if (!(await exists(path))) throw new FerryError('FERRY_ERR_OBJECT_MISSING', `skeleton of layer ${diffId} is missing from the store`, { details: { diffId } });
    return readSkeletonFile(path);
  }

  /** Stores a manifest or config verbatim; returns its digest. */
  async putBlob(bytes: Uint8Array): Promise<Digest> {
    const d = sha256(bytes);
    const path = this.blobPath(d);
    if (!(await exists(path))) await writeFileAtomic(path, bytes);
    return d;
  }

  /** Reads a blob and checks its digest. */
  async getBlob(d: Digest): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.blobPath(d));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FerryError('FERRY_ERR_OBJECT_MISSING', `blob ${d} is missing from the store`, { details: { digest: d } });
      throw toFerryError(err, `reading blob ${d}`);
    }
    if (sha256(bytes) !== d) throw new FerryError('FERRY_ERR_OBJECT_CORRUPT', `blob ${d} does not match its digest`, { details: { digest: d, path: this.blobPath(d) } });
    return bytes;
  }

  // ---- channels

  private channelPath(channel: string): string {
    if (!isChannelName(channel)) throw new FerryError('FERRY_ERR_USAGE', `${JSON.stringify(channel)} is not a valid channel name`);
    return join(this.root, 'channels', refFileName(channel));
  }

  /** What was last installed from a channel (release numbers only grow: rollback protection). */
  async getChannel(channel: string): Promise<ChannelState | undefined> {
    const path = this.channelPath(channel);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      const errno = (err as NodeJS.ErrnoException).code;
      if (errno === 'ENOENT') return undefined;
      // channels/ that is not a directory, or a channel that is one: the store is damaged
      if (errno === 'ENOTDIR' || errno === 'EISDIR') throw new FerryError('FERRY_ERR_OBJECT_CORRUPT', `channel state ${channel} is corrupt (${errno})`, { cause: err, details: { path } });
      throw toFerryError(err, `reading channel state ${channel}`);
    }
    return parseChannelState(text, channel, path);
  }

  /** Records an install from a channel (atomic). */
  async setChannel(channel: string, state: ChannelState): Promise<void> {
    await writeFileAtomic(this.channelPath(channel), JSON.stringify(state) + '\n');
  }

  // ---- refs

  /** Points `ref` at a manifest, atomically (DESIGN.md section 4). */
  async setRef(ref: string, manifestDigest: Digest): Promise<void> {
    parseRef(ref);
    await writeFileAtomic(this.refPath(ref), JSON.stringify({ manifest: manifestDigest }) + '\n');
  }

  /** Removes a ref (the image's objects stay until gc). */
  async deleteRef(ref: string): Promise<void> {
    if (!(await exists(this.refPath(ref)))) throw new FerryError('FERRY_ERR_REF_NOT_FOUND', `no image ${ref} in the store`);
    await rm(this.refPath(ref));
    await fsyncDir(join(this.root, 'refs'));
  }

  /**
   * Every file in `refs/` but temp files, with the ref its name stands for: undefined when the
   * name is not one the store writes (fsck reports those; images and gc skip their names).
   */
  async listRefFiles(): Promise<{ file: string; path: string; ref: string | undefined }[]> {
    const files = (await readdir(join(this.root, 'refs'))).filter((f) => !f.startsWith('.'));
    return files.map((file) => ({ file, path: join(this.root, 'refs', file), ref: refFromFileName(file) }));
  }

  /** All refs with their manifest digests, sorted by ref; files with malformed names are skipped. */
  async listRefs(): Promise<{ ref: string; manifest: Digest }[]> {
    const named = (await this.listRefFiles()).filter((f): f is typeof f & { ref: string } => f.ref !== undefined);
    const out = await Promise.all(named.map(async (f) => ({ ref: f.ref, manifest: await this.readRefFile(f.file, f.ref) })));
    return out.sort((a, b) => a.ref.localeCompare(b.ref));
  }

  /** The manifest digest a file in `refs/` holds (`what` names it in messages). */
  async readRefFile(file: string, what: string): Promise<Digest> {
    let text: string;
    try {
      text = await readFile(join(this.root, 'refs', file), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FerryError('FERRY_ERR_REF_NOT_FOUND', `no image ${what} in the store`);
      throw toFerryError(err, `reading ref ${what}`);
    }
    try {
      return parseDigest((JSON.parse(text) as { manifest?: unknown }).manifest, `ref ${what}`);
    } catch (err) {
      throw new FerryError('FERRY_ERR_OBJECT_CORRUPT', `ref ${what} is corrupt`, { cause: err, details: { ref: what } });
    }
  }

  /** Resolves a ref to its image; unknown: FERRY_ERR_REF_NOT_FOUND. */
  async resolve(ref: string): Promise<StoredImage> {
    parseRef(ref);
    return this.imageByManifest(ref, await this.readRefFile(refFileName(ref), ref));
  }

  /** Loads the image a manifest digest names. */
  async imageByManifest(ref: string, manifestDigest: Digest): Promise<StoredImage> {
    const manifest = await this.getBlob(manifestDigest);
    const m = parseJsonObject(manifest, `manifest ${manifestDigest}`);
    const configDesc = toDescriptor(m.config, `manifest ${manifestDigest} config`);
    const config = await this.getBlob(configDesc.digest);
    const diffIds = configDiffIds(parseJsonObject(config, `config ${configDesc.digest}`), `config ${configDesc.digest}`);
    const layers = toDescriptors(m.layers, `manifest ${manifestDigest} layers`).map((l, i) => {
      if (l.mediaType !== MT.ociLayer || l.digest !== diffIds[i]) throw new FerryError('FERRY_ERR_OBJECT_CORRUPT', `manifest ${manifestDigest} is not a store manifest`);
      return { diffId: l.digest, size: l.size };
    });
    return { ref, manifestDigest, manifest, config, configDigest: configDesc.digest, layers };
  }

  /** Lists every object file of a kind (for fsck and gc). */
  async listObjects(kind: 'contents' | 'skeletons' | 'blobs'): Promise<{ digest: Digest | undefined; path: string; name: string }[]> {
    const base = join(this.root, kind);
    const out: { digest: Digest | undefined; path: string; name: string }[] = [];
    const addDir = async (dir: string): Promise<void> => {
      for (const f of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, f.name);
        if (f.isDirectory() && kind === 'contents' && /^[0-9a-f]{2}$/.test(f.name)) await addDir(p);
        else {
          const d = `sha256:${f.name}`;
          out.push({ digest: isDigest(d) ? d : undefined, path: p, name: f.name });
        }
      }
    };
    await addDir(base);
    return out;
  }
}
