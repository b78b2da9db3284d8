/**
 * `vectun-wg`'s command line against wireguard-go's rules (its main.go): the
 * parse, version and usage paths, which need no device. The background
 * process and wg-quick are in test/e2e/wg-quick.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExitCode } from '../../src/cli/exit-codes.js';
import { parseWireguardGoArgs, runWireguardGoCli } from '../../src/cli/wireguard-go.js';
import { capture } from './capture.js';

test('vectun-wg arguments as wireguard-go reads them: INTERFACE backgrounds, -f/--foreground or WG_PROCESS_FOREGROUND=1 stays', () => {
  assert.deepEqual(parseWireguardGoArgs(['wg0'], {}), { kind: 'run', ifname: 'wg0', foreground: false });
  assert.deepEqual(parseWireguardGoArgs(['-f', 'wg0'], {}), { kind: 'run', ifname: 'wg0', foreground: true });
  assert.deepEqual(parseWireguardGoArgs(['--foreground', 'wg0'], {}), { kind: 'run', ifname: 'wg0', foreground: true });
  assert.deepEqual(parseWireguardGoArgs(['wg0'], { WG_PROCESS_FOREGROUND: '1' }), { kind: 'run', ifname: 'wg0', foreground: true });
  assert.deepEqual(parseWireguardGoArgs(['wg0'], { WG_PROCESS_FOREGROUND: 'yes' }), { kind: 'run', ifname: 'wg0', foreground: false }, 'only "1" counts');
  assert.deepEqual(parseWireguardGoArgs(['--version'], {}), { kind: 'version' });
  // wireguard-go: the flag only in first place, exactly one name, --version only alone.
  for (const argv of [[], ['-f'], ['wg0', '-f'], ['wg0', 'wg1'], ['-f', 'wg0', 'x'], ['--version', 'wg0']]) {
    assert.deepEqual(parseWireguardGoArgs(argv, {}), { kind: 'usage' }, JSON.stringify(argv));
  }
});

test('vectun-wg: --version on stdout exits 0; usage and a bad interface name exit 2 on stderr, before any device or process', async () => {
  const v = capture();
  assert.equal(await runWireguardGoCli(['--version'], v.io, {}), ExitCode.OK);
  assert.match(v.out(), /^vectun-wg \d+\.\d+\.\d+\n/);
  const u = capture();
  assert.equal(await runWireguardGoCli([], u.io, {}), ExitCode.USAGE);
  assert.equal(u.err(), 'Usage: vectun-wg [-f/--foreground] INTERFACE-NAME\n');
  for (const name of ['a-name-of-16-byt', 'bad/name', '..']) {
    const b = capture();
    assert.equal(await runWireguardGoCli(['-f', name], b.io, {}), ExitCode.USAGE, name);
    assert.match(b.err(), /^vectun-wg: /);
    assert.equal(b.out(), '');
  }
});
