// Node app trees from real npm packages, two ways: tarballs fetched with `npm pack NAME@VERSION`
// into the cache and extracted flat into /app/node_modules/<name>/ (direct dependencies only), or
// a whole transitive tree from a real `npm install --ignore-scripts` (hoisting, nested copies,
// .bin links, platform packages such as @esbuild/linux-x64), cached as a tar.
import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir, run } from '../lib/util.mjs';

/** The file name `npm pack` gives a spec (`@babel/core@7.23.5` -> `babel-core-7.23.5.tgz`). */
function tarballName(name, version) {
  return `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`;
}

/** Fetches the tarballs of [[name, version]] not yet cached; returns a map `name@version` -> path. */
export async function fetchNpm(deps) {
  const dir = join(cacheDir(), 'npm');
  await mkdir(dir, { recursive: true });
  const have = new Set(await readdir(dir));
  const todo = [...new Set(deps.map(([n, v]) => `${n}@${v}`))].filter((spec) => {
    const at = spec.lastIndexOf('@');
    return !have.has(tarballName(spec.slice(0, at), spec.slice(at + 1)));
  });
  if (todo.length > 0) {
    process.stderr.write(`dataset: npm pack ${todo.length} packages...\n`);
    await run('npm', ['pack', '--silent', ...todo], { cwd: dir });
  }
  const map = new Map();
  for (const [n, v] of deps) map.set(`${n}@${v}`, join(dir, tarballName(n, v)));
  return map;
}

/**
 * Builds /app of a node service at `root`: package.json naming `deps` ([[name, version]]),
 * node_modules/<name> extracted from each tarball, and node_modules/.package-lock.json as npm
 * writes it. Directories and the two JSON files get mtime `buildTime`; packaged files keep the
 * tarballs' (npm's fixed 1985 date).
 */
export async function buildNodeModules(root, appName, deps, tarballs, buildTime) {
  await rm(root, { recursive: true, force: true });
  const app = join(root, 'app');
  const nm = join(app, 'node_modules');
  await mkdir(nm, { recursive: true });
  const sorted = [...deps].sort((a, b) => a[0].localeCompare(b[0]));
  const lock = { name: appName, version: '1.0.0', lockfileVersion: 3, requires: true, packages: {} };
  for (const [name, version] of sorted) {
    const dest = join(nm, name);
    await mkdir(dest, { recursive: true });
    await run('tar', ['-xzf', tarballs.get(`${name}@${version}`), '-C', dest, '--strip-components=1', '--no-same-owner', '--no-same-permissions']);
    lock.packages[`node_modules/${name}`] = { version, resolved: `https://registry.npmjs.org/${name}/-/${name.split('/').pop()}-${version}.tgz` };
  }
  const pkg = { name: appName, version: '1.0.0', private: true, main: 'server.js', dependencies: Object.fromEntries(sorted) };
  await writeFile(join(app, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  await writeFile(join(nm, '.package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
  const at = `@${buildTime}`;
  await run('touch', ['-d', at, join(app, 'package.json'), join(nm, '.package-lock.json')]);
  await run('find', [root, '-type', 'd', '-exec', 'touch', '-d', at, '{}', '+']);
}

const ROUTES = ['health', 'items', 'users', 'orders', 'metrics'];

/** The files of a small service's source tree, for node (express) or python (flask). */
function appFiles(appName, lang) {
  if (lang === 'python') {
    const files = {
      'app.py': `from flask import Flask\nfrom routes import ${ROUTES.join(', ')}\n\napp = Flask('${appName}')\nfor m in (${ROUTES.join(', ')}):\n    app.register_blueprint(m.bp)\n`,
      'README.md': `# ${appName}\n\nA service of the fleet. Run with \`gunicorn app:app\`.\n`,
      'routes/__init__.py': '',
    };
    for (const r of ROUTES) files[`routes/${r}.py`] = `import time\nfrom flask import Blueprint, jsonify\n\nbp = Blueprint('${r}', __name__, url_prefix='/${r}')\n\n\n@bp.get('/')\ndef index():\n    return jsonify(route='${r}', app='${appName}', at=time.time())\n`;
    return files;
  }
  const files = {
    'server.js': `'use strict';\nconst express = require('express');\nconst app = express();\napp.use(express.json());\nfor (const r of [${ROUTES.map((r) => `'${r}'`).join(', ')}]) app.use('/' + r, require('./routes/' + r));\napp.listen(process.env.PORT || 8080, () => console.log('${appName} listening'));\n`,
    'README.md': `# ${appName}\n\nA service of the fleet. Build with \`docker build -t ${appName} .\`.\n`,
    '.env.example': 'PORT=8080\nLOG_LEVEL=info\n',
  };
  for (const r of ROUTES) files[`routes/${r}.js`] = `'use strict';\nconst router = require('express').Router();\nrouter.get('/', (req, res) => res.json({ route: '${r}', app: '${appName}', at: Date.now() }));\nmodule.exports = router;\n`;
  return files;
}

/** A small app source tree (/app/server.js or app.py, routes, ...), identical for a given name and language: the COPY . . layer. */
export async function buildAppSource(root, appName, sourceTime, lang = 'node') {
  await rm(root, { recursive: true, force: true });
  const app = join(root, 'app');
  await mkdir(join(app, 'routes'), { recursive: true });
  for (const [p, body] of Object.entries(appFiles(appName, lang))) await writeFile(join(app, p), body);
  await run('find', [root, '-exec', 'touch', '-d', `@${sourceTime}`, '{}', '+']);
}

/**
 * The tree `npm install --ignore-scripts` makes for an app whose package.json pins `deps`
 * ({name: version}; transitive ranges resolve to what the registry offers at the first build):
 * package.json, package-lock.json and node_modules, cached as
 * `<cache>/npm-trees/<app>-<hash>.tar.zst` so later builds are offline. Returns that path.
 * (`--before` cannot pin the transitive versions to a date here: the registry the machine reaches
 * reports rewritten publish times.)
 */
export async function npmInstallTree(appName, deps) {
  const key = createHash('sha256').update(JSON.stringify({ appName, deps })).digest('hex').slice(0, 12);
  const dir = join(cacheDir(), 'npm-trees');
  const file = join(dir, `${appName}-${key}.tar.zst`);
  if (await access(file).then(() => true, () => false)) return file;
  await mkdir(dir, { recursive: true });
  const tmp = await mkdtemp(join(dir, `.${appName}-`));
  try {
    const pkg = { name: appName, version: '1.0.0', private: true, main: 'server.js', dependencies: deps };
    await writeFile(join(tmp, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
    process.stderr.write(`dataset: npm install ${Object.keys(deps).length} packages and their dependencies for ${appName}...\n`);
    // npm_* variables from an enclosing `npm run bench` would configure this install too
    await run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--omit=dev', '--loglevel=error'], { cwd: tmp, dropEnv: (k) => k.toLowerCase().startsWith('npm_') });
    await run('tar', ['--zstd', '-cf', `${file}.tmp`, '-C', tmp, 'package.json', 'package-lock.json', 'node_modules']);
    await rename(`${file}.tmp`, file);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return file;
}

/**
 * Builds /app at `root` from a tree made by npmInstallTree, every entry stamped `buildTime`: npm
 * (11 here) writes installed files with the time of the install, so a `RUN npm ci` layer rebuilt
 * later changes every mtime, unchanged packages included.
 */
export async function buildInstalledApp(root, treeTar, buildTime) {
  await rm(root, { recursive: true, force: true });
  const app = join(root, 'app');
  await mkdir(app, { recursive: true });
  await run('tar', ['--zstd', '-xf', treeTar, '-C', app, '--no-same-owner']);
  await run('find', [root, '-exec', 'touch', '-h', '-d', `@${buildTime}`, '{}', '+']);
}
