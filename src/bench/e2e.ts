/**
 * End-to-end benchmark: single-stream TCP throughput from namespace A to B
 * through (1) a veth pair, the kernel's own baseline, (2) two vectun TUNs
 * bridged by this process with offload on (GSO split + GRO coalescing) and
 * (3) the same with offload off. All three are measured in the same run,
 * interleaved per repeat so drift in machine load hits them alike, and
 * reported with ratios: the issue's targets are offload ≥ 60% of veth and
 * offload ≥ 4x no offload.
 *
 * Traffic comes from iperf3 when it is installed (the sender and receiver then
 * cost little CPU, which matters on small machines where the forwarder shares
 * the cores), else from the lab's Node TCP workers; the result says which.
 *
 * Used by `bench/run.ts` (`npm run bench`) and `vectun bench`; runnable alone:
 * `node dist/src/bench/e2e.js [--seconds 3] [--repeats 3] [--tool auto|iperf3|node] [--family 4|6] [--profile] [--passthrough] [--no-multi | --streams 4 --queues 2] [--no-single] [--json]`.
 *
 * Multi-stream rows (issue #10): `iperf3 -P 4` through one queue pair, through
 * N queue pairs all on the main thread, and through N pairs with a worker
 * thread per further pair (`bridgeQueues`), same run, paired ratios.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import * as os from 'node:os';
import { bridge } from '../device/bridge.js';
import { bridgeQueueFdsInWorkers, bridgeQueues, type QueueBridgeHandle } from '../device/bridge-queues.js';
import { EAGAIN, loadBinding, POLL_READABLE, type NativeBinding, type PollHandle } from '../device/native.js';
import { VectunError } from '../errors.js';
import { checkLabPrerequisites, type Netns } from '../lab/netns.js';
import { createTopologyAround, createTunTopology, createVethTopology, labDeviceName, type Topology } from '../lab/topology.js';
import { tcpTransfer } from '../lab/traffic.js';

/** Options of {@link runE2eBenchmarks}. */
export interface E2eBenchOptions {
  /** Seconds per measured transfer; default 3. */
  seconds?: number;
  /** Measurements per setup (the median is reported); default 3. */
  repeats?: number;
  /** Traffic generator; `auto` (default) prefers iperf3. */
  tool?: 'auto' | 'iperf3' | 'node';
  /** IP version of the stream; default 4. */
  family?: 4 | 6;
  /** Called with a line of progress text per measurement. */
  onProgress?: (line: string) => void;
  /** Also measure the `addon-passthrough` ceiling (see {@link E2eSetup}). */
  passthrough?: boolean;
  /**
   * The multi-stream rows (`iperf3 -P streams`): one queue vs `queues` queues
   * on the main thread only (the bridge before issue #10) vs `queues` queues
   * with a worker per further pair vs a worker for every pair (queue 0
   * included), measured in the same run. Default
   * `{ streams: 4, queues: max(2, cores) }`; `false` skips them.
   */
  multiStream?: { streams: number; queues: number } | false;
  /** The single-stream setups (veth, offload, no offload); default true. Without them the single-stream ratios are NaN. */
  singleStream?: boolean;
  /** Stops between measurements (namespaces and devices are still removed); rejects with the abort reason. */
  signal?: AbortSignal;
  /**
   * Samples this process's CPU (node:inspector) during the offload runs and
   * reports where the forwarder's time goes. Costs a few percent throughput.
   */
  profile?: boolean;
}

/** Share of the forwarder's busy CPU samples per stage of the data path. */
export interface E2eProfile {
  /** Busy samples in ms (idle excluded). */
  busyMs: number;
  /** Fraction of busy time per stage: syscalls (addon), segment, coalesce, wasm (checksum/copy), gc, bridge (loop and device glue), other. */
  stages: Record<string, number>;
  /** The heaviest functions by self time: `name file:line` and fraction of busy time. */
  top: Array<{ fn: string; share: number }>;
}

/**
 * The setups measured; `addon-passthrough` only with `passthrough: true`: the
 * ceiling of a frame-level bridge (raw virtio-net frames moved fd to fd by the
 * addon, no split, no coalesce, no Tun class).
 */
export type E2eSetup =
  | 'veth'
  | 'vectun-offload'
  | 'vectun-no-offload'
  | 'addon-passthrough'
  | 'multi-1q'
  | 'multi-nq-main'
  | 'multi-nq-workers'
  | 'multi-nq-allworkers';

/** Forwarder counters of one vectun setup, summed over its measurements. */
export interface E2eForwarderStats {
  /** Segments per read batch (GSO split output; passthrough: frames per batch). */
  packetsPerRead: number;
  /** Packets per writev (GRO coalescing; passthrough: 1 frame). */
  packetsPerWrite: number;
  /** Packets not accepted by the destination device. */
  drops: number;
  /** CPU time of this process (the forwarder) per GiB forwarded, in ms. */
  cpuMsPerGiB: number;
  /** Share of one core this process used while forwarding. */
  cpuShare: number;
}

/** One setup's measurements. */
export interface E2eBenchRun {
  setup: E2eSetup;
  /** Median of `samples`, Gbit/s. */
  gbitPerSecond: number;
  samples: number[];
  forwarder?: E2eForwarderStats;
  /**
   * Share of all cores' time that was busy (anything on the machine: senders,
   * receivers, the kernel including softirq, the forwarder; /proc/stat)
   * during this setup's measurements, 0..1. Near 1 means the machine, not the
   * forwarder, is the limit.
   */
  machineBusy: number;
}

/** Result of {@link runE2eBenchmarks}. */
export interface E2eBenchResult {
  tool: 'iperf3' | 'node';
  family: 4 | 6;
  seconds: number;
  runs: E2eBenchRun[];
  /** vectun offload / veth, median of per-repeat ratios (target ≥ 0.6). */
  offloadVsVeth: number;
  /** vectun offload / vectun no offload, median of per-repeat ratios (target ≥ 4). */
  offloadVsNoOffload: number;
  /** With `profile`: where the forwarder spent its CPU during the offload runs. */
  profile?: E2eProfile;
  /**
   * The multi-stream comparison (`multi-*` setups), median of per-repeat
   * ratios: N queues with workers / 1 queue (issue #10 target ≥ 1.5 for 4
   * streams on 2 cores), and N queues with workers / N queues on the main thread.
   */
  multiStream?: {
    streams: number;
    queues: number;
    workersVsOneQueue: number;
    workersVsMainThread: number;
    /** Queue 0 in a worker too (this thread idle) / queue 0 on this thread. */
    allWorkersVsWorkers: number;
  };
}

const IPERF_PORT = 5201;

/** Whether `iperf3` runs here (also used by the WireGuard benchmark). */
export function hasIperf3(): boolean {
  try {
    execFileSync('iperf3', ['--version'], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

/** One iperf3 run from `from` to `address` in `to`; receiver-side Gbit/s. */
export async function iperf3(from: Netns, to: Netns, address: string, seconds: number, streams = 1): Promise<number> {
  // --forceflush: without it the "listening" line sits in a pipe buffer.
  const server = to.spawn('iperf3', ['-s', '-1', '--forceflush', '-B', address, '-p', String(IPERF_PORT)]);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new VectunError('ERR_LAB_TIMEOUT', 'iperf3 server did not start within 5 s')), 5000);
      server.stdout?.on('data', (d: Buffer) => {
        if (d.toString().includes('listening')) {
          clearTimeout(timer);
          resolve();
        }
      });
      server.once('exit', (code) => {
        clearTimeout(timer);
        reject(new VectunError('ERR_LAB_COMMAND', `iperf3 server exited (${code}) before listening`));
      });
    });
    const out = await from.exec('iperf3', ['-c', address, '-p', String(IPERF_PORT), '-t', String(seconds), '-P', String(streams), '-J'], (seconds + 20) * 1000);
    const report = JSON.parse(out) as { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
    const bps = report.end?.sum_received?.bits_per_second;
    if (bps === undefined) throw new VectunError('ERR_LAB_TRAFFIC', `iperf3 gave no result: ${report.error ?? 'unknown'}`);
    return bps / 1e9;
  } finally {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
  }
}

/** One Node-worker run per stream, concurrently (sha256 verified as a side effect); Gbit/s summed. */
async function nodeTransfer(topo: Topology, address: string, seconds: number, streams = 1): Promise<number> {
  const all = await Promise.all(Array.from({ length: streams }, () => nodeStream(topo, address, seconds)));
  return all.reduce((a, b) => a + b, 0);
}

async function nodeStream(topo: Topology, address: string, seconds: number): Promise<number> {
  const r = await tcpTransfer({
    from: topo.a.ns,
    to: topo.b.ns,
    address,
    // Bounded by time; the byte cap only guards against a runaway (100 Gbit/s).
    bytes: Math.ceil(seconds * 12.5e9),
    seconds,
    timeoutMs: (seconds + 30) * 1000,
  });
  if (!r.intact) throw new VectunError('ERR_LAB_TRAFFIC', 'benchmark transfer arrived corrupted');
  return r.gbitPerSecond;
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

/** Sampling CPU profiler over this process; `stop()` returns the merged profile so far. */
class Profiler {
  readonly #session = new Session();
  #profiles: CpuProfile[] = [];
  constructor() {
    this.#session.connect();
  }
  #post(method: string, params?: object): Promise<unknown> {
    return new Promise((resolve, reject) =>
      this.#session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))),
    );
  }
  async start(): Promise<void> {
    await this.#post('Profiler.enable');
    await this.#post('Profiler.setSamplingInterval', { interval: 200 });
    await this.#post('Profiler.start');
  }
  async stop(): Promise<void> {
    const r = (await this.#post('Profiler.stop')) as { profile: CpuProfile };
    this.#profiles.push(r.profile);
  }
  summary(): E2eProfile {
    const self = new Map<string, number>();
    for (const p of this.#profiles) {
      const byId = new Map(p.nodes.map((n) => [n.id, n]));
      p.samples.forEach((id, i) => {
        const f = byId.get(id)!.callFrame;
        const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/dist\//, '')}:${f.lineNumber + 1}`;
        self.set(key, (self.get(key) ?? 0) + (p.timeDeltas[i] ?? 0));
      });
    }
    this.#session.disconnect();
    let busy = 0;
    const stages: Record<string, number> = {};
    for (const [key, us] of self) {
      const stage = stageOf(key);
      if (stage === 'idle') continue;
      busy += us;
      stages[stage] = (stages[stage] ?? 0) + us;
    }
    for (const k of Object.keys(stages)) stages[k] = stages[k]! / busy;
    const top = [...self]
      .filter(([key]) => stageOf(key) !== 'idle')
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([fn, us]) => ({ fn, share: us / busy }));
    return { busyMs: busy / 1000, stages, top };
  }
}

/** The data-path stage a profile frame belongs to (by function and file). */
function stageOf(key: string): string {
  if (key.startsWith('(idle)') || key.startsWith('(program)')) return 'idle';
  if (key.startsWith('(garbage collector)')) return 'gc';
  if (key.includes('wasm')) return 'wasm';
  // Addon functions have no script URL; the inspector may name them all after one
  // export, so they are counted together (read and writev syscalls, mostly).
  if (key.endsWith(' :0') && !key.startsWith('(')) return 'syscalls';
  if (key.startsWith('#readBatch') || key.startsWith('#writeLists')) return 'syscalls';
  if (key.includes('core/gso')) return 'segment';
  if (key.includes('core/gro') || key.includes('core/flows') || key.includes('core/checksum')) return 'coalesce';
  if (key.includes('device/bridge') || key.includes('device/tun')) return 'bridge';
  return 'other';
}

/** What a measured setup's forwarder reports (cumulative). */
interface ForwarderCounters {
  bytes: number;
  packetsPerRead: number;
  packetsPerWrite: number;
  drops: number;
}

// DEV-1 flags and DEV-3 offloads (TUN_F_CSUM|TSO4|TSO6|USO4|USO6), set directly on the fd.
const IFF_TUN_NO_PI_VNET_HDR = 0x0001 | 0x1000 | 0x4000;
const IFF_MULTI_QUEUE = 0x0100;
const TUN_F_OFFLOADS = 0x01 | 0x02 | 0x04 | 0x20 | 0x40;
const FRAME_SLOT = 10 + 65535; // DEV-9
const FRAME_BATCH = 128;

/**
 * Ceiling probe: two TUNs whose raw virtio-net frames (super-packets with
 * their headers) are moved fd to fd by the addon alone, both ways. Frames a
 * full queue refuses (EAGAIN) are dropped and counted; TCP recovers.
 */
async function createPassthrough(): Promise<{ topo: Topology; counters: () => ForwarderCounters }> {
  const b = loadBinding();
  const fds: number[] = [];
  const polls: PollHandle[] = [];
  const c = { bytes: 0, frames: 0, reads: 0, drops: 0 };
  const release = async (): Promise<void> => {
    for (const p of polls.splice(0)) b.pollClose(p);
    for (const fd of fds.splice(0)) b.close(fd);
  };
  const open = (name: string): number => {
    const fd = b.tunOpen(name, IFF_TUN_NO_PI_VNET_HDR);
    if (fd < 0) throw new VectunError('ERR_TUN_SYSCALL', `passthrough: TUNSETIFF ${name} failed (${fd})`);
    fds.push(fd);
    const r = b.tunIoctl(fd, 'TUNSETOFFLOAD', TUN_F_OFFLOADS);
    if (r < 0) throw new VectunError('ERR_TUN_OFFLOAD_UNAVAILABLE', `passthrough: TUNSETOFFLOAD failed (${r})`);
    return fd;
  };
  const nameA = labDeviceName('a');
  const nameB = labDeviceName('b');
  try {
    const fdA = open(nameA);
    const fdB = open(nameB);
    forwardFrames(b, fdA, fdB, c, polls);
    forwardFrames(b, fdB, fdA, c, polls);
  } catch (err) {
    await release();
    throw err;
  }
  const topo = await createTopologyAround(nameA, nameB, release);
  return {
    topo,
    counters: () => ({ bytes: c.bytes, packetsPerRead: c.reads ? c.frames / c.reads : 0, packetsPerWrite: 1, drops: c.drops }),
  };
}

function forwardFrames(b: NativeBinding, src: number, dst: number, c: { bytes: number; frames: number; reads: number; drops: number }, polls: PollHandle[]): void {
  const arena = new Uint8Array(FRAME_SLOT * FRAME_BATCH);
  const lengths = new Int32Array(FRAME_BATCH);
  const results = new Int32Array(FRAME_BATCH);
  const drain = (): void => {
    // Bounded: at most 64 batches per readiness event, then back to the event loop.
    for (let round = 0; round < 64; round++) {
      const n = b.readBatch(src, arena, FRAME_SLOT, FRAME_BATCH, lengths);
      if (n <= 0) return; // -EAGAIN: wait for the next event; other errors end with the fd
      const lists: Uint8Array[][] = new Array(n);
      for (let i = 0; i < n; i++) {
        lists[i] = [arena.subarray(i * FRAME_SLOT, i * FRAME_SLOT + lengths[i]!)];
        c.bytes += lengths[i]!;
      }
      c.frames += n;
      c.reads++;
      for (let at = 0; at < n; ) {
        const stop = b.writeLists(dst, lists, at, results);
        if (stop >= n) break;
        if (results[stop] !== -EAGAIN) return; // EBADFD: the device is gone
        c.drops++;
        at = stop + 1;
      }
    }
  };
  const poll = b.pollCreate(src, (status) => {
    if (status >= 0) drain();
  });
  if (typeof poll === 'number') throw new VectunError('ERR_TUN_SYSCALL', `passthrough: poll failed (${poll})`);
  polls.push(poll);
  b.pollSet(poll, POLL_READABLE);
}

/**
 * The comparison row for queue 0: both devices opened as `queues` raw
 * IFF_MULTI_QUEUE descriptors, every pair (queue 0 included) in its own
 * worker, this thread idle. The workers adopt their descriptors before the
 * devices move into the namespaces.
 */
async function allWorkersSetup(multi: { streams: number; queues: number }): Promise<{
  setup: E2eSetup;
  topo: Topology;
  counters: () => ForwarderCounters;
  streams: number;
}> {
  const b = loadBinding();
  const names = [labDeviceName('a'), labDeviceName('b')] as const;
  const fds: [number[], number[]] = [[], []];
  let fwd: QueueBridgeHandle | undefined;
  try {
    for (const side of [0, 1] as const) {
      for (let q = 0; q < multi.queues; q++) {
        const fd = b.tunOpen(names[side], IFF_TUN_NO_PI_VNET_HDR | IFF_MULTI_QUEUE);
        if (fd < 0) throw new VectunError('ERR_TUN_SYSCALL', `TUNSETIFF ${names[side]} queue ${q} failed (${fd})`);
        fds[side].push(fd);
      }
    }
    fwd = await bridgeQueueFdsInWorkers(fds[0], fds[1]);
    await fwd.ready;
  } catch (err) {
    if (fwd !== undefined) await fwd.stop();
    else for (const fd of [...fds[0], ...fds[1]]) b.close(fd);
    throw err;
  }
  const started = fwd;
  // The workers hold every descriptor: stopping them closes the devices.
  const topo = await createTopologyAround(names[0], names[1], () => started.stop());
  const counters = (): ForwarderCounters => {
    const { aToB, bToA } = started.stats;
    return { bytes: aToB.bytes + bToA.bytes, packetsPerRead: aToB.packetsPerRead, packetsPerWrite: aToB.packetsPerWrite, drops: aToB.drops + bToA.drops };
  };
  return { setup: 'multi-nq-allworkers', topo, counters, streams: multi.streams };
}

/** The median (the mean of the middle two for an even count). */
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * Measures the setups and returns Gbit/s and ratios.
 * @throws VectunError when the lab prerequisites are missing (root, `ip`,
 *   `/dev/net/tun`), or `tool: 'iperf3'` is asked for but not installed.
 */
export async function runE2eBenchmarks(options: E2eBenchOptions = {}): Promise<E2eBenchResult> {
  checkLabPrerequisites();
  const seconds = options.seconds ?? 3;
  const repeats = options.repeats ?? 3;
  const family = options.family ?? 4;
  const want = options.tool ?? 'auto';
  const iperf = want === 'iperf3' || (want === 'auto' && hasIperf3());
  if (want === 'iperf3' && !hasIperf3()) {
    throw new VectunError('ERR_LAB_PREREQUISITE', 'iperf3 is not installed (apt-get install iperf3), or use tool "node"');
  }
  const tool = iperf ? 'iperf3' : 'node';

  const topologies: Topology[] = [];
  const stops: Array<() => Promise<void>> = [];
  try {
    const setups: Array<{ setup: E2eSetup; topo: Topology; counters?: () => ForwarderCounters; streams?: number }> = [];
    const single = options.singleStream !== false;
    if (single) {
      const veth = await createVethTopology();
      topologies.push(veth);
      setups.push({ setup: 'veth', topo: veth });
    }
    for (const offload of single ? [true, false] : []) {
      const topo = await createTunTopology({ offload });
      topologies.push(topo);
      const fwd = bridge(topo.tunA, topo.tunB);
      stops.push(() => fwd.stop());
      const counters = (): ForwarderCounters => {
        const { aToB, bToA } = fwd.stats;
        return {
          bytes: aToB.bytes + bToA.bytes,
          packetsPerRead: aToB.packetsPerRead,
          packetsPerWrite: aToB.packetsPerWrite,
          drops: aToB.drops + bToA.drops,
        };
      };
      setups.push({ setup: offload ? 'vectun-offload' : 'vectun-no-offload', topo, counters });
    }
    const multi = options.multiStream === false ? undefined : (options.multiStream ?? { streams: 4, queues: Math.max(2, os.cpus().length) });
    if (multi !== undefined) {
      for (const setup of ['multi-1q', 'multi-nq-main', 'multi-nq-workers'] as const) {
        const queues = setup === 'multi-1q' ? 1 : multi.queues;
        // The workers adopt their queues before the devices move into the namespaces
        // (Tun.fromFd resolves the device by name in this namespace).
        let fwd: QueueBridgeHandle | undefined;
        const topo = await createTunTopology({
          offload: true,
          queues,
          beforeMove: async (a, b) => {
            fwd = await bridgeQueues(a, b, { singleThread: setup === 'multi-nq-main' });
            await fwd.ready;
          },
        });
        topologies.push(topo);
        if (fwd === undefined) throw new VectunError('ERR_LAB_COMMAND', 'multi-queue bridge did not start');
        const started = fwd;
        stops.push(() => started.stop());
        const counters = (): ForwarderCounters => {
          const { aToB, bToA } = started.stats;
          return {
            bytes: aToB.bytes + bToA.bytes,
            packetsPerRead: aToB.packetsPerRead,
            packetsPerWrite: aToB.packetsPerWrite,
            drops: aToB.drops + bToA.drops,
          };
        };
        setups.push({ setup, topo, counters, streams: multi.streams });
      }
      const allWorkers = await allWorkersSetup(multi);
      // Its remove() stops the workers, which hold every descriptor (a worker left running kept this process alive).
      topologies.push(allWorkers.topo);
      setups.push(allWorkers);
    }
    if (options.passthrough === true) {
      const p = await createPassthrough();
      topologies.push(p.topo);
      setups.push({ setup: 'addon-passthrough', topo: p.topo, counters: p.counters });
    }

    const profiler = options.profile === true ? new Profiler() : undefined;
    const samples = new Map<E2eSetup, number[]>(setups.map((s) => [s.setup, []]));
    const cpu = new Map<E2eSetup, { cpuMs: number; wallMs: number; machineBusy: number; machineTotal: number }>(
      setups.map((s) => [s.setup, { cpuMs: 0, wallMs: 0, machineBusy: 0, machineTotal: 0 }]),
    );
    for (let r = 0; r < repeats; r++) {
      for (const s of setups) {
        options.signal?.throwIfAborted();
        const address = family === 4 ? s.topo.b.v4 : s.topo.b.v6;
        const profiling = profiler !== undefined && s.setup === 'vectun-offload';
        if (profiling) await profiler.start();
        const m0 = machineCpuTicks(); // before c0: reading it is not the forwarder's work
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const streams = s.streams ?? 1;
        const gbps = iperf ? await iperf3(s.topo.a.ns, s.topo.b.ns, address, seconds, streams) : await nodeTransfer(s.topo, address, seconds, streams);
        const c = process.cpuUsage(c0);
        const m = machineCpuTicks();
        if (profiling) await profiler.stop();
        const acc = cpu.get(s.setup)!;
        acc.cpuMs += (c.user + c.system) / 1000;
        acc.machineBusy += m.busy - m0.busy;
        acc.machineTotal += m.total - m0.total;
        acc.wallMs += performance.now() - t0;
        samples.get(s.setup)!.push(gbps);
        options.onProgress?.(`${s.setup} run ${r + 1}/${repeats}: ${gbps.toFixed(2)} Gbit/s`);
      }
    }

    const runs: E2eBenchRun[] = setups.map((s) => {
      const xs = samples.get(s.setup)!;
      const acc = cpu.get(s.setup)!;
      const machineBusy = acc.machineTotal > 0 ? acc.machineBusy / acc.machineTotal : 0;
      const run: E2eBenchRun = { setup: s.setup, gbitPerSecond: median(xs), samples: xs, machineBusy };
      if (s.counters) {
        const { bytes, packetsPerRead, packetsPerWrite, drops } = s.counters();
        run.forwarder = {
          packetsPerRead,
          packetsPerWrite,
          drops,
          cpuMsPerGiB: bytes > 0 ? acc.cpuMs / (bytes / 2 ** 30) : 0,
          cpuShare: acc.wallMs > 0 ? acc.cpuMs / acc.wallMs : 0,
        };
      }
      return run;
    });
    // Ratios pair the measurements of one repeat (taken back to back, so under the same
    // machine load) and take the median over repeats: steadier than a ratio of medians.
    const paired = (x: E2eSetup, y: E2eSetup): number => {
      const xs = samples.get(x)!;
      const ys = samples.get(y)!;
      return median(xs.map((v, i) => v / ys[i]!));
    };
    const result: E2eBenchResult = {
      tool,
      family,
      seconds,
      runs,
      offloadVsVeth: single ? paired('vectun-offload', 'veth') : NaN,
      offloadVsNoOffload: single ? paired('vectun-offload', 'vectun-no-offload') : NaN,
    };
    if (profiler) result.profile = profiler.summary();
    if (multi !== undefined) {
      result.multiStream = {
        ...multi,
        workersVsOneQueue: paired('multi-nq-workers', 'multi-1q'),
        workersVsMainThread: paired('multi-nq-workers', 'multi-nq-main'),
        allWorkersVsWorkers: paired('multi-nq-allworkers', 'multi-nq-workers'),
      };
    }
    return result;
  } finally {
    // Stop before removing (so closes are not errors), wait after: closing settles pending I/O.
    const stopping = stops.map((stop) => stop());
    for (const t of topologies.reverse()) await t.remove().catch(() => undefined);
    await Promise.all(stopping);
  }
}

/**
 * Busy and total time of all cores since boot, in clock ticks, from the
 * aggregate `cpu` line of /proc/stat (proc(5)). Busy counts softirq and
 * steal too: the kernel's TCP and veth work runs largely in softirq, which
 * libuv's `os.cpus()` leaves out. Idle is idle + iowait.
 */
function machineCpuTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** Human-readable table of a result. */
export function formatE2eResult(r: E2eBenchResult): string {
  const single = !Number.isNaN(r.offloadVsVeth);
  const what = single && r.multiStream ? 'single and multi-stream TCP' : single ? 'single TCP stream' : `${r.multiStream?.streams ?? 4} TCP streams`;
  const lines = [`${what}, IPv${r.family}, ${r.seconds} s per run, traffic by ${r.tool}`];
  for (const run of r.runs) {
    let line = `  ${run.setup.padEnd(18)} ${run.gbitPerSecond.toFixed(2).padStart(7)} Gbit/s  [${run.samples.map((x) => x.toFixed(2)).join(', ')}]`;
    const f = run.forwarder;
    if (f) {
      line += `  seg/read ${f.packetsPerRead.toFixed(1)}, pkts/writev ${f.packetsPerWrite.toFixed(1)}, drops ${f.drops}, forwarder ${f.cpuMsPerGiB.toFixed(0)} ms CPU/GiB (${(f.cpuShare * 100).toFixed(0)}% of a core)`;
    }
    line += `${f ? ',' : ' '} machine ${(run.machineBusy * 100).toFixed(0)}% busy`;
    lines.push(line);
  }
  if (single) {
    lines.push(`  offload / veth:       ${r.offloadVsVeth.toFixed(2)} (target >= 0.60)`);
    lines.push(`  offload / no offload: ${r.offloadVsNoOffload.toFixed(2)} (target >= 4.00)`);
  }
  if (r.multiStream) {
    const m = r.multiStream;
    lines.push(`  ${m.streams} streams, ${m.queues} queues with workers / 1 queue: ${m.workersVsOneQueue.toFixed(2)} (target >= 1.50); / ${m.queues} queues on the main thread: ${m.workersVsMainThread.toFixed(2)}`);
    lines.push(`  queue 0 in a worker too / queue 0 on the main thread: ${m.allWorkersVsWorkers.toFixed(2)}`);
  }
  if (r.profile) {
    const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
    const stages = Object.entries(r.profile.stages).sort((a, b) => b[1] - a[1]);
    lines.push(`  forwarder CPU during the offload runs (${r.profile.busyMs.toFixed(0)} ms busy): ${stages.map(([k, v]) => `${k} ${pct(v)}`).join(', ')}`);
    for (const t of r.profile.top) lines.push(`    ${pct(t.share).padStart(6)}  ${t.fn}`);
  }
  return lines.join('\n');
}

function parseArgs(argv: string[]): E2eBenchOptions & { json: boolean } {
  const o: E2eBenchOptions & { json: boolean } = { json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--json') o.json = true;
    else if (a === '--profile') o.profile = true;
    else if (a === '--passthrough') o.passthrough = true;
    else if (a === '--no-multi') o.multiStream = false;
    else if (a === '--no-single') o.singleStream = false;
    else if (a === '--streams' && v !== undefined) (o.multiStream = { streams: Number(v), queues: o.multiStream ? o.multiStream.queues : Math.max(2, os.cpus().length) }), i++;
    else if (a === '--queues' && v !== undefined) (o.multiStream = { streams: o.multiStream ? o.multiStream.streams : 4, queues: Number(v) }), i++;
    else if (a === '--seconds' && v !== undefined) (o.seconds = Number(v)), i++;
    else if (a === '--repeats' && v !== undefined) (o.repeats = Number(v)), i++;
    else if (a === '--family' && (v === '4' || v === '6')) (o.family = Number(v) as 4 | 6), i++;
    else if (a === '--tool' && (v === 'auto' || v === 'iperf3' || v === 'node')) (o.tool = v), i++;
    else throw new VectunError('ERR_INVALID_ARG', `unknown argument ${a}`);
  }
  return o;
}

if (require.main === module) {
  const o = parseArgs(process.argv.slice(2));
  if (!o.json) o.onProgress = (line) => process.stderr.write(line + '\n');
  runE2eBenchmarks(o).then(
    (r) => process.stdout.write((o.json ? JSON.stringify(r, null, 2) : formatE2eResult(r)) + '\n'),
    (err: unknown) => {
      process.stderr.write(`e2e bench: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
