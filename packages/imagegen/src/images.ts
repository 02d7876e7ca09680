/**
 * The image set of one seed and platform: `v1`, its release `v2`, and `other` (a different app on
 * the very same base layer), as specs ready to write, plus what changed from v1 to v2.
 */
import { generateAppTree, generateConfigTree } from './app-tree.js';
import { generateBaseTree } from './base-tree.js';
import { diffFiles, flattenLayers, OPAQUE_WHITEOUT, WHITEOUT_PREFIX, type FileChanges } from './changes.js';
import type { ImageSpec, LayerSpec } from './image-json.js';
import { DAY, formatPlatform, resolveGenOptions, type ImageGenOptions, type ImageTag, type ResolvedGenOptions } from './options.js';
import { deriveRelease, RELEASE_SHIFT } from './release.js';

/** What `v2` changes relative to `v1`, file by file (regular files, after whiteouts). */
export interface ReleaseChanges extends FileChanges {
  /** Versioned directories renamed (`lib/foo-1.2.3` to `lib/foo-1.2.4`). */
  renamedDirs: Array<[string, string]>;
  /** Whiteout files in v2's top layer (`dir/.wh.name`). */
  whiteouts: string[];
  /** Directories made opaque in v2's top layer. */
  opaqueDirs: string[];
}

/** The specs of one platform's images. */
export interface ImageSet {
  platform: string;
  images: Partial<Record<ImageTag, ImageSpec>>;
  /** v1 to v2 changes (present when both are in the set). */
  changes: ReleaseChanges | undefined;
}

function appSpec(o: ResolvedGenOptions, ref: string, layers: LayerSpec[], version: string, created: number): ImageSpec {
  const conf = `/etc/${o.appName}/${o.appName}.conf`;
  return {
    ref,
    platform: formatPlatform(o.platform),
    layers,
    created,
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NODE_ENV=production', `APP_VERSION=${version}`],
    cmd: [`/app/bin/${o.appName}`, '--config', conf],
    workingDir: '/app',
    user: '1000:1000',
    labels: { 'org.opencontainers.image.title': o.appName, 'org.opencontainers.image.version': version },
    emptySteps: [
      { createdBy: 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', after: 0 },
      { createdBy: 'WORKDIR /app', after: 0 },
      { createdBy: `CMD ["/app/bin/${o.appName}" "--config" "${conf}"]`, after: layers.length - 1 },
    ],
  };
}

/**
 * Builds the specs of the images named by `tags` for `opts.platform`. `v2` and `other` are always
 * derived from the same v1 trees, so asking for any subset gives the same images.
 */
export function buildImageSet(opts: ImageGenOptions = {}, tags: readonly ImageTag[] = ['v1', 'v2']): ImageSet {
  const o = resolveGenOptions(opts);
  const base: LayerSpec = { entries: generateBaseTree(opts), createdBy: 'ADD rootfs.tar /', created: o.mtime };
  const v1Layers: LayerSpec[] = [
    base,
    { entries: generateAppTree(opts), createdBy: 'COPY --chown=1000:1000 app /app', created: o.mtime + DAY },
    { entries: generateConfigTree(opts), createdBy: `COPY etc /etc/${o.appName}`, created: o.mtime + DAY },
  ];
  const images: Partial<Record<ImageTag, ImageSpec>> = {};
  if (tags.includes('v1')) images.v1 = appSpec(o, 'v1', v1Layers, '1.0.0', o.mtime + DAY);
  let changes: ReleaseChanges | undefined;
  if (tags.includes('v2')) {
    const r = deriveRelease({ base: base.entries, app: v1Layers[1]?.entries ?? [], config: v1Layers[2]?.entries ?? [] }, o);
    const when = o.mtime + RELEASE_SHIFT;
    const v2Layers: LayerSpec[] = [
      { entries: r.base, createdBy: 'ADD rootfs.tar /', created: when },
      { entries: r.app, createdBy: 'COPY --chown=1000:1000 app /app', created: when + DAY },
      { entries: r.config, createdBy: `COPY etc /etc/${o.appName}`, created: when + DAY },
      { entries: r.cleanup, createdBy: 'RUN rm -rf /usr/share/doc/* /app/plugins/* && cp -r /src/plugins /app/plugins', created: when + 2 * DAY },
    ];
    images.v2 = appSpec(o, 'v2', v2Layers, '1.1.0', when + 2 * DAY);
    const whiteouts = r.cleanup.map((e) => e.path).filter((p) => p.slice(p.lastIndexOf('/') + 1).startsWith(WHITEOUT_PREFIX));
    changes = {
      ...diffFiles(flattenLayers(v1Layers.map((l) => l.entries)), flattenLayers(v2Layers.map((l) => l.entries))),
      renamedDirs: r.renamedDirs,
      whiteouts: whiteouts.filter((p) => !p.endsWith(OPAQUE_WHITEOUT)),
      opaqueDirs: whiteouts.filter((p) => p.endsWith(OPAQUE_WHITEOUT)).map((p) => p.slice(0, p.lastIndexOf('/'))),
    };
  }
  if (tags.includes('other')) {
    const other = { ...opts, appName: `${o.appName}-sidecar` };
    const oo = resolveGenOptions(other);
    const layers: LayerSpec[] = [
      base,
      { entries: generateAppTree(other), createdBy: 'COPY --chown=1000:1000 app /app', created: o.mtime + 2 * DAY },
      { entries: generateConfigTree(other), createdBy: `COPY etc /etc/${oo.appName}`, created: o.mtime + 2 * DAY },
    ];
    images.other = appSpec(oo, 'other', layers, '3.2.0', o.mtime + 2 * DAY);
  }
  return { platform: formatPlatform(o.platform), images, changes };
}
