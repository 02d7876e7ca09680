// The image pairs of the dataset: what the device holds (v1) and the target (v2), as lists of layer
// names (layers are built by dataset.mjs). `kind` says which targets of the bundle bench apply:
//   dep-bump         a dependency bump (node_modules layer rebuilt at a later lockfile)
//   security-update  the base rebuilt with the security/point-release updates
//   noop-rebuild     every layer rebuilt with new mtimes, same contents
//   major-upgrade    the base moved to the next Debian release
//   cross-image      the device holds another image on the same base

const DAY = 86400;
/** App sources checked out 2024-01-01; base v1 built 2025-05-17, v2 (and trixie) thirty days later. */
export const T_SRC = 1704067200;
export const T1 = 1747440000;
export const T2 = T1 + 30 * DAY;
export const T_NOOP = T1 + DAY;

const NODE_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NODE_ENV=production'];
const PY_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'PYTHONUNBUFFERED=1'];

/** The Dockerfile step that made each layer (image history). */
function createdBy(name) {
  if (name.startsWith('base') || name === 'noop-base') return 'ADD rootfs.tar /';
  if (name.endsWith('-runtime')) return 'RUN apt-get install -y --no-install-recommends ...';
  if (name.startsWith('build-modules')) return 'RUN npm ci --ignore-scripts';
  if (name.includes('modules')) return 'RUN npm ci --omit=dev';
  return 'COPY . /app';
}

/**
 * The pairs over the built `layers` ({name: {file, diffId, size, ...}}); `debUpdated` is how many
 * of the `debPackages` bookworm packages the security update changes, `trixie` the count of
 * packages resolved in trixie.
 */
export function definePairs(layers, { debUpdated, debPackages, trixie }) {
  const L = (name) => ({ ...layers[name], createdBy: createdBy(name) });
  const image = (tag, names, t, { cmd = ['node', 'server.js'], env = NODE_ENV } = {}) => ({ tag, created: t, layers: names.map(L), cmd, env, workingDir: '/app' });
  const web1 = ['base-v1', 'web-modules-v1', 'web-src'];
  const api1 = ['base-v1', 'api-modules', 'api-src'];
  const pair = (name, kind, title, v1, v2) => ({ name, kind, title, v1, v2 });
  return [
    pair('dep-bump', 'dep-bump', 'dependency bump: web app node_modules at a later lockfile',
      image('v1', web1, T1 + 3600),
      image('v2', ['base-v1', 'web-modules-v2', 'web-src'], T2 + 3600)),
    pair('security-update', 'security-update', `Debian base security update (${debUpdated} of ${debPackages} packages), api app on top`,
      image('v1', api1, T1 + 7200),
      image('v2', ['base-v2', 'api-modules', 'api-src'], T2 + 7200)),
    pair('noop-rebuild', 'noop-rebuild', 'no-op rebuild: every layer re-tarred with new mtimes, same contents',
      image('v1', web1, T1 + 3600),
      image('v2', ['noop-base', 'noop-web-modules', 'noop-web-src'], T_NOOP)),
    pair('cross-image', 'cross-image', 'cross-image: device runs the api app; target is the web app (v2 deps) on the same base',
      image('v1', api1, T1 + 7200),
      image('v2', ['base-v1', 'web-modules-v2', 'web-src'], T2 + 3600)),
    pair('major-bump', 'dep-bump', 'dependency bump with majors: build toolchain (typescript 4->5, webpack 4->5, vite 4->5, eslint 8->9), full npm install tree',
      image('v1', ['base-v1', 'build-modules-v1', 'build-src'], T1 + 3600, { cmd: ['npm', 'run', 'build'] }),
      image('v2', ['base-v1', 'build-modules-v2', 'build-src'], T2 + 3600, { cmd: ['npm', 'run', 'build'] })),
    pair('debian-upgrade', 'major-upgrade', `Debian major upgrade: base bookworm -> trixie (${trixie} packages, renames mapped), api app on top`,
      image('v1', api1, T1 + 7200),
      image('v2', ['base-trixie', 'api-modules', 'api-src'], T2 + 7200)),
    pair('cross-stack', 'cross-image', 'cross-stack: device runs a python service (apt python3, flask, numpy); target is the web app on Debian nodejs, same base',
      image('v1', ['base-v1', 'py-runtime', 'py-src'], T1 + 7200, { cmd: ['gunicorn', 'app:app'], env: PY_ENV }),
      image('v2', ['base-v1', 'node-runtime', 'web-modules-v2', 'web-src'], T2 + 3600)),
  ];
}
