/**
 * `vectun-wg`, wireguard-go's command line on `vectun wg`, used as
 * wireguard-go is: started bare it returns once the interface is up and
 * leaves a background process that ends with the device; and wg-quick, on
 * this kernel without WireGuard, falls back to it through
 * WG_QUICK_USERSPACE_IMPLEMENTATION exactly as it falls back to wireguard-go.
 * The peer is wireguard-go, brought up by wg-quick the same way. Keys live
 * only in 0600 config files in a fresh 0700 folder, removed at the end.
 *
 * Needs root: skips with the reason when unprivileged, fails under `CI`.
 * Every process started here is killed and every namespace removed, also
 * when a test fails.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Netns } from '../../src/lab/netns.js';
import { createVethTopology, type Topology } from '../../src/lab/topology.js';
import { tcpTransfer } from '../../src/lab/traffic.js';
import { ensureWgTools, generateWgKeyPair, wg, wgDump, wgInterfaceName } from '../../src/lab/wg.js';
import { UAPI_SOCKET_DIRECTORY } from '../../src/wg/uapi-server.js';
import { e2eSkip } from './require-root.js';
import { eventually } from './wg-scenarios.js';

const skip = e2eSkip();
const VECTUN_WG = join(__dirname, '..', '..', 'src', 'cli', 'vectun-wg.js');
const COMMAND_TIMEOUT_MS = 30_000;
const TUNNEL = { a: '198.18.72.1', b: '198.18.72.2' };
const TUNNEL6 = { a: '2001:2:0:72::1', b: '2001:2:0:72::2' };
const PORTS = { a: 51881, b: 51882 };
/** Reached from A only through the full tunnel: an address of B's outside every underlay and tunnel subnet. */
const BEYOND = '198.18.73.1';
const BEYOND6 = '2001:2:0:73::1';

/** Interfaces made here, so that `after` can kill what is left of their processes. */
const interfaces = new Set<string>();

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command inside `ns` to its end (bounded: killed after 30 s). */
function run(ns: Netns, command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  const child = ns.spawn(command, args, { env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not end within ${COMMAND_TIMEOUT_MS} ms: ${stderr}`));
    }, COMMAND_TIMEOUT_MS);
    // 'exit', not 'close': a daemon started by the command may hold the pipes it inherited.
    child.once('exit', (code) => {
      clearTimeout(timer);
      setImmediate(() => resolve({ code, stdout, stderr }));
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** PIDs of running processes whose command line holds `ifname` and `program` (the background `vectun-wg` or wireguard-go). */
function processesOf(program: string, ifname: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1];
      if (state !== 'Z' && argv.some((a) => a.endsWith(program)) && argv.includes(ifname)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function killAll(ifname: string): void {
  for (const program of ['vectun-wg.js', 'wireguard-go']) {
    for (const pid of processesOf(program, ifname)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
  rmSync(join(UAPI_SOCKET_DIRECTORY, `${ifname}.sock`), { force: true });
}

after(() => {
  for (const ifname of interfaces) killAll(ifname);
});

async function withUnderlay(body: (topo: Topology) => Promise<void>): Promise<void> {
  const topo = await createVethTopology();
  try {
    await body(topo);
  } finally {
    await topo.remove();
  }
}

function newInterface(side: string): string {
  const ifname = wgInterfaceName(side);
  interfaces.add(ifname);
  return ifname;
}

test('vectun-wg INTERFACE (no -f): returns 0 once the interface is up, its UAPI socket answers wg, a background process of its own serves it until `ip link del`, then the socket is gone', { skip }, async () => {
  await ensureWgTools();
  await withUnderlay(async ({ a }) => {
    const ifname = newInterface('d');
    const started = await run(a.ns, VECTUN_WG, [ifname]);
    assert.equal(started.code, 0, started.stderr);
    assert.equal(started.stderr, '', 'LOG_LEVEL unset: nothing on stderr');
    const socket = join(UAPI_SOCKET_DIRECTORY, `${ifname}.sock`);
    assert.ok(existsSync(socket), 'the socket listens when the command returns');
    assert.match(await a.ns.ip(['link', 'show', 'dev', ifname]), new RegExp(`${ifname}:`));
    const daemons = processesOf('vectun-wg.js', ifname);
    assert.equal(daemons.length, 1, 'one background process serves the interface');
    const dump = await wgDump(a.ns, ifname);
    assert.equal(dump.peers.length, 0);
    await a.ns.ip(['link', 'del', 'dev', ifname]);
    await eventually('the background process ends with its device', 5_000, async () => (processesOf('vectun-wg.js', ifname).length === 0 ? true : undefined));
    await eventually('its UAPI socket is removed', 5_000, async () => (existsSync(socket) ? undefined : true));
  });
});

test('vectun-wg: a setup failure is reported by the caller (exit 1, the reason on stderr) and leaves no process; usage errors exit 2; --version answers', { skip }, async () => {
  await withUnderlay(async ({ a }) => {
    // `lo` exists and is not a TUN device: TUNSETIFF refuses it in the background process.
    const failed = await run(a.ns, VECTUN_WG, ['lo']);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /Failed to create TUN device/);
    assert.deepEqual(processesOf('vectun-wg.js', 'lo'), []);
    const usage = await run(a.ns, VECTUN_WG, ['-f']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /Usage: vectun-wg \[-f\/--foreground\] INTERFACE-NAME/);
    const tooLong = await run(a.ns, VECTUN_WG, ['a-name-of-16-byt']);
    assert.equal(tooLong.code, 2);
    assert.match(tooLong.stderr, /1 to 15 bytes/);
    const version = await run(a.ns, VECTUN_WG, ['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^vectun-wg \d+\.\d+\.\d+/);
  });
});

/** A wg-quick pair: A on vectun-wg, B on wireguard-go, both up; `down()` takes both down. */
interface QuickPair {
  topo: Topology;
  ifA: string;
  confA: string;
  upA: Outcome;
  down(): Promise<{ a: Outcome; b: Outcome }>;
}

/**
 * Writes both configs (0600, in a fresh 0700 folder) and runs `wg-quick up`
 * on each side: A with `vectun-wg`, B with wireguard-go, each through
 * WG_QUICK_USERSPACE_IMPLEMENTATION. `allowedA` is what A routes into the
 * tunnel; B allows A's tunnel address.
 */
async function withQuickPair(allowedA: string, body: (pair: QuickPair) => Promise<void>): Promise<void> {
  const tools = await ensureWgTools();
  const folder = mkdtempSync(join(tmpdir(), 'vectun-wg-quick-'));
  try {
    await withUnderlay(async (topo) => {
      const ifA = newInterface('q');
      const ifB = newInterface('r');
      const keysA = generateWgKeyPair();
      const keysB = generateWgKeyPair();
      const confA = join(folder, `${ifA}.conf`);
      const confB = join(folder, `${ifB}.conf`);
      writeFileSync(
        confA,
        ['[Interface]', `PrivateKey = ${keysA.privateKey}`, `ListenPort = ${PORTS.a}`, `Address = ${TUNNEL.a}/24, ${TUNNEL6.a}/64`, 'MTU = 1400', '',
          '[Peer]', `PublicKey = ${keysB.publicKey}`, `AllowedIPs = ${allowedA}`, `Endpoint = ${topo.b.v4}:${PORTS.b}`, ''].join('\n'),
        { mode: 0o600 },
      );
      writeFileSync(
        confB,
        ['[Interface]', `PrivateKey = ${keysB.privateKey}`, `ListenPort = ${PORTS.b}`, `Address = ${TUNNEL.b}/24, ${TUNNEL6.b}/64`, '',
          '[Peer]', `PublicKey = ${keysA.publicKey}`, `AllowedIPs = ${TUNNEL.a}/32, ${TUNNEL6.a}/128`, ''].join('\n'),
        { mode: 0o600 },
      );
      try {
        const upA = await run(topo.a.ns, 'wg-quick', ['up', confA], { WG_QUICK_USERSPACE_IMPLEMENTATION: VECTUN_WG });
        assert.equal(upA.code, 0, upA.stderr);
        const upB = await run(topo.b.ns, 'wg-quick', ['up', confB], { WG_QUICK_USERSPACE_IMPLEMENTATION: tools.wireguardGo });
        assert.equal(upB.code, 0, upB.stderr);
        await body({
          topo, ifA, confA, upA,
          down: async () => ({ a: await run(topo.a.ns, 'wg-quick', ['down', confA]), b: await run(topo.b.ns, 'wg-quick', ['down', confB]) }),
        });
      } finally {
        killAll(ifA);
        killAll(ifB);
      }
    });
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

/** Streams `bytes` over TCP from A to `address` in B and asserts they arrived intact. */
async function assertTcp(topo: Topology, address: string, bytes: number, seed: number): Promise<void> {
  const r = await tcpTransfer({ from: topo.a.ns, to: topo.b.ns, address, bytes, timeoutMs: 30_000, seed });
  assert.equal(r.received.bytes, bytes);
  assert.equal(r.received.sha256, r.sent.sha256);
}

async function assertDownEndsDaemon(pair: QuickPair): Promise<void> {
  const down = await pair.down();
  assert.equal(down.a.code, 0, down.a.stderr);
  assert.equal(down.b.code, 0, down.b.stderr);
  await assert.rejects(pair.topo.a.ns.ip(['link', 'show', 'dev', pair.ifA]), 'the interface is gone');
  await eventually('vectun-wg ends after wg-quick down', 5_000, async () => (processesOf('vectun-wg.js', pair.ifA).length === 0 ? true : undefined));
  await eventually('its UAPI socket is removed', 5_000, async () => (existsSync(join(UAPI_SOCKET_DIRECTORY, `${pair.ifA}.sock`)) ? undefined : true));
}

test('wg-quick up/down with WG_QUICK_USERSPACE_IMPLEMENTATION=vectun-wg, peered with wireguard-go brought up by wg-quick alike: address, MTU and listen port set, TCP through the tunnel verified over IPv4 and IPv6, down removes the interface and ends the process', { skip }, async () => {
  await withQuickPair(`${TUNNEL.b}/32, ${TUNNEL6.b}/128`, async (pair) => {
    const { topo, ifA } = pair;
    assert.match(pair.upA.stderr, /Falling back to slow userspace implementation/, 'wg-quick took the userspace path');
    assert.ok(pair.upA.stderr.includes(`${VECTUN_WG} ${ifA}`), 'wg-quick ran vectun-wg with the interface name alone');
    const link = await topo.a.ns.ip(['-o', 'link', 'show', 'dev', ifA]);
    assert.match(link, /mtu 1400 /, 'MTU from the config');
    assert.match(link, /[<,]UP[,>]/);
    assert.match(await topo.a.ns.ip(['-o', '-4', 'address', 'show', 'dev', ifA]), new RegExp(`inet ${TUNNEL.a.replace(/\./g, '\\.')}/24`));
    assert.match(await wg(topo.a.ns, ['show', ifA, 'listen-port']), new RegExp(`^${PORTS.a}\\s*$`));
    const bytes = 4 << 20;
    await assertTcp(topo, TUNNEL.b, bytes, 7);
    await assertTcp(topo, TUNNEL6.b, 1 << 20, 9);
    const peer = (await wgDump(topo.a.ns, ifA)).peers[0];
    assert.ok(peer !== undefined && peer.latestHandshake > 0, 'handshake with wireguard-go');
    assert.ok(peer.txBytes > bytes, `tx ${peer.txBytes}`);
    await assertDownEndsDaemon(pair);
  });
});

// wg-quick's full tunnel marks the encrypted packets (wg set fwmark) and filters with nft (or iptables-restore).
const noFirewall = ['nft', 'iptables-restore'].every((tool) => !['/usr/sbin', '/sbin', '/usr/bin'].some((dir) => existsSync(join(dir, tool))));
const fullTunnelSkip = skip || (noFirewall && !process.env['CI'] ? 'wg-quick needs nft or iptables-restore for AllowedIPs = 0.0.0.0/0 (apt-get install nftables)' : false);

test('wg-quick full tunnel (AllowedIPs = 0.0.0.0/0, ::/0) on vectun-wg: the fwmark wg-quick sets keeps the encrypted packets on the underlay (SO_MARK), an IPv4 and an IPv6 address beyond the peer are reached only through the tunnel, down restores the rules', { skip: fullTunnelSkip }, async () => {
  await withQuickPair('0.0.0.0/0, ::/0', async (pair) => {
    const { topo, ifA } = pair;
    const rulesBefore = await topo.a.ns.ip(['-4', 'rule', 'show']);
    assert.match(await wg(topo.a.ns, ['show', ifA, 'fwmark']), /^0xca6c\s*$/, 'wg-quick set the fwmark through the UAPI');
    // An address of B's that A has no route to except the tunnel's default route (table 51820).
    await topo.b.ns.ip(['address', 'add', `${BEYOND}/32`, 'dev', 'lo']);
    await topo.b.ns.ip(['address', 'add', `${BEYOND6}/128`, 'dev', 'lo', 'nodad']);
    assert.match(await topo.a.ns.ip(['-4', 'route', 'get', BEYOND]), new RegExp(`dev ${ifA} table 51820`));
    assert.match(await topo.a.ns.ip(['-6', 'route', 'get', BEYOND6]), new RegExp(`dev ${ifA} table 51820`));
    assert.match(await topo.a.ns.ip(['-4', 'route', 'get', topo.b.v4, 'mark', '0xca6c']), new RegExp(`dev ${topo.a.dev} `), 'marked packets take the underlay');
    await assertTcp(topo, BEYOND, 2 << 20, 8);
    await assertTcp(topo, BEYOND6, 2 << 20, 10);
    const peer = (await wgDump(topo.a.ns, ifA)).peers[0];
    assert.ok(peer !== undefined && peer.latestHandshake > 0 && peer.txBytes > 4 << 20, 'the bytes went through the tunnel');
    assert.match(rulesBefore, /not from all fwmark 0xca6c lookup 51820/);
    await assertDownEndsDaemon(pair);
    for (const family of ['-4', '-6']) {
      assert.doesNotMatch(await topo.a.ns.ip([family, 'rule', 'show']), /51820|suppress_prefixlength/, `down removed the ${family} policy rules`);
    }
  });
});
