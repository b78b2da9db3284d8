/**
 * The summaries the commands print: the demo's result table, the bridge's
 * final statistics and the benchmark table. Pure functions over plain data,
 * unit-tested without devices.
 * @module
 */
import type { BridgeDirectionStats } from '../device/bridge.js';
import { formatBitRate, formatBytes, formatFacts, formatRatio, formatTable } from './format.js';

/** What `tun.offload` reports (architecture.md, device contract). */
export interface OffloadFlags {
  vnetHdr?: boolean;
  csum?: boolean;
  tso4?: boolean;
  tso6?: boolean;
  uso4?: boolean;
  uso6?: boolean;
}

/**
 * Short text for what the kernel accepted, e.g. `tso4 tso6 uso4 uso6`.
 * `none` means plain packets without virtio-net header (D-8 fallback or
 * `--no-offload`).
 */
export function describeOffload(o: OffloadFlags | undefined): string {
  if (o === undefined || o.vnetHdr !== true) return 'none';
  const parts = (['tso4', 'tso6', 'uso4', 'uso6'] as const).filter((k) => o[k] === true);
  if (parts.length === 0) return o.csum === true ? 'csum only' : 'vnet hdr only';
  return parts.join(' ');
}

/** Counters of one bridge direction, as `BridgeDirectionStats` has them. */
export type DirectionCounters = Pick<BridgeDirectionStats, 'reads' | 'packets' | 'bytes' | 'written' | 'writes' | 'drops'>;

/** A plain copy of one direction's counters (the live object keeps changing). */
export function snapshotCounters(s: DirectionCounters): DirectionCounters {
  return { reads: s.reads, packets: s.packets, bytes: s.bytes, written: s.written, writes: s.writes, drops: s.drops };
}

/** One transfer of the demo. */
export interface DemoRunResult {
  /** `offload` or `no offload`. */
  label: string;
  /** {@link describeOffload} of both devices (the same when both agree). */
  negotiated: string;
  family: 'IPv4' | 'IPv6';
  /** Bytes the receiver got, and its first-byte-to-end time. */
  bytes: number;
  seconds: number;
  /** Same byte count and sha256 on both ends. */
  intact: boolean;
  sha256: string;
  /** Data direction (sender → receiver) and the reverse (ACKs). */
  data: DirectionCounters;
  acks: DirectionCounters;
  /** Frames the sender side's TUN read, and the packets (segments) they split into. */
  framesRead: number;
  segmentsRead: number;
}

/**
 * The demo's closing table, data direction: segs/frame is the read-side
 * split ratio (GSO, packets per frame the kernel handed over), pkts/write the
 * write-side coalescing ratio (GRO); drops count both directions.
 */
export function formatDemoSummary(runs: readonly DemoRunResult[]): string {
  const rows = runs.map((r) => [
    r.label,
    r.negotiated,
    formatBytes(r.bytes),
    r.seconds.toFixed(2),
    gbit(r.bytes, r.seconds),
    formatRatio(r.segmentsRead, r.framesRead),
    formatRatio(r.data.written, r.data.writes),
    String(r.data.drops + r.acks.drops),
    r.intact ? 'ok' : 'MISMATCH',
  ]);
  let text = formatTable(
    ['run', 'offload negotiated', 'data', 'seconds', 'Gbit/s', 'segs/frame', 'pkts/write', 'drops', 'sha256'],
    rows,
    ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
  );
  const on = runs.find((r) => r.label === 'offload');
  const off = runs.find((r) => r.label === 'no offload');
  if (on !== undefined && off !== undefined && on.seconds > 0 && off.seconds > 0 && off.bytes > 0) {
    const ratio = on.bytes / on.seconds / (off.bytes / off.seconds);
    text += `\noffload is ${ratio.toFixed(2)}x the throughput without offload (same machine, same run)\n`;
  }
  return text;
}

function gbit(bytes: number, seconds: number): string {
  return seconds > 0 ? ((bytes * 8) / seconds / 1e9).toFixed(2) : 'n/a';
}

/** The bridge's final statistics as text: one row per direction. */
export function formatBridgeStats(
  names: { a: string; b: string },
  stats: { aToB: DirectionCounters; bToA: DirectionCounters },
  elapsedSeconds: number,
): string {
  const row = (from: string, to: string, s: DirectionCounters): string[] => [
    `${from} -> ${to}`,
    String(s.packets),
    formatBytes(s.bytes),
    String(s.reads),
    formatRatio(s.packets, s.reads),
    String(s.writes),
    formatRatio(s.written, s.writes),
    String(s.drops),
  ];
  return (
    `forwarded for ${elapsedSeconds.toFixed(1)} s, ${formatBitRate(elapsedSeconds > 0 ? ((stats.aToB.bytes + stats.bToA.bytes) * 8) / elapsedSeconds : 0)} average\n` +
    formatTable(
      ['direction', 'packets', 'bytes', 'reads', 'pkts/read', 'writes', 'pkts/write', 'drops'],
      [row(names.a, names.b, stats.aToB), row(names.b, names.a, stats.bToA)],
    )
  );
}

/** The bridge's final statistics as JSON (stable field names for scripts). */
export function bridgeStatsJson(
  names: { a: string; b: string },
  offload: { a: string; b: string },
  stats: { aToB: DirectionCounters; bToA: DirectionCounters },
  elapsedSeconds: number,
  error?: string,
  perQueue?: readonly { queue: number; thread: string; aToB: DirectionCounters; bToA: DirectionCounters }[],
): string {
  const dir = (s: DirectionCounters) => ({
    ...snapshotCounters(s),
    packetsPerRead: s.reads > 0 ? s.packets / s.reads : 0,
    packetsPerWrite: s.writes > 0 ? s.written / s.writes : 0,
  });
  return (
    JSON.stringify(
      {
        devices: [
          { name: names.a, offload: offload.a },
          { name: names.b, offload: offload.b },
        ],
        seconds: Number(elapsedSeconds.toFixed(3)),
        aToB: dir(stats.aToB),
        bToA: dir(stats.bToA),
        ...(perQueue === undefined ? {} : { queues: perQueue.map((q) => ({ queue: q.queue, thread: q.thread, aToB: dir(q.aToB), bToA: dir(q.bToA) })) }),
        ...(error === undefined ? {} : { error }),
      },
      null,
      2,
    ) + '\n'
  );
}

/** Machine facts for benchmark headers. */
export interface MachineFacts {
  cpus: number;
  cpuModel: string;
  kernel: string;
  node: string;
}

/** One end-to-end setup as `vectun bench` shows it (the shape of `E2eBenchRun`). */
export interface ThroughputRow {
  setup: string;
  /** Median Gbit/s. */
  gbitPerSecond: number;
  samples: readonly number[];
  forwarder?: { packetsPerRead: number; packetsPerWrite: number; drops: number; cpuShare: number };
  /** Share of all cores busy during the measurements, 0..1 (absent: not measured). */
  machineBusy?: number;
}

/** Readable names of the bench setups. */
const SETUP_NAMES: Readonly<Record<string, string>> = {
  veth: 'veth pair (kernel limit)',
  'vectun-offload': 'vectun bridge, offload',
  'vectun-no-offload': 'vectun bridge, no offload',
  'multi-1q': 'vectun bridge, 1 queue',
  'multi-nq-main': 'N queues, main thread only',
  'multi-nq-workers': 'N queues, worker per further pair',
  'multi-nq-allworkers': 'N queues, queue 0 in a worker too',
};

/**
 * The `vectun bench` end-to-end table. Each row is also shown as a ratio of
 * the first (the veth baseline measured in the same run, or the one-queue
 * row of the multi-stream table, `baseLabel`), since absolute
 * numbers on a shared machine mean little on their own.
 */
export function formatThroughputTable(rows: readonly ThroughputRow[], baseLabel = 'vs veth', queues?: number): string {
  const base = rows[0]?.gbitPerSecond ?? 0;
  return formatTable(
    ['setup', 'Gbit/s', baseLabel, 'pkts/read', 'pkts/write', 'drops', 'forwarder CPU', 'machine busy'],
    rows.map((r) => [
      (SETUP_NAMES[r.setup] ?? r.setup).replace(/^N queues/, queues === undefined ? 'N queues' : `${queues} queues`),
      r.gbitPerSecond.toFixed(2),
      base > 0 ? `${(r.gbitPerSecond / base).toFixed(2)}x` : 'n/a',
      r.forwarder ? r.forwarder.packetsPerRead.toFixed(1) : '-',
      r.forwarder ? r.forwarder.packetsPerWrite.toFixed(1) : '-',
      r.forwarder ? String(r.forwarder.drops) : '-',
      r.forwarder ? `${(r.forwarder.cpuShare * 100).toFixed(0)}% of a core` : '-',
      r.machineBusy !== undefined ? `${(r.machineBusy * 100).toFixed(0)}%` : '-',
    ]),
  );
}

/** One offload-core micro benchmark (the shape of `CoreBenchResult`). */
export interface CoreRow {
  workload: string;
  description: string;
  memory: string;
  usPerBatch: number;
  payloadGBps: number;
  /** A checksum pass over the same bytes, same memory, same run. */
  checksumUs: number;
  reference: { wireguardGo: number };
}

/**
 * The micro-benchmark table: µs per 128-packet batch (or per 64 KiB frame),
 * with a checksum pass over the same bytes measured in the same run as the
 * machine-independent yardstick, and wireguard-go's published figure.
 */
export function formatCoreTable(rows: readonly CoreRow[]): string {
  return formatTable(
    ['workload', 'memory', 'us/batch', 'payload GB/s', 'x checksum pass', 'wireguard-go us'],
    rows.map((r) => [
      `(${r.workload}) ${r.description}`,
      r.memory,
      r.usPerBatch.toFixed(2),
      r.payloadGBps.toFixed(2),
      r.checksumUs > 0 ? `${(r.usPerBatch / r.checksumUs).toFixed(2)}x` : 'n/a',
      String(r.reference.wireguardGo),
    ]),
    ['left', 'left', 'right', 'right', 'right', 'right'],
  );
}

/** The header of `vectun bench`. */
export function formatMachineFacts(m: MachineFacts): string {
  return formatFacts([
    ['cores', `${m.cpus} (${m.cpuModel})`],
    ['kernel', m.kernel],
    ['node', m.node],
  ]);
}
