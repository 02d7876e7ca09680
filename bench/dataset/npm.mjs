// Node app trees from real npm packages: tarballs fetched with `npm pack NAME@VERSION` into the
// cache, extracted into /app/node_modules/<name>/ as `npm ci` lays them out (flat).
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
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

/** A small app source tree (/app/server.js, routes, ...), identical for a given name: the COPY . . layer. */
export async function buildAppSource(root, appName, sourceTime) {
  await rm(root, { recursive: true, force: true });
  const app = join(root, 'app');
  await mkdir(join(app, 'routes'), { recursive: true });
  const files = {
    'server.js': `'use strict';\nconst express = require('express');\nconst app = express();\napp.use(express.json());\nfor (const r of ['health', 'items', 'users', 'orders', 'metrics']) app.use('/' + r, require('./routes/' + r));\napp.listen(process.env.PORT || 8080, () => console.log('${appName} listening'));\n`,
    'README.md': `# ${appName}\n\nA service of the fleet. Build with \`docker build -t ${appName} .\`.\n`,
    '.env.example': 'PORT=8080\nLOG_LEVEL=info\n',
  };
  for (const r of ['health', 'items', 'users', 'orders', 'metrics']) {
    files[`routes/${r}.js`] = `'use strict';\nconst router = require('express').Router();\nrouter.get('/', (req, res) => res.json({ route: '${r}', app: '${appName}', at: Date.now() }));\nmodule.exports = router;\n`;
  }
  for (const [p, body] of Object.entries(files)) await writeFile(join(app, p), body);
  await run('find', [root, '-exec', 'touch', '-d', `@${sourceTime}`, '{}', '+']);
}
