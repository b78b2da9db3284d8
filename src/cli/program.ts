/**
 * The `vectun` command line: commands, options, help and exit codes.
 *
 * Parsing is separate from running: {@link runCli} takes the argument list,
 * the output streams and the command implementations, so tests drive the real
 * parser without devices. Implementations are loaded on first use, so
 * `vectun --help` works even where the native addon is not built.
 * @module
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { VectunError } from '../errors.js';
import { EXIT_CODES_HELP, ExitCode } from './exit-codes.js';
import type { WgLogLevel, WgOptions } from './wg.js';

export type { WgOptions } from './wg.js';

/** Output streams and stop signal of one CLI run. */
export interface CliIO {
  stdout: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  stderr: { write(text: string): unknown };
  /** Aborted on SIGINT/SIGTERM; `reason` is the signal name. */
  signal: AbortSignal;
}

/** `vectun demo` options. */
export interface DemoOptions {
  /** Duration of each transfer in seconds. */
  seconds: number;
  /** false with `--no-offload`: only the run without offload. */
  offload: boolean;
  /** Use IPv6 (2001:2::/48) instead of IPv4 (198.18.0.0/15). */
  ipv6: boolean;
  /** Upper bound on bytes per transfer, so a run is bounded in bytes as well as time. */
  maxBytes: number;
}

/** `vectun bridge` options. */
export interface BridgeOptions {
  ifA: string;
  ifB: string;
  offload: boolean;
  queues: number;
  json: boolean;
}

/** `vectun bench` options. */
export interface BenchOptions {
  json: boolean;
  /** Seconds per end-to-end measurement. */
  seconds: number;
  /** Measurements per setup; the median is shown. */
  repeats: number;
}

/** The command implementations; each resolves to an exit code. */
export interface CliCommands {
  demo(options: DemoOptions, io: CliIO): Promise<number>;
  bridge(options: BridgeOptions, io: CliIO): Promise<number>;
  bench(options: BenchOptions, io: CliIO): Promise<number>;
  wg(options: WgOptions, io: CliIO): Promise<number>;
  benchWg(options: BenchOptions, io: CliIO): Promise<number>;
}

/** The real commands, loaded lazily (they pull in the native addon). */
export const defaultCommands: CliCommands = {
  demo: async (o, io) => (await import('./demo.js')).runDemo(o, io),
  bridge: async (o, io) => (await import('./bridge.js')).runBridge(o, io),
  bench: async (o, io) => (await import('./bench.js')).runBench(o, io),
  wg: async (o, io) => (await import('./wg.js')).runWg(o, io),
  benchWg: async (o, io) => (await import('./bench.js')).runBenchWg(o, io),
};

/** Parses a whole number within [min, max] for commander. */
export function intInRange(name: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`${name} must be a whole number, got '${value}'`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be between ${min} and ${max}, got ${n}`);
    return n;
  };
}

/** Parses a byte count with an optional binary suffix: 512M, 4G, 1048576. */
export function parseByteSize(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected a size like 512M or 4G, got '${value}'`);
  const mult = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  const n = Math.floor(Number(m[1]) * mult);
  if (n < 1 || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`size out of range: '${value}'`);
  return n;
}

/**
 * Linux interface names: 1 to 15 bytes (IFNAMSIZ 16 with the NUL), no '/',
 * ':' or whitespace, not '.' or '..' (net/core/dev.c dev_valid_name).
 */
export function parseIfName(value: string): string {
  if (Buffer.byteLength(value) < 1 || Buffer.byteLength(value) > 15)
    throw new InvalidArgumentError(`interface name must be 1 to 15 bytes, got '${value}'`);
  if (value === '.' || value === '..' || /[/:\s]/.test(value))
    throw new InvalidArgumentError(`invalid interface name '${value}' (no '/', ':' or spaces; not '.' or '..')`);
  return value;
}

/** Builds the commander program; `run` receives each command's parsed options. */
export function buildProgram(io: CliIO, commands: CliCommands, done: (code: number) => void): Command {
  const program = new Command('vectun')
    .description('Fast Linux TUN devices for Node.js: demo, bridge and benchmark commands')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
    })
    .exitOverride()
    // So that `bench wg --seconds N` reaches `wg`, not `bench` (commander needs it on every parent).
    .enablePositionalOptions();

  program
    .command('demo')
    .summary('bridged TCP transfer between two namespaces, with and without offload (root)')
    .description(
      'Two network namespaces joined by two vectun TUN devices that this process bridges; ' +
        'a sha256-verified TCP transfer with offload, then without for comparison. Needs root.',
    )
    .addOption(new Option('--seconds <n>', 'duration of each transfer').default(5).argParser(intInRange('--seconds', 1, 3600)))
    .option('--no-offload', 'run only without virtio-net offloads (no GSO split / GRO coalescing)')
    .option('--ipv6', 'use IPv6 (2001:2::/48) instead of IPv4 (198.18.0.0/15)')
    .addOption(new Option('--max-bytes <size>', 'stop each transfer after this many bytes').default(64 * 2 ** 30, '64G').argParser(parseByteSize))
    .addHelpText('after', `\nEverything it creates is removed on exit, Ctrl-C and errors.\n\n${EXIT_CODES_HELP}`)
    .action(async (o: { seconds: number; offload: boolean; ipv6?: boolean; maxBytes: number }) => {
      done(await commands.demo({ seconds: o.seconds, offload: o.offload, ipv6: o.ipv6 === true, maxBytes: o.maxBytes }, io));
    });

  program
    .command('bridge')
    .summary('forward packets between two TUN devices until SIGINT/SIGTERM')
    .description(
      'Create (or attach to persistent) TUN devices ifA and ifB and forward packets both ways until SIGINT/SIGTERM, ' +
        'then print the statistics. The devices may be moved, addressed, brought down/up and resized from outside meanwhile.',
    )
    .argument('<ifA>', 'first TUN device name', parseIfName)
    .argument('<ifB>', 'second TUN device name', parseIfName)
    .option('--no-offload', 'open the devices without virtio-net offloads')
    .addOption(new Option('--queues <n>', 'queues per device (IFF_MULTI_QUEUE)').default(1).argParser(intInRange('--queues', 1, 256)))
    .option('--json', 'print the final statistics as JSON')
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .action(async (ifA: string, ifB: string, o: { offload: boolean; queues: number; json?: boolean }) => {
      done(await commands.bridge({ ifA, ifB, offload: o.offload, queues: o.queues, json: o.json === true }, io));
    });

  const bench = program
    .command('bench')
    .summary('veth vs vectun bridge (offload, no offload) and core micro benchmarks (root)')
    .description(
      'One-run comparison: veth pair (the kernel limit) vs vectun bridge with and without offload, ' +
        'single TCP stream, plus the offload-core micro benchmarks. Needs root.',
    )
    .option('--json', 'print the results as JSON')
    .addOption(new Option('--seconds <n>', 'duration of each end-to-end measurement').default(5).argParser(intInRange('--seconds', 1, 600)))
    .addOption(
      new Option('--repeats <n>', 'end-to-end measurements per setup, interleaved; the median is shown').default(1).argParser(intInRange('--repeats', 1, 20)),
    )
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .action(async (o: { json?: boolean; seconds: number; repeats: number }) => {
      done(await commands.bench({ json: o.json === true, seconds: o.seconds, repeats: o.repeats }, io));
    });

  // Options after `wg` are the subcommand's own (same names as bench's).
  bench.enablePositionalOptions();
  bench
    .command('wg')
    .summary('WireGuard: wireguard-go vs vectun wg, single TCP stream through the tunnel (root)')
    .description(
      'One-run comparison, single TCP stream (iperf3, installed with apt-get if missing; else the Node transfer) from namespace A to B: ' +
        'the bare veth, wireguard-go to wireguard-go, vectun to vectun, vectun to wireguard-go; Gbit/s and ratios to ' +
        'wireguard-go to wireguard-go measured in the same run. Needs root; builds wireguard-go on first use (scripts/install-wireguard-go.sh).',
    )
    .option('--json', 'print the results as JSON')
    .addOption(new Option('--seconds <n>', 'duration of each measurement').default(5).argParser(intInRange('--seconds', 1, 600)))
    .addOption(new Option('--repeats <n>', 'measurements per setup, interleaved; the median is shown').default(1).argParser(intInRange('--repeats', 1, 20)))
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .action(async (o: { json?: boolean; seconds: number; repeats: number }) => {
      done(await commands.benchWg({ json: o.json === true, seconds: o.seconds, repeats: o.repeats }, io));
    });

  program
    .command('wg')
    .summary('a userspace WireGuard interface, configured with `wg`, until SIGINT/SIGTERM (root)')
    .description(
      'Create the TUN device <ifname> and serve its UAPI socket /var/run/wireguard/<ifname>.sock, like wireguard-go: ' +
        'configure it with the stock `wg` tool (wg set, wg setconf, wg show) and give it addresses and routes with `ip`. ' +
        'Runs in the foreground until SIGINT/SIGTERM, until the device is deleted (ip link del) or its socket removed; ' +
        'then removes the socket. Needs root.',
    )
    .argument('<ifname>', 'interface name to create', parseIfName)
    .option('-f, --foreground', 'accepted for wireguard-go compatibility: vectun wg always stays in the foreground')
    .addOption(new Option('--mtu <n>', 'MTU of the TUN device').default(1420).argParser(intInRange('--mtu', 1280, 65535)))
    .option('--no-offload', 'open the TUN device without virtio-net offloads')
    .option('--json', 'print the final statistics as JSON on stdout')
    .addOption(
      new Option('--log-level <level>', 'silent, error or verbose (default: env LOG_LEVEL, else error)').choices(['silent', 'error', 'verbose', 'debug']),
    )
    .addHelpText('after', `\nExample:\n  vectun wg wg0 &\n  wg setconf wg0 wg0.conf && ip addr add 198.18.10.1/24 dev wg0 && ip link set wg0 up\n\n${EXIT_CODES_HELP}`)
    .action(async (ifname: string, o: { mtu: number; offload: boolean; logLevel?: string; json?: boolean }) => {
      const logLevel = wgLogLevel(o.logLevel ?? process.env['LOG_LEVEL']);
      done(await commands.wg({ ifname, mtu: o.mtu, offload: o.offload, logLevel, json: o.json === true }, io));
    });

  return program;
}

/** wireguard-go's LOG_LEVEL values (`debug` is `verbose`); anything else is `error`. */
export function wgLogLevel(value: string | undefined): WgLogLevel {
  if (value === 'verbose' || value === 'debug') return 'verbose';
  if (value === 'silent') return 'silent';
  return 'error';
}

/**
 * Runs the CLI on `argv` (without the node and script entries) and resolves
 * to the exit code. Usage errors give {@link ExitCode.USAGE}; errors thrown by
 * a command are printed (code and message, no stack) and mapped to an exit code.
 */
export async function runCli(argv: readonly string[], io: CliIO, commands: CliCommands = defaultCommands): Promise<number> {
  let code: number = ExitCode.OK;
  const program = buildProgram(io, commands, (c) => (code = c));
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return ExitCode.USAGE;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version "errors" are the normal way commander ends those runs
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.OK;
      return err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    io.stderr.write(`vectun: ${describeError(err)}\n`);
    return exitCodeFor(err);
  }
}

/** One line for an error: `ERR_CODE: message (syscall errno n)`. */
export function describeError(err: unknown): string {
  if (err instanceof VectunError) {
    const sys = err.syscall !== undefined ? ` (${err.syscall}${err.errno !== undefined ? ` errno ${err.errno}` : ''})` : '';
    return `${err.code}: ${err.message}${sys}`;
  }
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Exit code for an error a command let through. `ERR_LAB_TRAFFIC` stays a
 * failure (1): the lab also uses it for a traffic worker that died; the demo
 * reports data that arrived but did not verify itself, as exit code 4.
 */
export function exitCodeFor(err: unknown): number {
  if (err instanceof VectunError) {
    switch (err.code) {
      case 'ERR_TUN_PERMISSION':
      case 'ERR_TUN_UNAVAILABLE':
      case 'ERR_TUN_NATIVE':
      case 'ERR_LAB_PREREQUISITE':
        return ExitCode.PREREQUISITES;
      case 'ERR_INVALID_ARG':
        return ExitCode.USAGE;
      default:
        return ExitCode.FAILURE;
    }
  }
  return ExitCode.FAILURE;
}

/** The package.json version, or 0.0.0 when it cannot be read. */
export function packageVersion(): string {
  try {
    // dist/src/cli/program.js -> package.json at the package root
    const pkg = require('../../../package.json') as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}
