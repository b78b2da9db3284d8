'use strict';
// Builds the node-api prebuild of the addon into prebuilds/<platform>-<arch>/,
// where node-gyp-build finds it at install and load time. Run by `npm pack`
// and `npm publish` (the prepack script), so the package carries binaries and
// git does not. The sources are binding.gyp's: prebuildify runs node-gyp on it.
//
//   npm run prebuilds                   this machine (linux-x64 here)
//   npm run prebuilds -- --arch arm64   linux-arm64: on an arm64 machine this is
//                                       the default; on x64 it needs a cross
//                                       toolchain (Debian/Ubuntu:
//                                       gcc-aarch64-linux-gnu and
//                                       libc6-dev-arm64-cross), CC/CXX/strip
//                                       default to aarch64-linux-gnu-*.
//
// One binary serves every Node version with node-api 8 (NAPI_VERSION in
// binding.gyp), so it is built once, against the running Node's headers.
// Symbols the addon takes from Node (node-api, libuv, OpenSSL's EVP functions)
// stay undefined in the .node file and are resolved from the host node binary
// when it is loaded.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const CROSS = { arm64: 'aarch64-linux-gnu', x64: 'x86_64-linux-gnu' };

function option(name) {
  const args = process.argv.slice(2);
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`${name}=`));
  return eq === undefined ? undefined : eq.slice(name.length + 1);
}

function onPath(program) {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && fs.existsSync(path.join(dir, program)));
}

const arch = option('--arch') ?? process.env.npm_config_arch ?? process.arch;
const env = { ...process.env };
if (arch !== process.arch) {
  const triple = CROSS[arch];
  if (triple === undefined) {
    console.error(`prebuilds: no cross toolchain known for ${arch} (known: ${Object.keys(CROSS).join(', ')}); set CC and CXX`);
    if (env.CC === undefined) process.exit(2);
  }
  env.CC ??= `${triple}-gcc`;
  // The addon is C only; node-gyp links with CXX, for which the C compiler serves.
  env.CXX ??= onPath(`${triple}-g++`) ? `${triple}-g++` : env.CC;
  env.PREBUILD_STRIP_BIN ??= `${triple}-strip`;
}

const root = path.join(__dirname, '..');
// prebuildify runs `node-gyp rebuild` here and moves build/Release/vectun.node
// into prebuilds/; a development build that was there is put back (for this
// machine's arch: the fresh prebuild, same sources) so the checkout keeps
// loading build/Release.
const devBuild = path.join(root, 'build', 'Release', 'vectun.node');
const saved = fs.existsSync(devBuild) ? fs.readFileSync(devBuild) : undefined;
const args = [
  require.resolve('prebuildify/bin.js'),
  '--napi', '--strip', '--tag-libc',
  `--target=${process.versions.node}`,
  `--arch=${arch}`,
  root,
];
const r = spawnSync(process.execPath, args, { cwd: root, env, stdio: 'inherit' });
if (saved !== undefined) {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${arch}`);
  const built = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.node')) : [];
  fs.mkdirSync(path.dirname(devBuild), { recursive: true });
  if (r.status === 0 && arch === process.arch && built.length === 1) fs.copyFileSync(path.join(dir, built[0]), devBuild);
  else fs.writeFileSync(devBuild, saved, { mode: 0o755 });
}
process.exit(r.status ?? 1);
