import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VectunError } from '../../src/errors.js';
import { ExitCode } from '../../src/cli/exit-codes.js';
import { runCli, wgLogLevel, type BenchOptions, type CliCommands, type WgOptions } from '../../src/cli/program.js';
import { runWg, type WgCommandDeps, type WgCommandDevice } from '../../src/cli/wg.js';
import { UapiServer, uapiRequest } from '../../src/wg/uapi-server.js';
import { generatePrivateKey, keyToBase64, keyToHex } from '../../src/wg/crypto.js';
import { FakeWgControl } from '../wg/fake-control.js';
import { capture } from './capture.js';

function recorder(): { calls: WgOptions[]; bench: BenchOptions[]; commands: CliCommands } {
  const calls: WgOptions[] = [];
  const bench: BenchOptions[] = [];
  const none = async (): Promise<number> => 0;
  return { calls, bench, commands: { demo: none, bridge: none, bench: none, wg: async (o) => (calls.push(o), 0), benchWg: async (o) => (bench.push(o), 0) } };
}

test('vectun bench wg: --seconds, --repeats, --json reach the WireGuard benchmark, not the plain one', async () => {
  const { bench, commands } = recorder();
  let plain = 0;
  commands.bench = async () => (plain++, 0);
  assert.equal(await runCli(['bench', 'wg', '--seconds', '2', '--repeats', '3', '--json'], capture().io, commands), 0);
  assert.deepEqual(bench, [{ seconds: 2, repeats: 3, json: true }]);
  assert.equal(plain, 0);
  assert.equal(await runCli(['bench', '--seconds', '2'], capture().io, commands), 0);
  assert.equal(plain, 1, 'vectun bench alone is still the TUN benchmark');
  const c = capture();
  assert.equal(await runCli(['bench', 'wg', '--help'], c.io, commands), 0);
  assert.match(c.out(), /wireguard-go to wireguard-go/);
});

test('vectun wg: defaults like wireguard-go (MTU 1420, offload on, log level error)', async () => {
  const { calls, commands } = recorder();
  assert.equal(await runCli(['wg', 'wg0'], capture().io, commands), 0);
  assert.deepEqual(calls[0], { ifname: 'wg0', mtu: 1420, offload: true, logLevel: 'error', json: false });
  assert.equal(await runCli(['wg', '-f', '--mtu', '1380', '--no-offload', '--log-level', 'verbose', '--json', 'vt1'], capture().io, commands), 0);
  assert.deepEqual(calls[1], { ifname: 'vt1', mtu: 1380, offload: false, logLevel: 'verbose', json: true });
});

test('vectun wg: LOG_LEVEL values as wireguard-go reads them', () => {
  assert.equal(wgLogLevel('debug'), 'verbose');
  assert.equal(wgLogLevel('verbose'), 'verbose');
  assert.equal(wgLogLevel('silent'), 'silent');
  assert.equal(wgLogLevel('error'), 'error');
  assert.equal(wgLogLevel(undefined), 'error');
  assert.equal(wgLogLevel('loud'), 'error');
});

test('vectun wg: usage errors exit 2 (no name, bad name, MTU out of range, unknown level)', async () => {
  for (const argv of [['wg'], ['wg', 'a/b'], ['wg', 'x'.repeat(16)], ['wg', '--mtu', '100', 'wg0'], ['wg', '--log-level', 'loud', 'wg0'], ['wg', 'a', 'b']]) {
    const { calls, commands } = recorder();
    assert.equal(await runCli(argv, capture().io, commands), ExitCode.USAGE, argv.join(' '));
    assert.equal(calls.length, 0);
  }
});

test('vectun wg --help names the UAPI socket, wg and the exit codes', async () => {
  const c = capture();
  assert.equal(await runCli(['wg', '--help'], c.io, recorder().commands), 0);
  assert.match(c.out(), /Usage: vectun wg \[options\] <ifname>/);
  assert.match(c.out(), /\/var\/run\/wireguard\/<ifname>\.sock/);
  assert.match(c.out(), /--mtu <n>/);
  assert.match(c.out(), /Exit codes:[\s\S]*0 +success \(bridge, wg/);
});

/** A fake device: the in-memory control, an end trigger, and a record of close. */
function fakeDevice(name = 'vtcli0'): { device: WgCommandDevice; control: FakeWgControl; end: (why: string) => void; closed: () => boolean; warn: (m: string) => void } {
  const control = new FakeWgControl();
  let endListener: (why: string) => void = () => undefined;
  let warnListener: (m: string) => void = () => undefined;
  let closed = false;
  return {
    control,
    device: {
      name,
      control,
      onEnd: (l) => (endListener = l),
      onWarning: (l) => (warnListener = l),
      onHandshake: () => undefined,
      stats: () => ({ receive: { drops: { malformed: 3 } }, underLoad: false }),
      close: async () => void (closed = true),
    },
    end: (why) => endListener(why),
    closed: () => closed,
    warn: (m) => warnListener(m),
  };
}

async function withDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const base = mkdtempSync(join(tmpdir(), 'vt-cliwg-'));
  try {
    return await body(join(base, 'wireguard'));
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

const options: WgOptions = { ifname: 'vtcli0', mtu: 1420, offload: true, logLevel: 'verbose', json: false };

async function waitForSocket(path: string): Promise<void> {
  for (let i = 0; i < 100 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(existsSync(path), `${path} appeared`);
}

test('runWg: serves the UAPI socket until SIGINT, then exits 0 and removes the socket and the device', async () => {
  await withDir(async (dir) => {
    const fake = fakeDevice();
    const stop = new AbortController();
    const c = capture(stop.signal);
    const deps: WgCommandDeps = { openDevice: async () => fake.device, missingPrerequisites: () => undefined, uapiDirectory: dir };
    const running = runWg(options, c.io, deps);
    const path = join(dir, 'vtcli0.sock');
    await waitForSocket(path);
    assert.equal(lstatSync(path).mode & 0o777, 0o600);
    const privateKey = generatePrivateKey();
    assert.equal((await uapiRequest(path, `set=1\nprivate_key=${keyToHex(privateKey)}\nlisten_port=51820\n\n`)).errno, 0);
    assert.equal(fake.control.listenPort, 51820);
    const got = await uapiRequest(path, 'get=1\n\n');
    assert.match(got.body, /listen_port=51820/);
    // A failing set with key material must not leak it into the log.
    await uapiRequest(path, `set=1\nprivate_key=${keyToHex(privateKey)}00\n\n`);
    stop.abort('SIGINT');
    assert.equal(await running, ExitCode.OK);
    assert.equal(existsSync(path), false, 'socket removed');
    assert.ok(fake.closed(), 'device closed');
    assert.match(c.err(), /UAPI listener started/);
    assert.match(c.err(), /ERROR: vectun wg \(vtcli0\) UAPI set failed \(errno 22\)/);
    assert.match(c.err(), /Shutting down: stopped by SIGINT/);
    assert.ok(!c.err().includes(keyToHex(privateKey).slice(0, 16)), 'no private key (hex) in the log');
    assert.ok(!c.err().includes(keyToBase64(privateKey).slice(0, 16)), 'no private key (base64) in the log');
    assert.equal(c.out(), 'vtcli0 statistics (stopped by SIGINT):\n  receive.drops.malformed 3\n  underLoad false\n', 'the statistics on stdout, nothing else');
  });
});

test('runWg: the device ending by itself (deleted) ends the command with 0 and cleans up', async () => {
  await withDir(async (dir) => {
    const fake = fakeDevice();
    const c = capture();
    const running = runWg(options, c.io, { openDevice: async () => fake.device, missingPrerequisites: () => undefined, uapiDirectory: dir });
    await waitForSocket(join(dir, 'vtcli0.sock'));
    fake.warn('a survivable problem');
    fake.end('device vtcli0 was deleted');
    assert.equal(await running, ExitCode.OK);
    assert.equal(existsSync(join(dir, 'vtcli0.sock')), false);
    assert.ok(fake.closed());
    assert.match(c.err(), /ERROR: vectun wg \(vtcli0\) a survivable problem/);
    assert.match(c.err(), /Shutting down: device vtcli0 was deleted/);
  });
});

test('runWg: removing the UAPI socket stops it (as wireguard-go)', async () => {
  await withDir(async (dir) => {
    const fake = fakeDevice();
    const running = runWg(options, capture().io, { openDevice: async () => fake.device, missingPrerequisites: () => undefined, uapiDirectory: dir });
    const path = join(dir, 'vtcli0.sock');
    await waitForSocket(path);
    rmSync(path);
    assert.equal(await running, ExitCode.OK);
    assert.ok(fake.closed());
  });
});

test('runWg: a UAPI socket in use exits 1 and closes the device it opened', async () => {
  await withDir(async (dir) => {
    const other = await UapiServer.listen({ interfaceName: 'vtcli0', control: new FakeWgControl(), directory: dir });
    try {
      const fake = fakeDevice();
      const c = capture();
      assert.equal(await runWg(options, c.io, { openDevice: async () => fake.device, missingPrerequisites: () => undefined, uapiDirectory: dir }), ExitCode.FAILURE);
      assert.ok(fake.closed());
      assert.match(c.err(), /UAPI listen error: ERR_WG_UAPI_IN_USE/);
      assert.equal((await uapiRequest(other.path, 'get=1\n\n')).errno, 0, 'the other listener is untouched');
    } finally {
      await other.close();
    }
  });
});

test('runWg: missing prerequisites exit 3; a TUN permission error exits 3 with the fix; other device errors exit 1', async () => {
  const c1 = capture();
  assert.equal(await runWg(options, c1.io, { openDevice: async () => assert.fail('not opened'), missingPrerequisites: () => 'vectun: prerequisites missing: /dev/net/tun\n' }), ExitCode.PREREQUISITES);
  assert.match(c1.err(), /prerequisites missing/);
  const c2 = capture();
  const permission = async (): Promise<WgCommandDevice> => {
    throw new VectunError('ERR_TUN_PERMISSION', 'TUNSETIFF refused', { errno: 1, syscall: 'ioctl' });
  };
  assert.equal(await runWg(options, c2.io, { openDevice: permission, missingPrerequisites: () => undefined }), ExitCode.PREREQUISITES);
  assert.match(c2.err(), /Failed to create TUN device: ERR_TUN_PERMISSION/);
  assert.match(c2.err(), /fix: /);
  const c3 = capture();
  const busy = async (): Promise<WgCommandDevice> => {
    throw new VectunError('ERR_TUN_SYSCALL', 'TUNSETIFF: device busy', { errno: 16, syscall: 'ioctl' });
  };
  assert.equal(await runWg(options, c3.io, { openDevice: busy, missingPrerequisites: () => undefined }), ExitCode.FAILURE);
});

test('runWg: log level silent prints nothing, even for failures', async () => {
  await withDir(async (dir) => {
    const fake = fakeDevice();
    const stop = new AbortController();
    const c = capture(stop.signal);
    const running = runWg({ ...options, logLevel: 'silent', json: true }, c.io, { openDevice: async () => fake.device, missingPrerequisites: () => undefined, uapiDirectory: dir });
    const path = join(dir, 'vtcli0.sock');
    await waitForSocket(path);
    await uapiRequest(path, 'set=1\nbogus=1\n\n');
    stop.abort('SIGTERM');
    assert.equal(await running, ExitCode.OK);
    assert.equal(c.err(), '');
    assert.deepEqual(JSON.parse(c.out()), { interface: 'vtcli0', reason: 'stopped by SIGTERM', stats: { receive: { drops: { malformed: 3 } }, underLoad: false } });
  });
});

test('runWg: onReady fires once, when the UAPI socket already answers; not when the setup fails', async () => {
  await withDir(async (dir) => {
    const fake = fakeDevice();
    const stop = new AbortController();
    const path = join(dir, 'vtcli0.sock');
    let readyCalls = 0;
    let ready: () => void = () => undefined;
    const readySeen = new Promise<void>((resolve) => (ready = resolve));
    const running = runWg({ ...options, onReady: () => (readyCalls++, ready()) }, capture(stop.signal).io, { openDevice: async () => fake.device, missingPrerequisites: () => undefined, uapiDirectory: dir });
    await readySeen;
    assert.equal((await uapiRequest(path, 'get=1\n\n')).errno, 0, 'the socket answers as soon as ready is reported');
    stop.abort('SIGTERM');
    assert.equal(await running, ExitCode.OK);
    assert.equal(readyCalls, 1);
  });
  let called = false;
  const busy = async (): Promise<WgCommandDevice> => {
    throw new VectunError('ERR_TUN_SYSCALL', 'TUNSETIFF failed: EBUSY', { errno: 16, syscall: 'ioctl' });
  };
  assert.equal(await runWg({ ...options, onReady: () => (called = true) }, capture().io, { openDevice: busy, missingPrerequisites: () => undefined }), ExitCode.FAILURE);
  assert.equal(called, false);
});
