import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VectunError } from '../../src/errors.js';
import { ExitCode } from '../../src/cli/exit-codes.js';
import {
  describeError,
  exitCodeFor,
  parseByteSize,
  runCli,
  type BenchOptions,
  type BridgeOptions,
  type CliCommands,
  type DemoOptions,
  type WgOptions,
} from '../../src/cli/program.js';
import { capture } from './capture.js';

/** Commands that record what the parser handed them and return a chosen code. */
function recorder(code = 0) {
  const calls: { demo: DemoOptions[]; bridge: BridgeOptions[]; bench: BenchOptions[]; wg: WgOptions[]; benchWg: BenchOptions[] } = { demo: [], bridge: [], bench: [], wg: [], benchWg: [] };
  const commands: CliCommands = {
    demo: async (o) => (calls.demo.push(o), code),
    bridge: async (o) => (calls.bridge.push(o), code),
    bench: async (o) => (calls.bench.push(o), code),
    wg: async (o) => (calls.wg.push(o), code),
    benchWg: async (o) => (calls.benchWg.push(o), code),
  };
  return { calls, commands };
}

test('demo: defaults, then every option', async () => {
  const { calls, commands } = recorder();
  const c = capture();
  assert.equal(await runCli(['demo'], c.io, commands), 0);
  assert.deepEqual(calls.demo[0], { seconds: 5, offload: true, ipv6: false, maxBytes: 64 * 2 ** 30 });
  assert.equal(await runCli(['demo', '--seconds', '2', '--no-offload', '--ipv6', '--max-bytes', '512M'], c.io, commands), 0);
  assert.deepEqual(calls.demo[1], { seconds: 2, offload: false, ipv6: true, maxBytes: 512 * 2 ** 20 });
});

test('bridge: two interface names, --queues, --json, --no-offload', async () => {
  const { calls, commands } = recorder();
  const c = capture();
  assert.equal(await runCli(['bridge', 'vt0', 'vt1', '--queues', '4', '--json', '--no-offload'], c.io, commands), 0);
  assert.deepEqual(calls.bridge[0], { ifA: 'vt0', ifB: 'vt1', offload: false, queues: 4, json: true });
  assert.equal(await runCli(['bridge', 'a', 'b'], c.io, commands), 0);
  assert.deepEqual(calls.bridge[1], { ifA: 'a', ifB: 'b', offload: true, queues: 1, json: false });
});

test('bench: --json and --seconds', async () => {
  const { calls, commands } = recorder();
  const c = capture();
  assert.equal(await runCli(['bench', '--json', '--seconds', '3'], c.io, commands), 0);
  assert.deepEqual(calls.bench[0], { json: true, seconds: 3, repeats: 1 });
  assert.equal(await runCli(['bench', '--repeats', '3'], c.io, commands), 0);
  assert.deepEqual(calls.bench[1], { json: false, seconds: 5, repeats: 3 });
});

test('a command exit code is passed through', async () => {
  const { commands } = recorder(ExitCode.VERIFY);
  assert.equal(await runCli(['demo'], capture().io, commands), ExitCode.VERIFY);
});

test('usage errors exit 2, name the problem and run nothing', async () => {
  const cases: [string[], RegExp][] = [
    [['demo', '--seconds', '0'], /--seconds must be between 1 and 3600/],
    [['demo', '--seconds', 'ten'], /--seconds must be a whole number/],
    [['demo', '--bogus'], /unknown option '--bogus'/],
    [['bridge', 'only-one'], /missing required argument 'ifB'/],
    [['bridge', 'a', 'waytoolongname16'], /1 to 15 bytes/],
    [['bridge', 'a/b', 'c'], /invalid interface name/],
    [['bridge', 'a', 'b', '--queues', '0'], /--queues must be between 1 and 256/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['demo', '--max-bytes', '12Q'], /size like 512M/],
  ];
  for (const [argv, message] of cases) {
    const { calls, commands } = recorder();
    const c = capture();
    assert.equal(await runCli(argv, c.io, commands), ExitCode.USAGE, argv.join(' '));
    assert.match(c.err(), message, argv.join(' '));
    assert.equal(calls.demo.length + calls.bridge.length + calls.bench.length, 0);
  }
});

test('no arguments prints the help on stderr and exits 2', async () => {
  const c = capture();
  assert.equal(await runCli([], c.io, recorder().commands), ExitCode.USAGE);
  assert.match(c.err(), /Usage: vectun/);
});

test('--help for the program and each command exits 0 and documents the exit codes', async () => {
  for (const argv of [['--help'], ['demo', '--help'], ['bridge', '--help'], ['bench', '--help'], ['help', 'demo']]) {
    const c = capture();
    assert.equal(await runCli(argv, c.io, recorder().commands), 0, argv.join(' '));
    assert.match(c.out(), /Usage: vectun/, argv.join(' '));
    assert.match(c.out(), /Exit codes:[\s\S]*3 +prerequisites missing/, argv.join(' '));
  }
  const c = capture();
  await runCli(['demo', '--help'], c.io, recorder().commands);
  for (const opt of ['--seconds <n>', '--no-offload', '--ipv6', '--max-bytes <size>']) assert.ok(c.out().includes(opt), opt);
});

test('--version prints the package version', async () => {
  const c = capture();
  assert.equal(await runCli(['--version'], c.io, recorder().commands), 0);
  assert.match(c.out(), /^\d+\.\d+\.\d+\n$/);
});

test('an error thrown by a command is printed with its code and mapped to an exit code', async () => {
  const c = capture();
  const failing: CliCommands = {
    ...recorder().commands,
    bridge: async () => {
      throw new VectunError('ERR_TUN_PERMISSION', 'TUNSETIFF refused', { errno: 1, syscall: 'ioctl' });
    },
  };
  assert.equal(await runCli(['bridge', 'a', 'b'], c.io, failing), ExitCode.PREREQUISITES);
  assert.equal(c.err(), 'vectun: ERR_TUN_PERMISSION: TUNSETIFF refused (ioctl errno 1)\n');
});

test('exit codes for error codes', () => {
  assert.equal(exitCodeFor(new VectunError('ERR_TUN_UNAVAILABLE', 'x')), ExitCode.PREREQUISITES);
  assert.equal(exitCodeFor(new VectunError('ERR_LAB_PREREQUISITE', 'x')), ExitCode.PREREQUISITES);
  assert.equal(exitCodeFor(new VectunError('ERR_LAB_TRAFFIC', 'worker exited')), ExitCode.FAILURE);
  assert.equal(exitCodeFor(new VectunError('ERR_NETLINK', 'x')), ExitCode.FAILURE);
  assert.equal(exitCodeFor(new Error('x')), ExitCode.FAILURE);
  assert.equal(describeError(new Error('plain')), 'plain');
});

test('byte sizes', () => {
  assert.equal(parseByteSize('1048576'), 2 ** 20);
  assert.equal(parseByteSize('4G'), 4 * 2 ** 30);
  assert.equal(parseByteSize('1.5MiB'), 1.5 * 2 ** 20);
  assert.throws(() => parseByteSize('0'));
});
