/**
 * `vectun-wg`: wireguard-go's command line on `vectun wg`, so that what was
 * made for wireguard-go runs vectun instead, such as wg-quick on a kernel
 * without WireGuard: `WG_QUICK_USERSPACE_IMPLEMENTATION=vectun-wg wg-quick up wg0`.
 *
 *   vectun-wg [-f/--foreground] INTERFACE-NAME
 *   vectun-wg --version
 *
 * As wireguard-go (its main.go): without `-f` and without
 * `WG_PROCESS_FOREGROUND=1`, the command returns once the interface exists
 * and its UAPI socket listens, and leaves the interface to a background
 * process (in a session of its own) that ends as `vectun wg` does: on
 * SIGTERM/SIGINT, when the device is deleted (`ip link del`, `wg-quick down`)
 * or when its socket is removed. `LOG_LEVEL` as wireguard-go: the background
 * process logs to the caller's stdout/stderr only when `LOG_LEVEL` is set
 * and not `silent`. Exit codes: 0 the interface is up; 1 setup failed (the
 * reason is on stderr); 2 usage. Two differences: the background process
 * opens the device itself and reports back on a pipe (wireguard-go opens it
 * first and hands the descriptors over), and a usage error exits 2 where
 * wireguard-go prints its usage and exits 0.
 * @module
 */
import { spawn } from 'node:child_process';
import { closeSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode } from './exit-codes.js';
import { packageVersion, parseIfName, wgLogLevel, type CliIO } from './program.js';
import { runWg } from './wg.js';

/** What the arguments ask for. */
export type WireguardGoCommand = { kind: 'version' } | { kind: 'usage' } | { kind: 'run'; ifname: string; foreground: boolean };

/** The environment variable that hands the background process the descriptor on which it reports that it is ready. */
export const READY_FD_ENV = 'VECTUN_WG_READY_FD';
/** How long the caller waits for the background process to come up. */
export const DAEMON_READY_TIMEOUT_MS = 30_000;
const READY_LINE = 'ready\n';
const SCRIPT = join(__dirname, 'vectun-wg.js');

/** wireguard-go's argument rules: `--version` alone, or one interface name after an optional `-f`/`--foreground`. */
export function parseWireguardGoArgs(argv: readonly string[], env: NodeJS.ProcessEnv): WireguardGoCommand {
  if (argv.length === 1 && argv[0] === '--version') return { kind: 'version' };
  const flagged = argv[0] === '-f' || argv[0] === '--foreground';
  if (argv.length !== (flagged ? 2 : 1)) return { kind: 'usage' };
  return { kind: 'run', ifname: argv[argv.length - 1]!, foreground: flagged || env['WG_PROCESS_FOREGROUND'] === '1' };
}

/** Runs `vectun-wg` on `argv`; resolves to the exit code. */
export async function runWireguardGoCli(argv: readonly string[], io: CliIO, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const command = parseWireguardGoArgs(argv, env);
  if (command.kind === 'version') {
    io.stdout.write(`vectun-wg ${packageVersion()}\n\nUserspace WireGuard daemon (vectun wg) with wireguard-go's command line.\n`);
    return ExitCode.OK;
  }
  if (command.kind === 'usage') {
    io.stderr.write('Usage: vectun-wg [-f/--foreground] INTERFACE-NAME\n');
    return ExitCode.USAGE;
  }
  try {
    parseIfName(command.ifname);
  } catch (err) {
    io.stderr.write(`vectun-wg: ${(err as Error).message}\n`);
    return ExitCode.USAGE;
  }
  if (!command.foreground) return startInBackground(command.ifname, env, io);
  const onReady = readyReporter(env);
  return runWg({ ifname: command.ifname, mtu: 1420, offload: true, logLevel: wgLogLevel(env['LOG_LEVEL']), json: false, ...(onReady ? { onReady } : {}) }, io);
}

/** The background process's side: one line on the descriptor its caller gave it, then the descriptor closed. */
function readyReporter(env: NodeJS.ProcessEnv): (() => void) | undefined {
  const text = env[READY_FD_ENV];
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  const fd = Number(text);
  return () => {
    try {
      writeSync(fd, READY_LINE);
      closeSync(fd);
    } catch {
      // The caller gave up waiting (and said so); the interface runs on regardless.
    }
  };
}

/**
 * The caller's side: starts `vectun-wg INTERFACE` in the foreground as a
 * detached process with a pipe on fd 3, relays its setup errors, and resolves
 * to 0 once it reports ready, or to its failure code once it exits first.
 */
function startInBackground(ifname: string, env: NodeJS.ProcessEnv, io: CliIO): Promise<number> {
  const logLevelSet = (env['LOG_LEVEL'] ?? '') !== '' && wgLogLevel(env['LOG_LEVEL']) !== 'silent';
  // As wireguard-go: the log reaches the caller's terminal only when asked for; setup errors always do (relayed until ready).
  const child = spawn(process.execPath, [SCRIPT, ifname], {
    detached: true,
    stdio: ['ignore', logLevelSet ? 'inherit' : 'ignore', logLevelSet ? 'inherit' : 'pipe', 'pipe'],
    env: { ...env, WG_PROCESS_FOREGROUND: '1', [READY_FD_ENV]: '3' },
  });
  const setupErrors = child.stdio[2];
  const ready = child.stdio[3]!;
  setupErrors?.on('data', (d: Buffer) => io.stderr.write(d.toString()));
  return new Promise<number>((resolve) => {
    let settled = false;
    const settle = (code: number): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      io.signal.removeEventListener('abort', onAbort);
      setupErrors?.destroy();
      ready.destroy();
      child.unref();
      resolve(code);
    };
    const fail = (why: string): void => {
      io.stderr.write(`vectun-wg (${ifname}): ${why}\n`);
      child.kill('SIGTERM');
      settle(ExitCode.FAILURE);
    };
    const onAbort = (): void => fail(`stopped by ${String(io.signal.reason)} before the interface was up`);
    const timer = setTimeout(() => fail(`the interface was not up within ${DAEMON_READY_TIMEOUT_MS} ms`), DAEMON_READY_TIMEOUT_MS);
    io.signal.addEventListener('abort', onAbort, { once: true });
    let text = '';
    ready.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes(READY_LINE)) settle(ExitCode.OK);
    });
    child.once('error', (err) => fail(`could not start the background process: ${err.message}`));
    // 'close': the process has exited and its pipes are drained, so every setup error has been relayed.
    child.once('close', (code) => settle(code !== null && code !== 0 ? code : ExitCode.FAILURE));
  });
}
