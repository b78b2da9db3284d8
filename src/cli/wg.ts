/**
 * `vectun wg [options] <ifname>`: a userspace WireGuard interface in the
 * style of wireguard-go. Creates the TUN device, opens the UAPI socket
 * `/var/run/wireguard/<ifname>.sock` for the stock `wg` tool, and runs in the
 * foreground until SIGINT/SIGTERM, until the device is deleted
 * (`ip link del <ifname>`), or until the socket is removed; then it closes
 * the socket and the device. Addresses and routes stay with `ip`.
 *
 * Logging as wireguard-go: `LOG_LEVEL` (or `--log-level`) `silent`, `error`
 * (default) or `verbose`, on stderr. Nothing here prints a key: UAPI failures
 * are logged by errno and key name, device warnings by their message.
 * @module
 */
import { VectunError } from '../errors.js';
import type { WgControl } from '../wg/config.js';
import { keyToBase64 } from '../wg/crypto.js';
import { UapiServer } from '../wg/uapi-server.js';
import { ExitCode } from './exit-codes.js';
import { PERMISSION_FIX, checkPrerequisites, describeMissing } from './prereq.js';
import { describeError, exitCodeFor, type CliIO } from './program.js';

/** wireguard-go's log levels. */
export type WgLogLevel = 'silent' | 'error' | 'verbose';

/** `vectun wg` options. */
export interface WgOptions {
  /** Interface name to create (or attach to, if a persistent TUN of that name exists). */
  ifname: string;
  /** TUN MTU; wireguard-go's default is 1420 (1500 minus the IPv6 + UDP + WireGuard overhead). */
  mtu: number;
  /** false with `--no-offload`: open the TUN without virtio-net offloads. */
  offload: boolean;
  logLevel: WgLogLevel;
  /** `--json`: the final statistics as one JSON object on stdout (else as text). */
  json: boolean;
  /** Called once the device exists and its UAPI socket listens (`vectun-wg` tells its caller the interface is up). */
  onReady?: () => void;
}

/** What `vectun wg` needs from a device: the UAPI control and its life cycle. */
export interface WgCommandDevice {
  /** The TUN interface's name as the kernel has it. */
  readonly name: string;
  /** What the UAPI socket reads and changes. */
  readonly control: WgControl;
  /** Subscribes to the device's own end: its TUN was deleted, or it closed (reason as text). */
  onEnd(listener: (reason: string) => void): void;
  /** Subscribes to warnings (a failure the device survived). */
  onWarning(listener: (message: string) => void): void;
  /** A completed handshake with a peer (public key). */
  onHandshake(listener: (publicKey: Uint8Array) => void): void;
  /** The device's counters (plain data: numbers, booleans, nested objects), printed when the command ends. */
  stats(): object;
  close(): Promise<void>;
}

/** The parts of `vectun wg` that touch the system; tests pass fakes. */
export interface WgCommandDeps {
  openDevice(options: { name: string; mtu: number; offload: boolean; signal: AbortSignal }): Promise<WgCommandDevice>;
  /** UAPI socket folder; default `/var/run/wireguard`. */
  uapiDirectory?: string;
  /** The failed prerequisites as text, or undefined. */
  missingPrerequisites(): string | undefined;
}

/** The real system: a vectun `WgDevice` on a `Tun`. */
export const defaultWgDeps: WgCommandDeps = {
  openDevice: openWgDevice,
  missingPrerequisites: () => describeMissing(checkPrerequisites({ namespaces: false })),
};

/** Runs the interface until stopped; resolves to an exit code (README "CLI reference"). */
export async function runWg(o: WgOptions, io: CliIO, deps: WgCommandDeps = defaultWgDeps): Promise<number> {
  const prefix = `vectun wg (${o.ifname})`;
  const log = (level: 'error' | 'verbose', line: string): void => {
    if (o.logLevel === 'silent' || (level === 'verbose' && o.logLevel !== 'verbose')) return;
    io.stderr.write(`${level === 'error' ? 'ERROR' : 'DEBUG'}: ${prefix} ${line}\n`);
  };
  const missing = deps.missingPrerequisites();
  if (missing !== undefined) {
    io.stderr.write(missing);
    return ExitCode.PREREQUISITES;
  }
  if (io.signal.aborted) return ExitCode.OK;

  let device: WgCommandDevice;
  try {
    device = await deps.openDevice({ name: o.ifname, mtu: o.mtu, offload: o.offload, signal: io.signal });
  } catch (err) {
    log('error', `Failed to create TUN device: ${describeError(err)}`);
    if (err instanceof VectunError && err.code === 'ERR_TUN_PERMISSION') io.stderr.write(`  fix: ${PERMISSION_FIX}\n`);
    return exitCodeFor(err);
  }
  log('verbose', `Device started (${device.name}, MTU ${o.mtu}, offload ${o.offload ? 'on' : 'off'})`);

  let uapi: UapiServer | undefined;
  try {
    try {
      uapi = await UapiServer.listen({
        interfaceName: device.name,
        control: device.control,
        ...(deps.uapiDirectory === undefined ? {} : { directory: deps.uapiDirectory }),
        onLog: (line) => log('error', line),
      });
    } catch (err) {
      log('error', `UAPI listen error: ${describeError(err)}`);
      const eacces = err instanceof VectunError && (err.errno === 13 || err.errno === 1);
      return eacces ? ExitCode.PREREQUISITES : ExitCode.FAILURE;
    }
    log('verbose', `UAPI listener started on ${uapi.path}`);

    device.onWarning((message) => log('error', message));
    device.onHandshake((key) => log('verbose', `handshake completed with peer ${keyToBase64(key).slice(0, 8)}...`));
    o.onReady?.();
    const reason = await new Promise<string>((resolve) => {
      if (io.signal.aborted) return resolve(`stopped by ${String(io.signal.reason)}`);
      if (uapi!.closed) return resolve(`UAPI socket ${uapi!.path} was removed`);
      io.signal.addEventListener('abort', () => resolve(`stopped by ${String(io.signal.reason)}`), { once: true });
      device.onEnd((why) => resolve(why));
      uapi!.once('removed', () => resolve(`UAPI socket ${uapi!.path} was removed`));
    });
    log('verbose', `Shutting down: ${reason}`);
    printStats(io, o, reason, device.stats());
    return ExitCode.OK;
  } finally {
    await uapi?.close().catch(() => undefined);
    await device.close().catch((err: unknown) => log('error', `closing the device: ${describeError(err)}`));
  }
}

/**
 * The final statistics on stdout, as `vectun bridge` does: `--json` one
 * object `{ interface, reason, stats }`, else one `path value` line per counter.
 */
function printStats(io: CliIO, o: WgOptions, reason: string, stats: object): void {
  if (o.json) {
    io.stdout.write(`${JSON.stringify({ interface: o.ifname, reason, stats })}\n`);
    return;
  }
  const lines: string[] = [];
  const walk = (value: unknown, path: string): void => {
    if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) walk(v, path === '' ? k : `${path}.${k}`);
    } else if (typeof value === 'number' || typeof value === 'boolean') {
      lines.push(`  ${path} ${String(value)}`);
    }
  };
  walk(stats, '');
  io.stdout.write(`${o.ifname} statistics (${reason}):\n${lines.join('\n')}\n`);
}

/** Opens a vectun `WgDevice` on a new `Tun` named `name`, sets its MTU, and adapts it. */
async function openWgDevice(options: { name: string; mtu: number; offload: boolean; signal: AbortSignal }): Promise<WgCommandDevice> {
  // Loaded on first use, so `vectun --help` works without the native addon.
  const { WgDevice } = await import('../wg/device.js');
  const { Tun } = await import('../device/tun.js');
  const device = await WgDevice.create({ name: options.name, tun: { offload: options.offload }, signal: options.signal });
  const tun = device.tunnel instanceof Tun ? device.tunnel : undefined;
  try {
    await tun?.setMtu(options.mtu);
  } catch (err) {
    await device.close().catch(() => undefined);
    throw err;
  }
  return {
    name: tun?.name ?? options.name,
    control: device,
    onEnd: (listener) => {
      device.once('removed', () => listener(`device ${options.name} was deleted`));
      device.once('close', () => listener('device closed'));
    },
    onWarning: (listener) => device.on('warning', (err: unknown) => listener(describeError(err))),
    onHandshake: (listener) => device.on('handshake', (key: Uint8Array) => listener(key)),
    stats: () => device.stats,
    close: () => device.close(),
  };
}
