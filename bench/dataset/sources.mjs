// What the real-artifact dataset is made of: npm packages at two published versions a few months
// apart (late 2023 -> spring 2024), a frontend build toolchain before and after a round of major
// versions (with its whole npm install tree), Debian bookworm packages whose versions are resolved
// from apt at build time (see debian.mjs), the same set in trixie, and the apt layers of a python
// service and of a node runtime. Changing anything here changes the dataset id, so a new dataset
// directory is built.

/**
 * The "web" app's dependencies: [name, version in v1, version in v2]. Same version in both means
 * the package did not move (most of a real lockfile bump). Not a full transitive closure: each
 * package is installed flat, as npm would for direct dependencies.
 */
export const WEB_DEPS = [
  ['express', '4.18.2', '4.19.2'],
  ['body-parser', '1.20.1', '1.20.2'],
  ['lodash', '4.17.21', '4.17.21'],
  ['react', '18.2.0', '18.3.1'],
  ['react-dom', '18.2.0', '18.3.1'],
  ['next', '14.0.4', '14.2.3'],
  ['typescript', '5.3.3', '5.4.5'],
  ['axios', '1.6.2', '1.6.8'],
  ['moment', '2.29.4', '2.30.1'],
  ['dayjs', '1.11.10', '1.11.11'],
  ['date-fns', '3.0.6', '3.6.0'],
  ['chalk', '5.3.0', '5.3.0'],
  ['commander', '11.1.0', '12.0.0'],
  ['debug', '4.3.4', '4.3.4'],
  ['semver', '7.5.4', '7.6.0'],
  ['uuid', '9.0.1', '9.0.1'],
  ['ws', '8.14.2', '8.16.0'],
  ['yargs', '17.7.2', '17.7.2'],
  ['zod', '3.22.4', '3.23.8'],
  ['rxjs', '7.8.1', '7.8.1'],
  ['tslib', '2.6.2', '2.6.2'],
  ['webpack', '5.89.0', '5.91.0'],
  ['eslint', '8.55.0', '8.57.0'],
  ['prettier', '3.1.0', '3.2.5'],
  ['@babel/core', '7.23.5', '7.24.5'],
  ['@babel/parser', '7.23.5', '7.24.5'],
  ['@babel/types', '7.23.5', '7.24.5'],
  ['@babel/traverse', '7.23.5', '7.24.5'],
  ['@babel/generator', '7.23.5', '7.24.5'],
  ['core-js', '3.34.0', '3.37.0'],
  ['rollup', '4.9.1', '4.17.2'],
  ['sass', '1.69.5', '1.77.0'],
  ['@types/node', '20.10.4', '20.12.7'],
  ['socket.io', '4.7.2', '4.7.5'],
  ['graphql', '16.8.1', '16.8.1'],
];

/**
 * The "api" app the device already runs in the cross-image pair: another service of the fleet on
 * the same base, sharing some dependencies (some at the same version, some not).
 */
export const API_DEPS = [
  ['express', '4.18.2'],
  ['body-parser', '1.20.1'],
  ['lodash', '4.17.21'],
  ['axios', '1.6.2'],
  ['pg', '8.11.3'],
  ['jsonwebtoken', '9.0.2'],
  ['debug', '4.3.4'],
  ['uuid', '9.0.1'],
  ['ws', '8.14.2'],
  ['zod', '3.22.4'],
  ['mongoose', '8.0.3'],
  ['mongodb', '6.3.0'],
  ['redis', '4.6.11'],
  ['dayjs', '1.11.10'],
  ['semver', '7.5.4'],
  ['commander', '11.1.0'],
  ['chalk', '5.3.0'],
  ['yargs', '17.7.2'],
  ['socket.io', '4.7.2'],
  ['graphql', '16.8.1'],
  ['tslib', '2.6.2'],
  ['rxjs', '7.8.1'],
  ['@types/node', '20.10.4'],
  ['typescript', '5.3.3'],
];

/**
 * Debian bookworm packages of the base rootfs (essential set, apt, TLS/curl stack, python and
 * perl runtimes, ICU, tzdata: what a debian:bookworm + curl + python image holds).
 */
export const DEBIAN_PACKAGES = [
  'base-files', 'base-passwd', 'bash', 'coreutils', 'dash', 'debianutils', 'diffutils', 'dpkg', 'findutils', 'grep', 'gzip',
  'hostname', 'init-system-helpers', 'login', 'mount', 'ncurses-base', 'ncurses-bin', 'passwd', 'sed', 'sysvinit-utils', 'tar',
  'util-linux', 'tzdata', 'apt', 'libapt-pkg6.0', 'gpgv', 'libc6', 'libc-bin', 'libgcc-s1', 'libstdc++6', 'libacl1', 'libattr1',
  'libaudit1', 'libblkid1', 'libbz2-1.0', 'libcap-ng0', 'libcap2', 'libcrypt1', 'libgcrypt20', 'libgmp10', 'libgpg-error0',
  'liblz4-1', 'liblzma5', 'libmd0', 'libmount1', 'libpam0g', 'libpam-modules', 'libpam-modules-bin', 'libpam-runtime',
  'libpcre2-8-0', 'libselinux1', 'libsmartcols1', 'libsystemd0', 'libtinfo6', 'libudev1', 'libuuid1', 'libzstd1', 'zlib1g',
  'libseccomp2', 'libxxhash0', 'libffi8', 'libsemanage2', 'libsepol2', 'libdb5.3', 'perl-base',
  'ca-certificates', 'openssl', 'libssl3', 'curl', 'libcurl4', 'libnghttp2-14', 'libssh2-1', 'libbrotli1', 'libpsl5',
  'librtmp1', 'libidn2-0', 'libunistring2', 'libgnutls30', 'libnettle8', 'libhogweed6', 'libp11-kit0', 'libtasn1-6',
  'libkrb5-3', 'libgssapi-krb5-2', 'libk5crypto3', 'libkrb5support0', 'libkeyutils1', 'libcom-err2', 'libldap-2.5-0',
  'libsasl2-2', 'libsasl2-modules-db', 'libexpat1', 'libsqlite3-0', 'libxml2', 'libicu72', 'python3.11-minimal',
  'libpython3.11-minimal', 'libpython3.11-stdlib', 'libperl5.36', 'perl', 'perl-modules-5.36',
];

/**
 * The "build" image's direct dependencies (a frontend build toolchain), before and after a round of
 * major versions: typescript 4.9 -> 5.4 (its compiler bundles restructured), webpack 4 -> 5,
 * vite 4 -> 5 (rollup 3 -> 4 with native @rollup/* binaries, esbuild 0.18 -> 0.20), eslint 8 -> 9,
 * babel-loader 8 -> 9, prettier 2 -> 3. Installed with every transitive dependency by a real
 * `npm install --ignore-scripts` (npm.mjs), about 630 and 340 packages.
 */
export const BUILD_DEPS = {
  v1: { typescript: '4.9.5', webpack: '4.47.0', 'webpack-cli': '4.10.0', vite: '4.5.3', eslint: '8.57.0', '@babel/core': '7.22.20', '@babel/preset-env': '7.22.20', 'babel-loader': '8.3.0', prettier: '2.8.8' },
  v2: { typescript: '5.4.5', webpack: '5.91.0', 'webpack-cli': '5.1.4', vite: '5.2.12', eslint: '9.3.0', '@babel/core': '7.24.6', '@babel/preset-env': '7.24.6', 'babel-loader': '9.1.3', prettier: '3.2.5' },
};

/** Where the Debian major upgrade comes from: a private apt configuration (apt.mjs) naming only these. */
export const TRIXIE_SOURCES = [
  'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie trixie-updates main',
  'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security trixie-security main',
];

/**
 * Bookworm packages of DEBIAN_PACKAGES whose trixie successor has another name (soname or version
 * bumps). The 64-bit time_t renames (libssl3 -> libssl3t64, libcurl4 -> libcurl4t64, ...) are
 * found by trying `<name>t64` (debian.mjs resolveUpgrade).
 */
export const TRIXIE_RENAMES = {
  'libapt-pkg6.0': 'libapt-pkg7.0',
  libunistring2: 'libunistring5',
  'libldap-2.5-0': 'libldap2',
  libicu72: 'libicu76',
  'python3.11-minimal': 'python3.13-minimal',
  'libpython3.11-minimal': 'libpython3.13-minimal',
  'libpython3.11-stdlib': 'libpython3.13-stdlib',
  'libperl5.36': 'libperl5.40',
  'perl-modules-5.36': 'perl-modules-5.40',
};

/**
 * The bookworm packages a python (flask + gunicorn + SQLAlchemy + numpy) service installs on the
 * base with `apt-get install`: the device's image in the cross-stack pair.
 */
export const PYTHON_DEBS = [
  'python3', 'python3-minimal', 'python3.11', 'python3-pkg-resources', 'python3-packaging', 'python3-flask', 'python3-werkzeug',
  'python3-jinja2', 'python3-markupsafe', 'python3-itsdangerous', 'python3-click', 'python3-blinker', 'python3-requests',
  'python3-urllib3', 'python3-idna', 'python3-certifi', 'python3-charset-normalizer', 'python3-chardet', 'python3-sqlalchemy',
  'python3-greenlet', 'python3-typing-extensions', 'python3-psycopg2', 'libpq5', 'gunicorn', 'python3-gunicorn', 'python3-yaml',
  'libyaml-0-2', 'python3-dateutil', 'python3-six', 'python3-tz', 'python3-numpy', 'libblas3', 'liblapack3', 'libgfortran5',
  'libquadmath0', 'media-types', 'readline-common', 'libreadline8',
];

/** The bookworm packages of Debian's node runtime (`apt-get install nodejs`): the target's runtime layer in the cross-stack pair. */
export const NODE_DEBS = ['nodejs', 'libnode108', 'libuv1', 'libc-ares2', 'node-acorn', 'node-cjs-module-lexer', 'node-undici', 'node-busboy'];

/** Version of how the dataset is built: bump it when dataset.mjs changes what it writes. */
export const DATASET_FORMAT = 2;
