/**
 * Network namespaces, veth pairs and link configuration for the lab (demo,
 * benchmarks, e2e tests), done by spawning iproute2's `ip`.
 *
 * Every namespace created here is recorded in one registry and removed on
 * {@link Netns.remove}, {@link removeAllNetns}, SIGINT/SIGTERM and process
 * exit, so a failing test or an interrupted demo leaves nothing behind.
 * Deleting a namespace also deletes the veth pairs and TUN devices inside it.
 * Names are `vt-<pid>-<n>[-label]`; namespaces left by a process that died
 * without cleaning up (SIGKILL) are pruned when the next one is created.
 *
 * Addresses are restricted to the benchmarking ranges 198.18.0.0/15 (RFC 2544)
 * and 2001:2::/48 (RFC 5180), so the lab can never collide with real networks.
 * @module
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync } from 'node:fs';
import { isIP } from 'node:net';
import { delimiter, join } from 'node:path';
import { VectunError } from '../errors.js';

/** Upper bound for one `ip` invocation; they take milliseconds. */
const IP_TIMEOUT_MS = 10_000;
const NETNS_DIR = '/run/netns';
const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;

const registry = new Set<string>();
const children = new Set<ChildProcess>();
let counter = 0;
let hooksInstalled = false;
let pruned = false;

/**
 * Checks what the lab needs and throws naming exactly what is missing.
 * @throws VectunError `ERR_TUN_PERMISSION` without CAP_NET_ADMIN,
 *   `ERR_TUN_UNAVAILABLE` without `/dev/net/tun`, `ERR_LAB_PREREQUISITE`
 *   without CAP_SYS_ADMIN (needed by `ip netns add`) or without `ip` on PATH.
 */
export function checkLabPrerequisites(): void {
  const caps = effectiveCapabilities();
  if (!hasCap(caps, CAP_NET_ADMIN)) {
    throw new VectunError('ERR_TUN_PERMISSION', 'the lab needs CAP_NET_ADMIN (run as root) to create TUN devices, veth pairs and addresses');
  }
  if (!existsSync('/dev/net/tun')) {
    throw new VectunError('ERR_TUN_UNAVAILABLE', '/dev/net/tun does not exist (load the tun module: modprobe tun)');
  }
  if (!hasCap(caps, CAP_SYS_ADMIN)) {
    throw new VectunError('ERR_LAB_PREREQUISITE', 'the lab needs CAP_SYS_ADMIN to create network namespaces (ip netns add)');
  }
  if (findOnPath('ip') === undefined) {
    throw new VectunError('ERR_LAB_PREREQUISITE', 'iproute2 `ip` was not found on PATH (install iproute2)');
  }
}

/** The reason the lab cannot run here, or undefined when it can. */
export function labUnavailableReason(): string | undefined {
  try {
    checkLabPrerequisites();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Effective capability mask of this process (from /proc, as the kernel reports it). */
function effectiveCapabilities(): bigint {
  try {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
    if (line !== undefined) return BigInt('0x' + line.slice(7).trim());
  } catch {
    // No /proc: fall back to the uid below.
  }
  return process.getuid?.() === 0 ? ~0n : 0n;
}

function hasCap(caps: bigint, cap: number): boolean {
  return ((caps >> BigInt(cap)) & 1n) === 1n;
}

function findOnPath(command: string): string | undefined {
  const dirs = (process.env['PATH'] ?? '').split(delimiter).concat(['/usr/sbin', '/sbin']);
  for (const dir of dirs) {
    const file = join(dir, command);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Runs `ip <args>` and returns its stdout.
 * @throws VectunError `ERR_LAB_COMMAND` with the command line and stderr.
 */
export function ip(args: readonly string[]): Promise<string> {
  return run('ip', args);
}

function run(command: string, args: readonly string[], timeoutMs = IP_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const why = stderr.trim() || err.message;
        reject(new VectunError('ERR_LAB_COMMAND', `${command} ${args.join(' ')}: ${why}`, { cause: err }));
      } else {
        resolve(stdout);
      }
    });
  });
}

/**
 * Throws unless `cidr` (an address with or without `/prefix`) lies inside
 * 198.18.0.0/15 or 2001:2::/48, the only ranges the lab may use.
 */
export function assertLabAddress(cidr: string): void {
  const [address = '', prefix] = cidr.split('/');
  const family = isIP(address);
  let ok = false;
  if (family === 4) {
    const [a, b] = address.split('.').map(Number);
    ok = a === 198 && (b === 18 || b === 19) && (prefix === undefined || Number(prefix) >= 15);
  } else if (family === 6) {
    const groups = expandIPv6(address);
    ok = groups[0] === 0x2001 && groups[1] === 0x0002 && groups[2] === 0 && (prefix === undefined || Number(prefix) >= 48);
  }
  if (!ok) {
    throw new VectunError('ERR_INVALID_ARG', `address ${cidr} is outside the lab ranges 198.18.0.0/15 and 2001:2::/48`);
  }
}

function expandIPv6(address: string): number[] {
  const [head = '', tail] = address.split('::');
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const h = parse(head);
  const t = tail === undefined ? [] : parse(tail);
  return [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

/** One network namespace created by this process. */
export class Netns {
  /** The namespace name, as `ip netns` shows it. */
  readonly name: string;
  #removed = false;

  /** @internal use {@link createNetns}. */
  constructor(name: string) {
    this.name = name;
  }

  /** Runs `ip -n <name> <args>`. */
  ip(args: readonly string[]): Promise<string> {
    return ip(['-n', this.name, ...args]);
  }

  /** Runs a command inside the namespace and returns its stdout (bounded by `timeoutMs`). */
  exec(command: string, args: readonly string[], timeoutMs = IP_TIMEOUT_MS): Promise<string> {
    return run('ip', ['netns', 'exec', this.name, command, ...args], timeoutMs);
  }

  /**
   * Starts a long-running command inside the namespace. The child is killed
   * when the namespace is removed or the process exits.
   */
  spawn(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    children.add(child);
    child.once('exit', () => children.delete(child));
    child.once('error', () => children.delete(child));
    return child;
  }

  /** `ip addr add`; IPv6 without duplicate address detection so it is usable at once. */
  async addAddress(dev: string, cidr: string): Promise<void> {
    assertLabAddress(cidr);
    const v6 = cidr.includes(':');
    await this.ip([...(v6 ? ['-6'] : []), 'addr', 'add', cidr, 'dev', dev, ...(v6 ? ['nodad'] : [])]);
  }

  /** Adds a route to `cidr` through `dev` (on-link; TUN devices have no neighbours). */
  async addRoute(cidr: string, dev: string): Promise<void> {
    assertLabAddress(cidr);
    await this.ip([...(cidr.includes(':') ? ['-6'] : []), 'route', 'add', cidr, 'dev', dev]);
  }

  /** Brings a link up or down. */
  async setUp(dev: string, up = true): Promise<void> {
    await this.ip(['link', 'set', 'dev', dev, up ? 'up' : 'down']);
  }

  /** Sets a link's MTU. */
  async setMtu(dev: string, mtu: number): Promise<void> {
    await this.ip(['link', 'set', 'dev', dev, 'mtu', String(mtu)]);
  }

  /** Removes the namespace (and every link in it); idempotent. */
  async remove(): Promise<void> {
    if (this.#removed) return;
    this.#removed = true;
    killChildrenOf(this.name);
    registry.delete(this.name);
    if (existsSync(join(NETNS_DIR, this.name))) await ip(['netns', 'del', this.name]);
  }
}

/**
 * Creates a namespace named `vt-<pid>-<n>[-label]` with its loopback up.
 * It is removed by {@link Netns.remove}, {@link removeAllNetns}, or at the
 * latest when this process exits or is stopped by SIGINT/SIGTERM.
 */
export async function createNetns(label?: string): Promise<Netns> {
  if (label !== undefined && !/^[a-z0-9]{1,12}$/.test(label)) {
    throw new VectunError('ERR_INVALID_ARG', `netns label must be 1-12 lowercase letters or digits, got ${JSON.stringify(label)}`);
  }
  installExitHooks();
  if (!pruned) {
    pruned = true;
    await pruneStaleNetns();
  }
  const name = `vt-${process.pid}-${++counter}${label === undefined ? '' : `-${label}`}`;
  // Registered before creation so an interruption between the two still cleans up.
  registry.add(name);
  try {
    await ip(['netns', 'add', name]);
  } catch (err) {
    registry.delete(name);
    throw err;
  }
  const ns = new Netns(name);
  try {
    await ns.setUp('lo');
  } catch (err) {
    await ns.remove().catch(() => undefined);
    throw err;
  }
  return ns;
}

/** Creates a veth pair with one end in each namespace (both left down). */
export async function createVethPair(a: Netns, aName: string, b: Netns, bName: string): Promise<void> {
  await a.ip(['link', 'add', aName, 'type', 'veth', 'peer', 'name', bName, 'netns', b.name]);
}

/** Moves a link of the current namespace (e.g. a TUN this process opened) into `ns`. */
export async function moveLink(dev: string, ns: Netns): Promise<void> {
  await ip(['link', 'set', 'dev', dev, 'netns', ns.name]);
}

/** Removes every namespace this process created. */
export async function removeAllNetns(): Promise<void> {
  const errors: unknown[] = [];
  for (const name of [...registry]) {
    await new Netns(name).remove().catch((err: unknown) => errors.push(err));
    registry.delete(name);
  }
  if (errors.length > 0) throw errors[0];
}

/** Names of the namespaces this process currently holds (for tests and diagnostics). */
export function liveNetns(): string[] {
  return [...registry];
}

/** Deletes `vt-<pid>-*` namespaces whose creating process no longer exists. */
export async function pruneStaleNetns(): Promise<string[]> {
  let names: string[];
  try {
    names = readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = /^vt-(\d+)-\d+/.exec(name);
    if (m === null || Number(m[1]) === process.pid || processExists(Number(m[1]))) continue;
    await ip(['netns', 'del', name]).then(
      () => removed.push(name),
      () => undefined,
    );
  }
  return removed;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killChildrenOf(nsName: string): void {
  for (const child of children) {
    const args = child.spawnargs;
    if (args[3] === nsName && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** Synchronous last-resort cleanup: exit handlers cannot wait for promises. */
function cleanupSync(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  for (const name of registry) {
    try {
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: IP_TIMEOUT_MS });
    } catch {
      // already gone
    }
  }
  registry.clear();
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', cleanupSync);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      cleanupSync();
      // Alone on this signal: restore the default action (terminate) and re-raise.
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}
