/**
 * WireGuard in the lab: the reference peer (wireguard-go, built from Debian's
 * source by `scripts/install-wireguard-go.sh` and cached) and `vectun wg`,
 * each run in the foreground inside a lab namespace, configured with the
 * stock `wg` tool, and always stopped (SIGTERM, then SIGKILL) with their
 * UAPI sockets removed, also when a test fails or the process exits.
 *
 * The UAPI folder `/var/run/wireguard` is shared by every namespace, so each
 * interface gets a name unique on the host ({@link wgInterfaceName}).
 * Private and preshared keys reach `wg` only through files in a fresh 0700
 * folder (files 0600), removed right after; they are never put on a command
 * line, in a log or in an error message.
 *
 * {@link createWgTopology}: two namespaces over a veth (the underlay, the lab's
 * standard addresses), a WireGuard interface in each, peered with each other.
 * Tunnel addresses: A 198.18.10.1/24 + 2001:2:0:10::1/64, B 198.18.10.2/24 +
 * 2001:2:0:10::2/64.
 * @module
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { VectunError } from '../errors.js';
import { generatePrivateKey, keyToBase64, publicKeyOf } from '../wg/crypto.js';
import { UAPI_SOCKET_DIRECTORY, uapiRequest } from '../wg/uapi-server.js';
import { assertLabAddress, type Netns } from './netns.js';
import type { RelayCommand, RelayConfig, RelayMessage } from './udp-relay.js';
import type { TickerConfig, TickerResult } from './udp-ticker.js';
import { startWorkerProcess } from './worker-process.js';
import { createVethTopology, type Topology } from './topology.js';

/** The two WireGuard implementations the lab runs. */
export type WgImplementation = 'wireguard-go' | 'vectun';

/** Paths of the reference tools. */
export interface WgTools {
  /** The cached wireguard-go binary. */
  wireguardGo: string;
  /** The `wg` tool. */
  wg: string;
}

const INSTALL_SCRIPT = join(__dirname, '..', '..', '..', 'scripts', 'install-wireguard-go.sh');
const VECTUN_CLI = join(__dirname, '..', 'cli', 'main.js');
/** Building wireguard-go the first time takes a few minutes on the 2-core VM (apt + go build). */
const INSTALL_TIMEOUT_MS = 10 * 60_000;
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

let toolsPromise: Promise<WgTools> | undefined;

/**
 * Makes sure wireguard-go and `wg` are installed (running the idempotent,
 * cached install script once per process) and returns their paths.
 * @throws VectunError `ERR_LAB_PREREQUISITE` if the script fails (its output is in the message).
 */
export function ensureWgTools(): Promise<WgTools> {
  toolsPromise ??= new Promise<WgTools>((resolve, reject) => {
    execFile('bash', [INSTALL_SCRIPT], { timeout: INSTALL_TIMEOUT_MS, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const wireguardGo = /^wireguard-go=(.+)$/m.exec(stdout)?.[1];
      const wg = /^wg=(.+)$/m.exec(stdout)?.[1];
      if (err || wireguardGo === undefined || wg === undefined) {
        reject(new VectunError('ERR_LAB_PREREQUISITE', `${INSTALL_SCRIPT} failed: ${stderr.trim().split('\n').slice(-5).join(' | ') || err?.message}`));
      } else {
        resolve({ wireguardGo, wg });
      }
    });
  });
  toolsPromise.catch(() => (toolsPromise = undefined));
  return toolsPromise;
}

let nameCounter = 0;

/** An interface name unique on the host (the UAPI folder is shared by all namespaces): `wg<pid><side><n>`, at most 15 bytes. */
export function wgInterfaceName(side: string): string {
  return `wg${process.pid % 100_000}${side}${++nameCounter}`.slice(0, 15);
}

/** A fresh key pair, base64 as `wg` uses it. `privateKey` is a secret: never print it. */
export interface WgKeyPair {
  privateKey: string;
  publicKey: string;
}

/** A new X25519 key pair (clamped private key, as `wg genkey`). */
export function generateWgKeyPair(): WgKeyPair {
  const privateKey = generatePrivateKey();
  return { privateKey: keyToBase64(privateKey), publicKey: keyToBase64(publicKeyOf(privateKey)) };
}

/** Socket paths of the instances this process started; removed at exit if still there. */
const liveSockets = new Set<string>();
let exitHookInstalled = false;

function trackSocket(path: string): void {
  liveSockets.add(path);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of liveSockets) removeSocketFile(p);
  });
}

function removeSocketFile(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // gone already
  }
}

/** A running WireGuard process in a namespace. */
export interface WgInstance {
  implementation: WgImplementation;
  ns: Netns;
  ifname: string;
  /** `/var/run/wireguard/<ifname>.sock`. */
  socketPath: string;
  child: ChildProcess;
  /** What the process wrote to stderr so far (bounded). */
  stderr(): string;
  /** What the process wrote to stdout so far (bounded; `vectun wg` prints its statistics there on exit). */
  stdout(): string;
  /** Resolves with the exit code or signal once the process has exited. */
  exited: Promise<number | NodeJS.Signals>;
  /** SIGTERM, SIGKILL after 5 s; removes the socket if left behind. Idempotent. */
  stop(): Promise<number | NodeJS.Signals>;
}

/** Options of {@link startWg}. */
export interface StartWgOptions {
  /** wireguard-go's LOG_LEVEL (`error` by default; `verbose` for debugging). */
  logLevel?: 'silent' | 'error' | 'verbose';
  /** Extra arguments for `vectun wg` (before the interface name). */
  vectunArgs?: string[];
}

/**
 * Starts wireguard-go (`-f`, foreground) or `vectun wg` for interface
 * `ifname` inside `ns` and waits until its UAPI socket answers `get=1`.
 * @throws VectunError `ERR_LAB_COMMAND` if it exits first, `ERR_LAB_TIMEOUT` if the socket does not answer in 15 s.
 */
export async function startWg(implementation: WgImplementation, ns: Netns, ifname: string, options: StartWgOptions = {}): Promise<WgInstance> {
  const socketPath = join(UAPI_SOCKET_DIRECTORY, `${ifname}.sock`);
  if (existsSync(socketPath)) throw new VectunError('ERR_LAB_COMMAND', `${socketPath} already exists; pick another interface name`);
  let child: ChildProcess;
  if (implementation === 'wireguard-go') {
    const tools = await ensureWgTools();
    child = ns.spawn(tools.wireguardGo, ['-f', ifname], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, WG_PROCESS_FOREGROUND: '1', LOG_LEVEL: options.logLevel ?? 'error' },
    });
  } else {
    child = ns.spawn(process.execPath, [VECTUN_CLI, 'wg', ...(options.vectunArgs ?? []), ifname], { stdio: ['ignore', 'pipe', 'pipe'] });
  }
  trackSocket(socketPath);
  let stderr = '';
  let stdout = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 16_384) stderr += d.toString();
  });
  child.stdout?.on('data', (d: Buffer) => {
    if (stdout.length < 65_536) stdout += d.toString();
  });
  const exited = new Promise<number | NodeJS.Signals>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ?? code ?? -1));
    child.once('error', () => resolve(-1));
  });

  let stopping: Promise<number | NodeJS.Signals> | undefined;
  const instance: WgInstance = {
    implementation,
    ns,
    ifname,
    socketPath,
    child,
    stderr: () => stderr,
    stdout: () => stdout,
    exited,
    stop: () =>
      (stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        const outcome = await exited;
        clearTimeout(timer);
        removeSocketFile(socketPath);
        liveSockets.delete(socketPath);
        return outcome;
      })()),
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  let lastError = '';
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await instance.stop();
      throw new VectunError('ERR_LAB_COMMAND', `${implementation} ${ifname} in ${ns.name} exited (${child.signalCode ?? child.exitCode}) before its UAPI socket answered: ${stderr.trim()}`);
    }
    if (existsSync(socketPath)) {
      try {
        const reply = await uapiRequest(socketPath, 'get=1\n\n', 2_000);
        if (reply.errno === 0) return instance;
        lastError = `errno ${reply.errno}`;
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
      }
    }
    if (Date.now() > deadline) {
      await instance.stop();
      throw new VectunError('ERR_LAB_TIMEOUT', `${implementation} ${ifname}: UAPI socket did not answer within ${START_TIMEOUT_MS} ms (${lastError}): ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs `wg <args>` inside `ns` and returns its stdout. @throws VectunError `ERR_LAB_COMMAND` with wg's stderr. */
export async function wg(ns: Netns, args: readonly string[], timeoutMs = 10_000): Promise<string> {
  await ensureWgTools();
  return ns.exec('wg', args, timeoutMs);
}

/** One peer for {@link wgSet}. */
export interface WgPeerSetup {
  publicKey: string;
  /** Remove this peer instead (`wg set ... peer X remove`). */
  remove?: boolean;
  /** Base64; passed through a 0600 file. */
  presharedKey?: string;
  /** `198.18.1.1:51820` or `[2001:2::1]:51820`. */
  endpoint?: string;
  allowedIps?: string[];
  persistentKeepalive?: number;
}

/** A `wg set` call. */
export interface WgSetup {
  /** Base64; passed through a 0600 file. */
  privateKey?: string;
  listenPort?: number;
  fwmark?: number;
  peers?: WgPeerSetup[];
}

/**
 * Configures `ifname` with `wg set`, secrets through files in a private temp
 * folder (0700, files 0600) that is removed afterwards, whatever happens.
 */
export async function wgSet(ns: Netns, ifname: string, setup: WgSetup): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'vt-wgkeys-'));
  try {
    await chmod(dir, 0o700);
    let files = 0;
    const secretFile = async (secret: string): Promise<string> => {
      const file = join(dir, `k${++files}`);
      await writeFile(file, `${secret}\n`, { mode: 0o600 });
      return file;
    };
    const args = ['set', ifname];
    if (setup.listenPort !== undefined) args.push('listen-port', String(setup.listenPort));
    if (setup.fwmark !== undefined) args.push('fwmark', String(setup.fwmark));
    if (setup.privateKey !== undefined) args.push('private-key', await secretFile(setup.privateKey));
    for (const peer of setup.peers ?? []) {
      args.push('peer', peer.publicKey);
      if (peer.remove === true) {
        args.push('remove');
        continue;
      }
      if (peer.presharedKey !== undefined) args.push('preshared-key', await secretFile(peer.presharedKey));
      if (peer.endpoint !== undefined) args.push('endpoint', peer.endpoint);
      if (peer.persistentKeepalive !== undefined) args.push('persistent-keepalive', String(peer.persistentKeepalive));
      if (peer.allowedIps !== undefined) args.push('allowed-ips', peer.allowedIps.join(','));
    }
    await wg(ns, args);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A peer as `wg show <if> dump` reports it. */
export interface WgDumpPeer {
  publicKey: string;
  /** Whether a preshared key is set (the key itself is not kept). */
  hasPresharedKey: boolean;
  /** `ip:port` (IPv6 in brackets) or null. */
  endpoint: string | null;
  allowedIps: string[];
  /** Unix seconds of the latest handshake, 0 for none. */
  latestHandshake: number;
  rxBytes: number;
  txBytes: number;
  /** 0 for off. */
  persistentKeepalive: number;
}

/** `wg show <if> dump` without the private key. */
export interface WgDump {
  publicKey: string;
  listenPort: number;
  /** 0 for off. */
  fwmark: number;
  peers: WgDumpPeer[];
}

/** Reads `wg show <ifname> dump`; the private key column is dropped at once. */
export async function wgDump(ns: Netns, ifname: string): Promise<WgDump> {
  const lines = (await wg(ns, ['show', ifname, 'dump'])).trim().split('\n');
  const head = lines[0]?.split('\t') ?? [];
  if (head.length !== 4) throw new VectunError('ERR_LAB_COMMAND', `wg show ${ifname} dump: unexpected first line (${head.length} fields)`);
  const num = (s: string | undefined): number => (s === undefined || s === 'off' || s === '(none)' ? 0 : Number(s));
  return {
    publicKey: head[1]!,
    listenPort: num(head[2]),
    fwmark: num(head[3]),
    peers: lines.slice(1).map((line) => {
      const f = line.split('\t');
      return {
        publicKey: f[0]!,
        hasPresharedKey: f[1] !== '(none)',
        endpoint: f[2] === '(none)' ? null : f[2]!,
        allowedIps: f[3] === '(none)' || f[3] === undefined ? [] : f[3].split(','),
        latestHandshake: num(f[4]),
        rxBytes: num(f[5]),
        txBytes: num(f[6]),
        persistentKeepalive: num(f[7]),
      };
    }),
  };
}

/** Tunnel addresses of the two sides of {@link createWgTopology}. */
export const WG_LAB = {
  a: { v4: '198.18.10.1', v6: '2001:2:0:10::1' },
  b: { v4: '198.18.10.2', v6: '2001:2:0:10::2' },
  /** Listen ports (each in its own namespace). */
  portA: 51821,
  portB: 51822,
  mtu: 1420,
} as const;

/** One side of a {@link WgTopology}. */
export interface WgSide {
  ns: Netns;
  implementation: WgImplementation;
  instance: WgInstance;
  ifname: string;
  /** Secret: never print `keys.privateKey`. */
  keys: WgKeyPair;
  listenPort: number;
  /** Tunnel addresses. */
  v4: string;
  v6: string;
  /** Underlay (veth) addresses. */
  underlayV4: string;
  underlayV6: string;
}

/** Options of {@link createWgTopology}. */
export interface WgTopologyOptions {
  a: WgImplementation;
  b: WgImplementation;
  /** Who knows the other's endpoint (and so can start the handshake); default `'both'`. */
  initiator?: 'a' | 'b' | 'both';
  /** Underlay address family of the endpoints; default 4. */
  underlay?: 4 | 6;
  /** Give both peers the same fresh preshared key. */
  presharedKey?: boolean;
  startOptions?: StartWgOptions;
}

/** Two WireGuard peers over a veth; `remove()` stops both and deletes everything (idempotent). */
export interface WgTopology {
  a: WgSide;
  b: WgSide;
  underlay: Topology;
  /** Address family of the endpoints. */
  family: 4 | 6;
  remove(): Promise<void>;
}

/** The endpoint string of `side` as the other side dials it. */
export function wgEndpointOf(side: Pick<WgSide, 'underlayV4' | 'underlayV6' | 'listenPort'>, family: 4 | 6): string {
  return family === 4 ? `${side.underlayV4}:${side.listenPort}` : `[${side.underlayV6}]:${side.listenPort}`;
}

/**
 * Builds the two-peer setup: veth underlay, a WireGuard process per side,
 * keys, listen ports, peers with the other's tunnel addresses as allowed IPs,
 * tunnel addresses and links up. On failure everything created is removed.
 */
export async function createWgTopology(options: WgTopologyOptions): Promise<WgTopology> {
  const underlay = await createVethTopology();
  const instances: WgInstance[] = [];
  let removed = false;
  const remove = async (): Promise<void> => {
    if (removed) return;
    removed = true;
    await Promise.all(instances.map((i) => i.stop().catch(() => undefined)));
    await underlay.remove();
  };
  try {
    const psk = options.presharedKey === true ? keyToBase64(generatePrivateKey()) : undefined;
    const side = async (which: 'a' | 'b', implementation: WgImplementation): Promise<WgSide> => {
      const ns = underlay[which].ns;
      const ifname = wgInterfaceName(which);
      const instance = await startWg(implementation, ns, ifname, options.startOptions);
      instances.push(instance);
      return {
        ns,
        implementation,
        instance,
        ifname,
        keys: generateWgKeyPair(),
        listenPort: which === 'a' ? WG_LAB.portA : WG_LAB.portB,
        v4: WG_LAB[which].v4,
        v6: WG_LAB[which].v6,
        underlayV4: underlay[which].v4,
        underlayV6: underlay[which].v6,
      };
    };
    const a = await side('a', options.a);
    const b = await side('b', options.b);
    const family = options.underlay ?? 4;
    const initiator = options.initiator ?? 'both';
    for (const [self, other, dials] of [
      [a, b, initiator !== 'b'],
      [b, a, initiator !== 'a'],
    ] as const) {
      await wgSet(self.ns, self.ifname, {
        privateKey: self.keys.privateKey,
        listenPort: self.listenPort,
        peers: [
          {
            publicKey: other.keys.publicKey,
            allowedIps: [`${other.v4}/32`, `${other.v6}/128`],
            ...(dials ? { endpoint: wgEndpointOf(other, family) } : {}),
            ...(psk === undefined ? {} : { presharedKey: psk }),
          },
        ],
      });
      await self.ns.setMtu(self.ifname, WG_LAB.mtu);
      await self.ns.addAddress(self.ifname, `${self.v4}/24`);
      await self.ns.addAddress(self.ifname, `${self.v6}/64`);
      await self.ns.setUp(self.ifname);
    }
    return { a, b, underlay, family, remove };
  } catch (err) {
    await remove().catch(() => undefined);
    throw err;
  }
}

/** A running {@link RelayConfig} relay (see `udp-relay.ts`). */
export interface UdpRelay {
  /** Sends a command and resolves with its answer (`done` or `stats`). */
  command(command: RelayCommand, timeoutMs?: number): Promise<RelayMessage>;
  stop(): Promise<void>;
}

const RELAY = join(__dirname, 'udp-relay.js');

/**
 * Starts a UDP relay between peers `x` and `y` inside `ns`, listening on
 * `listen` (lab addresses only), for at most `timeoutMs`.
 */
export async function startUdpRelay(ns: Netns, config: RelayConfig): Promise<UdpRelay> {
  for (const e of [config.listen, config.x, config.y]) assertLabAddress(e.address);
  const child = ns.spawn(process.execPath, [RELAY, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const waiting: ((m: RelayMessage) => void)[] = [];
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => {
    try {
      const m = JSON.parse(line) as RelayMessage;
      waiting.shift()?.(m);
    } catch {
      // not ours
    }
  });
  const next = (timeoutMs: number, what: string): Promise<RelayMessage> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new VectunError('ERR_LAB_TIMEOUT', `udp relay: no answer to ${what} within ${timeoutMs} ms: ${stderr.trim()}`)), timeoutMs);
      waiting.push((m) => {
        clearTimeout(timer);
        if (m.type === 'error') reject(new VectunError('ERR_LAB_TRAFFIC', `udp relay: ${m.message}`));
        else resolve(m);
      });
    });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  };
  try {
    await next(10_000, 'start');
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    command: (command, timeoutMs = 10_000) => {
      const answer = next(timeoutMs, command.cmd);
      child.stdin!.write(`${JSON.stringify(command)}\n`);
      return answer;
    },
    stop,
  };
}

const TICKER = join(__dirname, 'udp-ticker.js');

/** A running {@link startUdpTicker} pair. */
export interface UdpTicker {
  /** Stops the client (its echoes get `graceMs`), then the server; resolves with the client's counts. */
  stop(): Promise<TickerResult>;
}

/**
 * Starts an echo server at `address` in `serverNs` and a client in `clientNs`
 * sending one datagram every `intervalMs` (at most `count`), for steady,
 * light traffic across a long observation. Everything is killed on failure.
 */
export async function startUdpTicker(clientNs: Netns, serverNs: Netns, address: string, o: { intervalMs: number; count: number }): Promise<UdpTicker> {
  assertLabAddress(address);
  const timeoutMs = o.intervalMs * o.count + 30_000;
  const serverConfig: TickerConfig = { mode: 'server', host: address, port: 0, timeoutMs };
  const server = startWorkerProcess<never>(serverNs, TICKER, serverConfig, `udp ticker server in ${serverNs.name}`);
  let timer: NodeJS.Timeout | undefined;
  try {
    const port = await Promise.race([
      server.ready,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new VectunError('ERR_LAB_TIMEOUT', 'udp ticker: no ready within 10000 ms')), 10_000);
      }),
    ]);
    const clientConfig: TickerConfig = { mode: 'client', host: address, port, intervalMs: o.intervalMs, count: o.count, graceMs: 2_000, timeoutMs };
    // The client reports when its stdin ends (or at `count`, or at its own timeout).
    const client = startWorkerProcess<TickerResult>(clientNs, TICKER, clientConfig, `udp ticker client in ${clientNs.name}`, { stdin: true });
    return {
      stop: async () => {
        client.child.stdin?.end();
        try {
          return await client.result;
        } finally {
          client.child.kill('SIGKILL');
          server.child.kill('SIGKILL');
        }
      },
    };
  } catch (err) {
    server.child.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
