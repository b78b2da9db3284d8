/**
 * UDP benchmark: 1200-byte datagrams from namespace A to B over a veth pair,
 * vectun `UdpSocket` (sendmmsg + UDP_SEGMENT, recvmmsg + UDP_GRO) against
 * Node's `dgram` (one sendmsg/recvmsg per datagram), both measured in the
 * same run, interleaved per repeat so drift in machine load hits them alike.
 * Each side is a worker process in its namespace (src/bench/udp-worker.ts).
 *
 * Figures are the receiver's: datagrams per second and Gbit/s of UDP payload
 * delivered (a sender faster than its receiver loses the excess, which
 * counts against it), and CPU per GiB delivered, sender + receiver process
 * CPU (user + system). The ratio vectun / dgram of delivered datagrams per
 * second is the figure to compare across machines; the goal is 5x.
 *
 * Used by `bench/run.ts` (`npm run bench`) and `vectun bench`; runnable alone:
 * `node dist/src/bench/udp.js [--seconds 2] [--repeats 3] [--family 4|6] [--json]`.
 * @module
 */
import { join } from 'node:path';
import { checkLabPrerequisites, type Netns } from '../lab/netns.js';
import { createVethTopology } from '../lab/topology.js';
import { startWorkerProcess, type WorkerProcess } from '../lab/worker-process.js';
import type { UdpWorkerConfig, UdpWorkerResult } from './udp-worker.js';

const WORKER = join(__dirname, 'udp-worker.js');
const GIB = 1024 ** 3;

/** Options of {@link runUdpBenchmark}. */
export interface UdpBenchOptions {
  /** Seconds of sending per measurement; default 2. */
  seconds?: number;
  /** Interleaved measurements per implementation (median reported); default 3. */
  repeats?: number;
  /** IP version; default 4. */
  family?: 4 | 6;
  /** Payload bytes per datagram; default 1200. */
  size?: number;
  /** Progress lines. */
  onProgress?: (line: string) => void;
}

/** One implementation's figures (medians over the repeats). */
export interface UdpBenchRow {
  impl: 'vectun' | 'dgram';
  /** Datagrams per second delivered to the receiver. */
  datagramsPerSecond: number;
  /** UDP payload Gbit/s delivered. */
  gbitPerSecond: number;
  /** Sender + receiver CPU milliseconds per GiB delivered. */
  cpuMsPerGiB: number;
  /** Datagrams per second the sender handed to the kernel. */
  sentPerSecond: number;
  /** Share of sent datagrams that were not delivered. */
  lossRatio: number;
  /** Every repeat's delivered datagrams per second. */
  runs: number[];
}

/** Result of {@link runUdpBenchmark}. */
export interface UdpBenchResult {
  family: 4 | 6;
  size: number;
  seconds: number;
  repeats: number;
  vectun: UdpBenchRow;
  dgram: UdpBenchRow;
  /** Median over repeats of vectun / dgram delivered datagrams per second (same repeat). */
  ratio: number;
}

function start(ns: Netns, config: UdpWorkerConfig): WorkerProcess<UdpWorkerResult> {
  return startWorkerProcess<UdpWorkerResult>(ns, WORKER, config, `udp bench ${config.impl} ${config.role}`);
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Sample {
  delivered: number;
  gbit: number;
  cpuPerGiB: number;
  sent: number;
  loss: number;
}

/**
 * Runs the benchmark in fresh namespaces (removed afterwards, also on failure).
 * @throws VectunError `ERR_LAB_PREREQUISITE` / `ERR_TUN_PERMISSION` without root, `ERR_LAB_TRAFFIC` when a worker fails.
 */
export async function runUdpBenchmark(options: UdpBenchOptions = {}): Promise<UdpBenchResult> {
  checkLabPrerequisites();
  const seconds = options.seconds ?? 2;
  const repeats = options.repeats ?? 3;
  const family = options.family ?? 4;
  const size = options.size ?? 1200;
  const topo = await createVethTopology();
  try {
    const samples: Record<'vectun' | 'dgram', Sample[]> = { vectun: [], dgram: [] };
    const ratios: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const round: Partial<Record<'vectun' | 'dgram', Sample>> = {};
      for (const impl of r % 2 === 0 ? (['vectun', 'dgram'] as const) : (['dgram', 'vectun'] as const)) {
        const host = family === 4 ? topo.b.v4 : topo.b.v6;
        const base = { impl, family, size, seconds, host, port: 0 };
        const rx = start(topo.b.ns, { ...base, role: 'recv' });
        const port = await rx.ready;
        const tx = start(topo.a.ns, { ...base, role: 'send', port });
        const [sent, got] = await Promise.all([tx.result, rx.result]);
        const secondsSpan = got.elapsedMs / 1000;
        const sample: Sample = {
          delivered: secondsSpan > 0 ? got.datagrams / secondsSpan : 0,
          gbit: secondsSpan > 0 ? (got.bytes * 8) / secondsSpan / 1e9 : 0,
          // Sender CPU scaled to the receiver's span (both run the whole time).
          cpuPerGiB: got.bytes > 0 ? (sent.cpuMs * Math.min(1, got.elapsedMs / sent.elapsedMs) + got.cpuMs) / (got.bytes / GIB) : 0,
          sent: sent.elapsedMs > 0 ? sent.datagrams / (sent.elapsedMs / 1000) : 0,
          loss: sent.datagrams > 0 ? Math.max(0, 1 - got.datagrams / sent.datagrams) : 0,
        };
        samples[impl].push(sample);
        round[impl] = sample;
        options.onProgress?.(
          `udp ${impl} IPv${family} repeat ${r + 1}/${repeats}: ${(sample.delivered / 1e6).toFixed(3)} M datagrams/s delivered, ` +
            `${sample.gbit.toFixed(2)} Gbit/s, ${sample.cpuPerGiB.toFixed(0)} CPU ms/GiB, loss ${(sample.loss * 100).toFixed(1)}%`,
        );
      }
      if (round.dgram!.delivered > 0) ratios.push(round.vectun!.delivered / round.dgram!.delivered);
    }
    const row = (impl: 'vectun' | 'dgram'): UdpBenchRow => {
      const s = samples[impl];
      return {
        impl,
        datagramsPerSecond: median(s.map((x) => x.delivered)),
        gbitPerSecond: median(s.map((x) => x.gbit)),
        cpuMsPerGiB: median(s.map((x) => x.cpuPerGiB)),
        sentPerSecond: median(s.map((x) => x.sent)),
        lossRatio: median(s.map((x) => x.loss)),
        runs: s.map((x) => x.delivered),
      };
    };
    return { family, size, seconds, repeats, vectun: row('vectun'), dgram: row('dgram'), ratio: ratios.length > 0 ? median(ratios) : 0 };
  } finally {
    await topo.remove();
  }
}

/** The result as a small table. */
export function formatUdpResult(r: UdpBenchResult): string {
  const rows = [['impl', 'datagrams/s', 'Gbit/s', 'CPU ms/GiB', 'sent/s', 'loss']];
  for (const x of [r.vectun, r.dgram]) {
    rows.push([
      x.impl, `${(x.datagramsPerSecond / 1e6).toFixed(3)} M`, x.gbitPerSecond.toFixed(2), x.cpuMsPerGiB.toFixed(0),
      `${(x.sentPerSecond / 1e6).toFixed(3)} M`, `${(x.lossRatio * 100).toFixed(1)}%`,
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const table = rows.map((row) => row.map((c, i) => c.padStart(widths[i]!)).join('  ')).join('\n');
  return (
    `UDP ${r.size}-byte datagrams A -> B over veth, IPv${r.family}, ${r.seconds} s per measurement, median of ${r.repeats} interleaved\n` +
    `${table}\n` +
    `vectun / dgram delivered datagrams/s (same-repeat median): ${r.ratio.toFixed(2)}x (goal 5x: ${r.ratio >= 5 ? 'met' : 'MISS'})\n` +
    'datagrams/s and Gbit/s: delivered to the receiver; CPU: sender + receiver process (user + system) per GiB delivered.\n'
  );
}

if (require.main === module) {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const family = Number(arg('--family') ?? 4);
  runUdpBenchmark({
    seconds: Number(arg('--seconds') ?? 2),
    repeats: Number(arg('--repeats') ?? 3),
    family: family === 6 ? 6 : 4,
    onProgress: (l) => process.stderr.write(`  ${l}\n`),
  }).then(
    (r) => process.stdout.write(process.argv.includes('--json') ? JSON.stringify(r, null, 2) + '\n' : formatUdpResult(r)),
    (err: unknown) => {
      process.stderr.write(`udp bench: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
