/**
 * The bundle builder: claims queued jobs from the state (one builder per job, whichever server
 * process takes it), computes each bundle with the differ against the job's baseline layers,
 * signs the header with the server's online bundle key around the release engineer's statement,
 * and writes chunks then header into the repository (docs/format.md section 6).
 */
import type { FastifyBaseLogger } from 'fastify';
import { decodeRelease, parseEnvelope, type Digest, type LayerPlan, type PrivateKey, type Store } from '@ferry/core';
import { createBundle, writeBundleDir } from '@ferry/differ';
import type { BuildQueue } from './context.js';
import type { BuildOptions } from './options.js';
import type { BundleRow } from './state/bundles.js';
import type { State } from './state/state.js';

/** What the builder works with. */
export interface BuilderOptions {
  state: State;
  store: Store;
  repoDir: string;
  /** The online key that signs bundle headers (the header role). */
  headerKey: PrivateKey;
  build: BuildOptions;
  instanceId: string;
  now: () => number;
  log: FastifyBaseLogger;
  /** Told of every finished build: whether it succeeded and how long it took (metrics). */
  onBuilt?: (ok: boolean, ms: number) => void;
}

/**
 * What docker pull would send for the layers a bundle rebuilds: the compressed sizes the pushed
 * image's source declared (ImageState), else the gzip size the differ measured when it did;
 * null when a layer has neither (the views then show no comparison rather than a guess).
 */
async function pullSize(state: State, manifest: Digest, layers: readonly LayerPlan[]): Promise<number | null> {
  const declared = (await state.images.sourceLayers([manifest])).get(manifest);
  let sum = 0;
  for (const l of layers) {
    if (l.mode !== 'rebuild') continue;
    const size = declared?.get(l.diffId)?.size ?? (l.gzipSize > 0 ? l.gzipSize : undefined);
    if (size === undefined) return null;
    sum += size;
  }
  return sum;
}

/** Builds queued bundles in the background; `close` waits for builds in progress. */
export class BundleBuilder implements BuildQueue {
  private readonly running = new Set<Promise<void>>();
  private wake: (() => void) | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  /** Bundles this process built (for logs and tests). */
  built = 0;

  constructor(private readonly o: BuilderOptions) {}

  /** Starts claiming jobs. */
  start(): void {
    this.loop ??= this.run();
  }

  /** A job was queued: look now rather than at the next poll. */
  notify(): void {
    this.wake?.();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (this.running.size < this.o.build.concurrency) {
        const job = await this.o.state.bundles.claim(this.o.instanceId, this.o.now() - this.o.build.staleMs).catch((err: unknown) => {
          this.o.log.error({ err }, 'claiming a bundle job failed');
          return undefined;
        });
        if (job) {
          const p = this.build(job).finally(() => {
            this.running.delete(p);
            this.notify();
          });
          this.running.add(p);
          continue;
        }
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.o.build.pollMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private async build(job: BundleRow): Promise<void> {
    const { state, store, log } = this.o;
    const started = this.o.now();
    try {
      const release = await state.releases.get(job.channel, job.release);
      if (!release) throw new Error(`release ${job.release} of ${job.channel} is gone`);
      const statement = decodeRelease(parseEnvelope('release', release.envelope).signed);
      const b = await createBundle(store, {
        from: [],
        baselineLayers: job.baseline,
        to: statement.ref,
        toManifest: statement.manifest,
        channel: statement.channel,
        release: statement.release,
        expires: statement.expires,
        releaseEnvelope: release.envelope,
        releaseKeys: [],
        headerKeys: [this.o.headerKey],
        chunkSize: this.o.build.chunkSize,
        level: this.o.build.level,
        workers: this.o.build.workers,
        plainHeader: this.o.build.plainHeader,
      });
      try {
        await writeBundleDir(this.o.repoDir, b.signed);
      } finally {
        await b.dispose();
      }
      const pullBytes = await pullSize(state, statement.manifest, b.layers);
      const s = b.signed;
      await state.bundles.finish(job.key, this.o.instanceId, { bundleId: s.id, payloadSize: s.payloadSize, chunkSize: s.chunkSize, chunks: s.chunks.length, headerSize: s.envelope.length, pullBytes });
      this.built++;
      this.o.onBuilt?.(true, this.o.now() - started);
      log.info({ bundle: s.id, channel: job.channel, release: job.release, baseline: job.baseline.length, payload: s.payloadSize, ms: this.o.now() - started }, 'bundle built');
    } catch (err) {
      log.error({ err, channel: job.channel, release: job.release }, 'bundle build failed');
      this.o.onBuilt?.(false, this.o.now() - started);
      await state.bundles.fail(job.key, this.o.instanceId, (err as Error).message ?? String(err)).catch(() => {});
    }
  }

  /** Stops claiming and waits for the builds in progress. */
  async close(): Promise<void> {
    this.stopped = true;
    this.notify();
    await this.loop;
    await Promise.allSettled([...this.running]);
  }
}
