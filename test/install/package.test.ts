/**
 * Packaging: what `npm pack` ships and what a user's `npm install` does with
 * it. The tarball carries a node-api prebuild (prebuilds/linux-x64, built by
 * the prepack script from binding.gyp); installing it into an empty folder
 * with no compiler on PATH must give a working `Tun`; when no prebuild matches
 * the install script (node-gyp-build) must build from source instead.
 *
 * Real npm, real tarball, real devices: the Tun runs in a namespace created
 * here and always removed; addresses are 198.18.0.0/15 only. The tarball's
 * runtime dependencies come from the npm cache or registry (--prefer-offline).
 * Needs root (TUN, namespaces): skips with the reason, fails under CI.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadBinding } from '../../src/device/native.js';
import { createNetns } from '../../src/lab/netns.js';
import { e2eSkip } from '../e2e/require-root.js';

const skip = e2eSkip();
const ROOT = path.join(__dirname, '..', '..', '..');
const PROBE = path.join(__dirname, 'install-probe.js');
const PREBUILD_DIR = `prebuilds/${process.platform}-${process.arch}`;
/** What a C/C++ toolchain and node-gyp's Python would be called. */
const TOOLCHAIN = ['cc', 'gcc', 'c++', 'g++', 'clang', 'make', 'python3', 'python'];

let work = '';
let tarball = '';
let hadPrebuilds = true;

function run(cmd: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: options.cwd, env: options.env ?? process.env, timeout: options.timeoutMs, maxBuffer: 16 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** npm's own script (npm-cli.js), as the `npm` on this PATH resolves. */
function npmCli(): string {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    const candidate = path.join(dir, 'npm');
    if (dir !== '' && existsSync(candidate)) return realpathSync(candidate);
  }
  throw new Error('npm is not on PATH');
}

/** A folder whose only programs are node, npm and sh (npm runs scripts with sh). */
function minimalPath(): string {
  const bin = path.join(work, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, path.join(bin, 'node'));
  symlinkSync(npmCli(), path.join(bin, 'npm'));
  symlinkSync('/bin/sh', path.join(bin, 'sh'));
  return bin;
}

/** An empty project that allows vectun's install script (npm 12 blocks unapproved ones). */
function emptyProject(name: string): string {
  const dir = path.join(work, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `vt-${name}`, private: true, allowScripts: { vectun: true } }));
  return dir;
}

async function probe(installDir: string, mode: 'load' | 'io'): Promise<Record<string, unknown>> {
  if (mode === 'load') return JSON.parse(await run(process.execPath, [PROBE, installDir, 'load'], { cwd: installDir, timeoutMs: 30_000 })) as Record<string, unknown>;
  const ns = await createNetns('inst');
  try {
    const out = await ns.exec(process.execPath, [PROBE, installDir, 'io'], 60_000);
    return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
  } finally {
    await ns.remove();
  }
}

before(async () => {
  if (skip !== false) return;
  work = mkdtempSync(path.join(tmpdir(), 'vectun-install-'));
  hadPrebuilds = existsSync(path.join(ROOT, 'prebuilds'));
  // npm pack runs prepack (npm run prebuilds: prebuildify) and prepare (the TypeScript build).
  await run('npm', ['pack', '--pack-destination', work, '--loglevel', 'warn'], { cwd: ROOT, timeoutMs: 300_000 });
  const packed = readdirSync(work).filter((f) => f.endsWith('.tgz'));
  assert.equal(packed.length, 1, `one tarball, got ${packed.join(', ')}`);
  tarball = path.join(work, packed[0]!);
});

after(() => {
  if (work !== '') rmSync(work, { recursive: true, force: true });
  // Leave the checkout as found: prebuilds/ is a packing product, not a source.
  if (!hadPrebuilds) rmSync(path.join(ROOT, 'prebuilds'), { recursive: true, force: true });
});

test('npm pack ships the node-api prebuild for this platform, built from binding.gyp, needing nothing but libc', { skip, timeout: 60_000 }, async () => {
  const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean);
  const prebuilds = files.filter((f) => f.startsWith(`package/${PREBUILD_DIR}/`) && f.endsWith('.node'));
  assert.deepEqual(prebuilds, [`package/${PREBUILD_DIR}/vectun.glibc.node`]);
  assert.ok(!files.some((f) => f.startsWith('package/build/')), 'no build/ directory in the package');
  for (const f of ['package/binding.gyp', 'package/native/addon.c', 'package/dist/src/index.js']) assert.ok(files.includes(f), `${f} in the tarball`);
  // OpenSSL (for native/aead.c), libuv and node-api come from the host node at load time.
  const unpacked = path.join(work, 'unpacked');
  mkdirSync(unpacked);
  execFileSync('tar', ['xzf', tarball, '-C', unpacked]);
  const binary = path.join(unpacked, 'package', PREBUILD_DIR, 'vectun.glibc.node');
  const needed = [...execFileSync('readelf', ['-d', binary], { encoding: 'utf8' }).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
  assert.ok(needed.length > 0 && needed.every((lib) => /^(libc|libm|libpthread|libdl|ld-linux[-\w]*)\.so/.test(lib)), `needed: ${needed.join(', ')}`);
  // Every function of the source build (every file binding.gyp lists) is in the prebuild.
  const prebuilt = Object.keys(require(binary) as object).sort();
  assert.deepEqual(prebuilt, Object.keys(loadBinding()).sort());
});

test('installs from the tarball with no compiler on PATH; a Tun from that install reads and writes', { skip, timeout: 180_000 }, async () => {
  const bin = minimalPath();
  const present = TOOLCHAIN.filter((tool) => existsSync(path.join(bin, tool)));
  assert.deepEqual(present, [], 'no toolchain on the install PATH');
  assert.deepEqual(readdirSync(bin).sort(), ['node', 'npm', 'sh']);
  const project = emptyProject('prebuilt');
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel', 'warn', tarball], {
    cwd: project, env: { PATH: bin, HOME: process.env['HOME'] ?? '/root' }, timeoutMs: 120_000,
  });
  const pkg = path.join(project, 'node_modules', 'vectun');
  assert.ok(existsSync(path.join(pkg, PREBUILD_DIR, 'vectun.glibc.node')));
  assert.ok(!existsSync(path.join(pkg, 'build')), 'the install script found the prebuild and built nothing');
  for (const command of ['vectun', 'vectun-wg']) {
    const link = path.join(project, 'node_modules', '.bin', command);
    assert.ok(existsSync(link) && (statSync(link).mode & 0o111) !== 0, `${command} installed as an executable`);
  }
  const r = await probe(project, 'io');
  assert.deepEqual(r['addons'], [path.join(pkg, PREBUILD_DIR, 'vectun.glibc.node')], 'the process loaded the prebuild');
  assert.equal(r['read'], true, 'a datagram routed into the device was read');
  assert.equal(r['written'], 1);
  assert.equal(r['received'], 'from the tun', 'a packet written to the device reached a local socket');
});

test('no prebuild matches (only one for another architecture): ERR_TUN_NATIVE, then the install script builds from source', { skip, timeout: 240_000 }, async () => {
  const project = emptyProject('source');
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel', 'warn', tarball], { cwd: project, timeoutMs: 120_000 });
  const pkg = path.join(project, 'node_modules', 'vectun');
  const other = process.arch === 'arm64' ? 'x64' : 'arm64';
  const otherDir = path.join(pkg, 'prebuilds', `${process.platform}-${other}`);
  rmSync(otherDir, { recursive: true, force: true }); // a real one, if the package ships both
  renameSync(path.join(pkg, PREBUILD_DIR), otherDir);
  const missing = await probe(project, 'load');
  assert.equal(missing['code'], 'ERR_TUN_NATIVE');
  assert.match(String(missing['message']), /no prebuild .* matches linux-\w+ .*npm rebuild vectun/);
  // npm rebuild runs the install script: node-gyp-build finds no match and runs node-gyp.
  await run('npm', ['rebuild', 'vectun', '--foreground-scripts', '--loglevel', 'warn'], { cwd: project, timeoutMs: 180_000 });
  assert.ok(existsSync(path.join(pkg, 'build', 'Release', 'vectun.node')), 'built from source');
  const r = await probe(project, 'io');
  assert.deepEqual(r['addons'], [path.join(pkg, 'build', 'Release', 'vectun.node')], 'the process loaded the source build');
  assert.equal(r['read'], true);
  assert.equal(r['received'], 'from the tun');
});
