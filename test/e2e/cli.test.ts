/**
 * End to end through the `vectun` binary (dist/src/cli/main.js) as a user
 * runs it:
 * - `vectun demo --seconds 2` (and `--ipv6 --no-offload`) prints a verified
 *   transfer, the summary table and, with offload, the comparison; leaves no
 *   namespace behind;
 * - `vectun bridge ifA ifB --json` (attaching to a persistent ifA; with 1 and
 *   2 queues) between two namespaces carries a sha256-verified TCP transfer
 *   over IPv4 and IPv6, keeps forwarding after the devices are moved,
 *   addressed, brought down and up and their MTU changed, prints its
 *   statistics on SIGINT/SIGTERM (with 2 queues: pair 1 in a worker thread,
 *   8 parallel connections, per-queue counters that sum to the totals), and
 *   exits 1 when a device is deleted;
 * - `vectun bench --json` measures the three setups, the multi-stream rows and the core;
 * - prerequisite and usage errors exit with their documented codes.
 *
 * Needs root: skips with the reason when unprivileged, fails under `CI`.
 * Every child process and transfer is bounded in time and bytes.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { createNetns, ip as ipHere, liveNetns, moveLink, type Netns } from '../../src/lab/netns.js';
import { LAB } from '../../src/lab/topology.js';
import { tcpTransfer } from '../../src/lab/traffic.js';
import { ExitCode } from '../../src/cli/exit-codes.js';
import { e2eSkip } from './require-root.js';

const MAIN = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const skip = e2eSkip();

interface Run {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion (optionally through a wrapper command), killing it after `timeoutMs`. */
function runCli(
  args: readonly string[],
  timeoutMs: number,
  env: NodeJS.ProcessEnv = process.env,
  wrapper: readonly string[] = [],
  wrapperOnly = false,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const argv = [...wrapper.slice(1), ...(wrapperOnly ? [] : [process.execPath, MAIN, ...args])];
    const child = spawn(wrapper[0] ?? argv.shift()!, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ pid: child.pid ?? -1, code, signal, stdout, stderr });
    });
  });
}

/** The namespaces the demo announced (`vt-<pid>-<n>-a`) exist no more. */
function assertRemoved(output: string, expected: number): void {
  const names = [...new Set(output.match(/\bvt-\d+-\d+-[ab]\b/g) ?? [])];
  assert.equal(names.length, expected, `namespaces announced: ${names.join(' ')}`);
  for (const n of names) assert.equal(existsSync(path.join('/run/netns', n)), false, `${n} removed`);
}

/** Namespaces whose name says this pid's children created them (vt-<pid>-...). */
function namespacesOf(pid: number): string[] {
  if (!existsSync('/run/netns')) return [];
  return readdirSync('/run/netns').filter((n) => n.startsWith(`vt-${pid}-`));
}

describe('vectun demo', { skip, timeout: 240_000 }, () => {
  test('IPv4 with offload then without: verified transfers, summary table, comparison', async () => {
    const r = await runCli(['demo', '--seconds', '2', '--max-bytes', '4G'], 120_000);
    assert.equal(r.code, ExitCode.OK, `exit ${r.code} ${r.signal}\n${r.stdout}\n${r.stderr}`);
    // Not a TTY: plain progress lines, no carriage returns or escape sequences.
    assert.doesNotMatch(r.stdout, /[\r\x1b]/);
    assert.match(r.stdout, /^\[offload\] +\d+\.\d\/2 s .* pkts\/write/m, 'a progress line of the offload run');
    assert.match(r.stdout, /^\[no offload\] +\d+\.\d\/2 s/m, 'a progress line of the run without offload');
    const table = r.stdout.slice(r.stdout.indexOf('\nrun '));
    assert.match(table, /^offload +tso4 tso6.* ok$/m, 'offload row: negotiated TSO, sha256 ok');
    assert.match(table, /^no offload +none .* ok$/m, 'no-offload row: plain packets, sha256 ok');
    for (const row of table.split('\n').filter((l) => / ok$/.test(l))) {
      const gbit = Number(row.split(/ {2,}/)[4]);
      assert.ok(gbit > 0, `throughput in ${row}`);
    }
    assert.match(r.stdout, /offload is \d+\.\d\dx the throughput without offload/);
    assertRemoved(r.stdout, 4);
  });

  test('IPv6 without offload on a terminal: the progress line is redrawn in place; one verified run', async () => {
    // script(1) gives the demo a pseudo-terminal, as an interactive user has; the pty turns \n into \r\n.
    const cmd = [process.execPath, MAIN, 'demo', '--seconds', '1', '--ipv6', '--no-offload', '--max-bytes', '1G'].map(shellQuote).join(' ');
    const r = await runCli([], 90_000, process.env, ['script', '-qec', cmd, '/dev/null'], true);
    assert.equal(r.code, ExitCode.OK, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /IPv6 TCP/);
    assert.match(r.stdout, /\r\[no offload\] +\d+\.\d\/1 s [^\r\n]*pkts\/write +1\.0\x1b\[K/, 'progress redrawn with CR + erase-line');
    assert.match(r.stdout, /^no offload +none .* ok\r?$/m);
    assert.doesNotMatch(r.stdout, /^offload /m);
    assert.doesNotMatch(r.stdout, /the throughput without offload/);
    assertRemoved(r.stdout, 2);
  });

  test('SIGINT during the transfer: exit 130 and every namespace removed', async () => {
    const child = spawn(process.execPath, [MAIN, 'demo', '--seconds', '30'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    try {
      // Wait until the transfer runs (first progress line), bounded by the killer.
      await waitFor(() => /\[offload\] +\d/.test(out), 30_000);
      assert.ok(namespacesOf(child.pid!).length >= 2, 'its namespaces exist while it runs');
      child.kill('SIGINT');
      assert.equal(await exited, ExitCode.INTERRUPTED, out);
      assert.deepEqual(namespacesOf(child.pid!), [], 'namespaces removed');
      assert.match(out, /interrupted by SIGINT/);
    } finally {
      clearTimeout(killer);
      child.kill('SIGKILL');
    }
  });
});

for (const queues of [1, 2]) describe(`vectun bridge between two namespaces, ${queues} queue(s)`, { skip, timeout: 240_000 }, () => {
  const namespaces: Netns[] = [];
  const leftovers: string[] = [];
  let child: ChildProcess | undefined;
  after(async () => {
    child?.kill('SIGKILL');
    // A persistent device not yet moved into a namespace would outlive the test.
    for (const dev of leftovers) await ipHere(['link', 'del', 'dev', dev]).catch(() => undefined);
    for (const ns of namespaces) await ns.remove();
    assert.deepEqual(liveNetns(), []);
  });

  // With 2 queues, pair 1 runs in a worker thread (src/device/bridge-queues.ts): SIGINT must stop
  // it too, its counters must reach the summed statistics, and the devices must go away.
  const stopSignal = queues === 1 ? 'SIGTERM' : 'SIGINT';
  test(`sha256-verified TCP over IPv4 and IPv6, across down/up and MTU changes; stats as JSON on ${stopSignal}`, async () => {
    const ifA = `vcli${process.pid % 100000}q${queues}a`;
    const ifB = `vcli${process.pid % 100000}q${queues}b`;
    // With one queue, ifA exists beforehand as a persistent device: the bridge attaches to it.
    const persistent = queues === 1;
    if (persistent) {
      await ipHere(['tuntap', 'add', 'dev', ifA, 'mode', 'tun', 'vnet_hdr']);
      leftovers.push(ifA);
    }
    child = spawn(process.execPath, [MAIN, 'bridge', ifA, ifB, '--json', '--queues', String(queues)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child!.once('close', (code) => resolve(code)));
    await waitFor(() => /forwarding/.test(stderr) || child!.exitCode !== null, 20_000);
    assert.equal(child.exitCode, null, `bridge exited early: ${stderr}`);
    assert.match(stderr, new RegExp(`${queues} queue\\(s\\)`));

    // Link changes while still in this namespace are seen and logged; forwarding is unaffected.
    await ipHere(['link', 'set', 'dev', ifA, 'up']);
    await ipHere(['link', 'set', 'dev', ifA, 'mtu', '9000']);
    await ipHere(['link', 'set', 'dev', ifA, 'down']);
    await waitFor(() => new RegExp(`${ifA}: down`).test(stderr), 10_000);
    assert.match(stderr, new RegExp(`${ifA}: up`));
    assert.match(stderr, new RegExp(`${ifA}: mtu 9000`));

    // Configure the devices from outside, as a user would: move, address, route, up.
    const nsA = await createNetns('clia');
    namespaces.push(nsA);
    const nsB = await createNetns('clib');
    namespaces.push(nsB);
    await moveLink(ifA, nsA);
    await moveLink(ifB, nsB);
    for (const [ns, dev, self, peer] of [
      [nsA, ifA, LAB.a, LAB.b],
      [nsB, ifB, LAB.b, LAB.a],
    ] as const) {
      await ns.addAddress(dev, `${self.v4}/24`);
      await ns.addAddress(dev, `${self.v6}/64`);
      await ns.setUp(dev);
      await ns.addRoute(peer.v4Net, dev);
      await ns.addRoute(peer.v6Net, dev);
    }

    const transfer = async (address: string, bytes: number): Promise<void> => {
      const r = await tcpTransfer({ from: nsA, to: nsB, address, bytes, timeoutMs: 60_000 });
      assert.equal(r.received.bytes, bytes, `all bytes to ${address}`);
      assert.equal(r.received.sha256, r.sent.sha256, `sha256 to ${address}`);
      assert.equal(r.intact, true);
    };
    await transfer(LAB.b.v4, 32 << 20);
    await transfer(LAB.b.v6, 32 << 20);

    // Down and up on both sides, and a smaller MTU: the bridge keeps forwarding.
    for (const [ns, dev] of [
      [nsA, ifA],
      [nsB, ifB],
    ] as const) {
      await ns.setUp(dev, false);
      await ns.setMtu(dev, 1280);
      await ns.setUp(dev, true);
      // Link down flushes the routes through it and (keep_addr_on_down=0) its IPv6 addresses; put them back.
      const [self, peer] = ns === nsA ? [LAB.a, LAB.b] : [LAB.b, LAB.a];
      await ns.ip(['-6', 'addr', 'replace', `${self.v6}/64`, 'dev', dev, 'nodad']);
      await ns.ip(['route', 'replace', peer.v4Net, 'dev', dev]);
      await ns.ip(['-6', 'route', 'replace', peer.v6Net, 'dev', dev]);
    }
    await transfer(LAB.b.v4, 16 << 20);
    await transfer(LAB.b.v6, 16 << 20);
    // Several connections at once: the kernel spreads flows over the queues by hash.
    const parallel = queues > 1 ? 8 : 0;
    await Promise.all(Array.from({ length: parallel }, (_, k) => transfer(k % 2 === 0 ? LAB.b.v4 : LAB.b.v6, 4 << 20)));
    assert.equal(child.exitCode, null, `bridge still running: ${stderr}`);

    // Either signal stops it normally (exit 0) with the statistics.
    child.kill(stopSignal);
    const timer = setTimeout(() => child?.kill('SIGKILL'), 20_000);
    const code = await exited;
    clearTimeout(timer);
    assert.equal(code, ExitCode.OK, stderr);
    // The device it created vanished with its descriptor; the persistent one it attached to stays.
    await assert.rejects(nsB.ip(['link', 'show', 'dev', ifB]), `${ifB} removed on exit`);
    if (persistent) await nsA.ip(['link', 'show', 'dev', ifA]);
    else await assert.rejects(nsA.ip(['link', 'show', 'dev', ifA]));
    type Counters = { reads: number; packets: number; bytes: number; written: number; writes: number; drops: number };
    const stats = JSON.parse(stdout) as {
      devices: { name: string; offload: string }[];
      aToB: Counters;
      bToA: Counters;
      queues: { queue: number; thread: string; aToB: Counters; bToA: Counters }[];
    };
    assert.deepEqual(
      stats.devices.map((d) => d.name),
      [ifA, ifB],
    );
    assert.match(stats.devices[0]!.offload, /tso4 tso6/);
    const payload = (96 << 20) + parallel * (4 << 20);
    assert.ok(stats.aToB.bytes >= payload, `A->B carried the ${payload >> 20} MiB of payload: ${stats.aToB.bytes}`);
    // Per queue: pair 0 on the main thread, the others in workers; the totals are their sums.
    assert.deepEqual(
      stats.queues.map((q) => [q.queue, q.thread]),
      Array.from({ length: queues }, (_, q) => [q, q === 0 ? 'main' : 'worker']),
    );
    for (const dir of ['aToB', 'bToA'] as const) {
      for (const k of ['reads', 'packets', 'bytes', 'written', 'writes', 'drops'] as const) {
        assert.equal(stats.queues.reduce((n, q) => n + q[dir][k], 0), stats[dir][k], `${dir}.${k} is the sum over the queues`);
      }
    }
    if (queues > 1) {
      const used = stats.queues.filter((q) => q.aToB.packets > 0).length;
      process.stderr.write(`# ${queues} queues: A->B bytes per queue ${stats.queues.map((q) => q.aToB.bytes).join(', ')} (${used} used)\n`);
      assert.doesNotMatch(stderr, /ERR_TUN_WORKER/, 'no worker failed');
    }
    assert.ok(stats.bToA.packets > 0, 'B->A carried the ACKs');
    assert.ok(stats.aToB.written > 0);
    // After the move the device's events belong to the other namespace; the move itself is logged.
    assert.match(stderr, new RegExp(`${ifA}: moved`));
    assert.match(stderr, new RegExp(`${ifB}: moved`));
  });
});

describe('vectun bench', { skip, timeout: 240_000 }, () => {
  test('--json: three setups and the multi-stream rows (1 queue, N queues main thread, N with workers) in one run, ratios, core micro benchmarks, machine facts', async () => {
    const r = await runCli(['bench', '--seconds', '1', '--json'], 200_000);
    assert.equal(r.code, ExitCode.OK, r.stderr);
    const out = JSON.parse(r.stdout) as {
      machine: { cpus: number; kernel: string; node: string };
      e2e: {
        tool: string;
        runs: { setup: string; gbitPerSecond: number; forwarder?: { packetsPerWrite: number }; machineBusy: number }[];
        offloadVsVeth: number;
        multiStream: { streams: number; queues: number; workersVsOneQueue: number; workersVsMainThread: number; allWorkersVsWorkers: number };
      };
      core: { workload: string; usPerBatch: number; outputs: number }[];
      udp: { vectun: { datagramsPerSecond: number }; dgram: { datagramsPerSecond: number }; ratio: number };
    };
    assert.equal(out.machine.node, process.version);
    assert.ok(out.machine.cpus >= 1);
    assert.match(out.e2e.tool, /^(iperf3|node)$/);
    assert.deepEqual(
      out.e2e.runs.map((x) => x.setup),
      ['veth', 'vectun-offload', 'vectun-no-offload', 'multi-1q', 'multi-nq-main', 'multi-nq-workers', 'multi-nq-allworkers'],
    );
    assert.equal(out.e2e.multiStream.streams, 4);
    assert.ok(out.e2e.multiStream.queues >= 2);
    for (const k of ['workersVsOneQueue', 'workersVsMainThread', 'allWorkersVsWorkers'] as const) assert.ok(Number.isFinite(out.e2e.multiStream[k]) && out.e2e.multiStream[k] > 0, k);
    for (const run of out.e2e.runs) assert.ok(run.gbitPerSecond > 0, `${run.setup} moved data`);
    // Traffic at Gbit/s keeps some core busy; the share is of all cores, so it is at most 1.
    for (const run of out.e2e.runs) assert.ok(run.machineBusy > 0 && run.machineBusy <= 1, `${run.setup} machine busy ${run.machineBusy}`);
    // Coalescing is what offload buys: several packets per writev with offload, one without.
    assert.ok(out.e2e.runs[1]!.forwarder!.packetsPerWrite > 2, 'offload coalesces');
    assert.equal(out.e2e.runs[2]!.forwarder!.packetsPerWrite, 1, 'no offload, one packet per write');
    assert.ok(Number.isFinite(out.e2e.offloadVsVeth) && out.e2e.offloadVsVeth > 0);
    assert.deepEqual([...new Set(out.core.map((x) => x.workload))], ['a', 'b', 'c', 'd', 'e', 'f']);
    for (const c of out.core) assert.ok(c.usPerBatch > 0 && c.outputs > 0, `core ${c.workload}`);
    assert.ok(out.udp.vectun.datagramsPerSecond > 0 && out.udp.dgram.datagramsPerSecond > 0 && out.udp.ratio > 0, 'UDP row measured both');
  });

  test('the multi-stream benchmark run as a script ends by itself once it has printed (every queue worker stopped, no forced exit)', async () => {
    // The CLI exits 1 s after its command, which would hide a worker left running; the script has no such exit.
    const script = path.join(__dirname, '..', '..', 'src', 'bench', 'e2e.js');
    const r = await runCli([], 120_000, process.env, [process.execPath, script, '--no-single', '--seconds', '1', '--repeats', '1', '--json'], true);
    assert.equal(r.signal, null, `ended by itself, not killed at the timeout: ${r.stderr.slice(-500)}`);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { runs: { setup: string }[] };
    assert.deepEqual(out.runs.map((x) => x.setup), ['multi-1q', 'multi-nq-main', 'multi-nq-workers', 'multi-nq-allworkers']);
    assert.deepEqual(namespacesOf(r.pid), [], 'its namespaces removed');
  });
});

describe('vectun bridge when a device is deleted', { skip, timeout: 60_000 }, () => {
  for (const queues of [1, 2]) test(`${queues} queue(s): exits 1 with ERR_TUN_REMOVED, still printing the statistics`, async () => {
    const ifA = `vdel${process.pid % 100000}q${queues}a`;
    const ifB = `vdel${process.pid % 100000}q${queues}b`;
    const child = spawn(process.execPath, [MAIN, 'bridge', ifA, ifB, '--json', '--queues', String(queues)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    try {
      await waitFor(() => /forwarding/.test(stderr) || child.exitCode !== null, 20_000);
      await ipHere(['link', 'del', 'dev', ifA]);
      assert.equal(await exited, ExitCode.FAILURE, stderr);
      assert.match(stderr, /ERR_TUN_REMOVED/);
      const stats = JSON.parse(stdout) as { error?: string; queues: { thread: string }[] };
      assert.match(stats.error ?? '', /^ERR_TUN_REMOVED/);
      // With a worker: it stopped too (its final counters are in the output) and the process exited.
      assert.deepEqual(stats.queues.map((q) => q.thread), queues === 1 ? ['main'] : ['main', 'worker']);
    } finally {
      clearTimeout(killer);
      child.kill('SIGKILL');
    }
  });
});

describe('vectun exit codes', () => {
  test('usage error exits 2 before touching any device', async () => {
    const r = await runCli(['bridge', 'x'], 20_000);
    assert.equal(r.code, ExitCode.USAGE);
    assert.match(r.stderr, /missing required argument 'ifB'/);
  });

  test('the same device twice is a usage error', async () => {
    const r = await runCli(['bridge', 'vtsame0', 'vtsame0'], 20_000);
    assert.equal(r.code, ExitCode.USAGE);
    assert.match(r.stderr, /two different devices/);
  });

  // Privileges are dropped by emptying the capability sets while keeping uid 0:
  // the checks look at the effective capabilities (CapEff), and uid 0 can still
  // read a work tree that only root may enter (CI clones into such folders).
  const withoutCapabilities = ['setpriv', '--bounding-set=-all', '--inh-caps=-all'];

  test('bridge without CAP_NET_ADMIN exits 3 with a fix', { skip }, async () => {
    const r = await runCli(['bridge', 'vnopriv0', 'vnopriv1'], 20_000, process.env, withoutCapabilities);
    assert.equal(r.code, ExitCode.PREREQUISITES, r.stderr);
    // Depending on /dev/net/tun's mode the refusal comes from the up-front check or from TUNSETIFF.
    assert.match(r.stderr, /no read\/write access to \/dev\/net\/tun|cannot open vnopriv0/);
    assert.match(r.stderr, /fix: .*(chmod 0666|run as root)/);
  });

  test('demo without capabilities exits 3 and says which capability is missing', { skip }, async () => {
    const r = await runCli(['demo', '--seconds', '1'], 20_000, process.env, withoutCapabilities);
    assert.equal(r.code, ExitCode.PREREQUISITES, r.stderr);
    assert.match(r.stderr, /prerequisites missing/);
    assert.match(r.stderr, /root without CAP_NET_ADMIN and CAP_SYS_ADMIN/);
    assert.match(r.stderr, /fix: run as root/);
  });
});

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
