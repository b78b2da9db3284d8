/**
 * Per-packet WireGuard protocol costs: the AllowedIPs lookup (send path by
 * destination, receive path by source) and the replay-window check, the two
 * protocol steps that run for every packet. No root needed.
 *
 *   node dist/bench/wg.js [--ops 200000] [--repeats 7] [--json]
 *
 * Each workload runs interleaved with its baseline; `ratio` is the median of
 * per-repeat ratios against the baseline of the same run:
 * - lookup baselines: one `Map.get` keyed by the destination's last 32-bit
 *   word, read from the same packet bytes (an exact-match hash table: the
 *   cheapest table a host-routes-only design could use).
 * - replay baseline: reading the packet's two counter halves and keeping a
 *   running maximum (the least any check must do).
 * `heap B/op` is heap growth per operation over a repeat without a forced
 * GC: about 0 for allocation-free code.
 */
import { AllowedIps } from '../src/wg/allowed-ips.js';
import { ReplayFilter } from '../src/wg/replay.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const n = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
}

const OPS = arg('--ops', 200_000);
const REPEATS = arg('--repeats', 7);
const PACKETS = 4096;
const STRIDE = 64;

/** mulberry32 */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

// 1000 peers: each a /32 in 198.18.0.0/16 and a /24 in 198.19.0.0/16, plus a default route; v6 likewise in 2001:2::/48.
const r = rng(42);
const table = new AllowedIps<number>();
const exact = new Map<number, number>();
for (let p = 0; p < 1000; p++) {
  const host = (198 << 24) | (18 << 16) | (p >>> 8 << 8) | (p & 0xff);
  table.insert(`198.18.${p >>> 8}.${p & 0xff}/32`, p);
  table.insert(`198.19.${p & 0xff}.0/24`, p);
  table.insert(`2001:2::${p.toString(16)}/128`, p);
  table.insert(`2001:2:0:${(p + 1).toString(16)}::/64`, p);
  exact.set(host >>> 0, p);
}
table.insert('0.0.0.0/0', 1000);
table.insert('::/0', 1000);

const v4 = new Uint8Array(PACKETS * STRIDE);
const v6 = new Uint8Array(PACKETS * STRIDE);
for (let i = 0; i < PACKETS; i++) {
  const o = i * STRIDE;
  v4[o] = 0x45;
  const p = r() % 1000;
  const kind = r() % 3; // host, /24, default
  const dst = kind === 0 ? [198, 18, p >>> 8, p & 0xff] : kind === 1 ? [198, 19, p & 0xff, r() & 0xff] : [203, 0, 113, r() & 0xff];
  v4.set(dst, o + 16);
  v4.set(dst, o + 12);
  v6[o] = 0x60;
  const d6 = new Uint8Array(16);
  d6.set([0x20, 0x01, 0, 2]);
  if (kind === 0) {
    d6[14] = p >>> 8;
    d6[15] = p & 0xff;
  } else if (kind === 1) {
    d6[6] = (p + 1) >>> 8;
    d6[7] = (p + 1) & 0xff;
    d6[15] = r() & 0xff;
  } else d6[0] = 0x30;
  v6.set(d6, o + 24);
  v6.set(d6, o + 8);
}

const counters = new Uint8Array(PACKETS * 16);
{
  // Sequential counters with small reordering inside batches of 64, as a multi-queue receiver sees them.
  for (let i = 0; i < PACKETS; i++) {
    const c = (i & ~63) + ((i * 37) & 63);
    new DataView(counters.buffer).setUint32(i * 16 + 8, c, true);
  }
}

let sink = 0;

const workloads: Record<string, () => void> = {
  'lookup v4 dst': () => {
    for (let i = 0; i < OPS; i++) sink += table.lookupDestination(v4, (i & (PACKETS - 1)) * STRIDE) ?? 0;
  },
  'lookup v4 src': () => {
    for (let i = 0; i < OPS; i++) sink += table.lookupSource(v4, (i & (PACKETS - 1)) * STRIDE) ?? 0;
  },
  'lookup v6 dst': () => {
    for (let i = 0; i < OPS; i++) sink += table.lookupDestination(v6, (i & (PACKETS - 1)) * STRIDE) ?? 0;
  },
  'baseline map.get': () => {
    for (let i = 0; i < OPS; i++) {
      const o = (i & (PACKETS - 1)) * STRIDE + 16;
      sink += exact.get(((v4[o]! << 24) | (v4[o + 1]! << 16) | (v4[o + 2]! << 8) | v4[o + 3]!) >>> 0) ?? 0;
    }
  },
  'replay check': () => {
    const f = new ReplayFilter();
    for (let i = 0; i < OPS; i++) {
      const o = (i & (PACKETS - 1)) * 16 + 8;
      // A fresh window every PACKETS counters (the same counters again would all be replays).
      if ((i & (PACKETS - 1)) === 0) f.reset();
      sink += f.checkAt(counters, o) ? 1 : 0;
    }
  },
  'baseline read+max': () => {
    let max = 0;
    for (let i = 0; i < OPS; i++) {
      const o = (i & (PACKETS - 1)) * 16 + 8;
      if ((i & (PACKETS - 1)) === 0) max = 0;
      const low = (counters[o]! | (counters[o + 1]! << 8) | (counters[o + 2]! << 16) | (counters[o + 3]! << 24)) >>> 0;
      const high = (counters[o + 4]! | (counters[o + 5]! << 8) | (counters[o + 6]! << 16) | (counters[o + 7]! << 24)) >>> 0;
      const c = high * 4294967296 + low;
      if (c > max) {
        max = c;
        sink++;
      }
    }
  },
};

const baselineOf: Record<string, string> = {
  'lookup v4 dst': 'baseline map.get',
  'lookup v4 src': 'baseline map.get',
  'lookup v6 dst': 'baseline map.get',
  'replay check': 'baseline read+max',
};

const samples: Record<string, { ns: number[]; heap: number[] }> = {};
for (const name of Object.keys(workloads)) {
  workloads[name]!(); // warm up
  samples[name] = { ns: [], heap: [] };
}
for (let rep = 0; rep < REPEATS; rep++) {
  for (const [name, fn] of Object.entries(workloads)) {
    const h0 = process.memoryUsage().heapUsed;
    const t0 = process.hrtime.bigint();
    fn();
    const t1 = process.hrtime.bigint();
    const h1 = process.memoryUsage().heapUsed;
    samples[name]!.ns.push(Number(t1 - t0) / OPS);
    samples[name]!.heap.push(Math.max(0, h1 - h0) / OPS);
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
};

const rows = Object.keys(workloads).map((name) => {
  const s = samples[name]!;
  const base = baselineOf[name];
  const ratio = base === undefined ? undefined : median(s.ns.map((v, i) => v / samples[base]!.ns[i]!));
  return { workload: name, nsPerOp: median(s.ns), minNsPerOp: Math.min(...s.ns), ratio, baseline: base ?? null, heapBytesPerOp: median(s.heap) };
});

if (process.argv.includes('--json')) {
  process.stdout.write(JSON.stringify({ ops: OPS, repeats: REPEATS, node: process.version, rows }, null, 2) + '\n');
} else {
  const table2 = [['workload', 'ns/op', 'min', 'ratio', 'vs', 'heap B/op'], ...rows.map((x) => [x.workload, x.nsPerOp.toFixed(1), x.minNsPerOp.toFixed(1), x.ratio === undefined ? '-' : x.ratio.toFixed(2), x.baseline ?? '', x.heapBytesPerOp.toFixed(2)])];
  const widths = table2[0]!.map((_, c) => Math.max(...table2.map((row) => row[c]!.length)));
  for (const row of table2) process.stdout.write(row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ') + '\n');
  process.stdout.write(`(${OPS} ops x ${REPEATS} repeats, interleaved; sink ${sink % 10})\n`);
}
