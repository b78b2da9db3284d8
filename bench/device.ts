/**
 * Device write path on a real TUN device: what coalescing into one writev per
 * super-packet saves over one write per packet.
 *
 *   node dist/bench/device.js [--batches N] [--repeats N] [--json]
 *
 * Needs root: creates a network namespace (removed afterwards) and re-runs
 * itself inside it, so the devices live there. Each batch is 64 in-order
 * packets of one TCP flow (1448-byte payload, 198.18.1.3 -> 198.18.1.2); the
 * kernel drops them after routing (forwarding is off in a new namespace), so
 * the figures are the cost of getting packets into the kernel. Variants run
 * interleaved; speeds are reported as the median of per-repeat ratios to the
 * baseline (a device without virtio headers: one write per packet).
 */
import * as os from 'node:os';
import { Tun } from '../src/device/tun.js';
import { createNetns } from '../src/lab/netns.js';
import { buildPacket } from '../test/core/packets.js';

const CHILD = 'VECTUN_BENCH_DEVICE_CHILD';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const n = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
}

interface Variant {
  id: string;
  description: string;
  tun: Tun;
}

interface Row {
  id: string;
  description: string;
  packetsPerSecond: number;
  writevPerBatch: number;
  ratio: number;
}

async function child(): Promise<void> {
  const batches = arg('--batches', 2000);
  const repeats = arg('--repeats', 5);
  const open = async (offload: boolean): Promise<Tun> => {
    const t = await Tun.open({ name: 'vtbench%d', offload });
    await t.addAddress('198.18.0.1/24');
    await t.setUp(true);
    return t;
  };
  const plain = await open(false);
  const offload = await open(true);
  const noGro = await open(true);
  noGro.setGro({ tcp: false, udp: false });
  const variants: Variant[] = [
    { id: 'plain', description: 'no virtio header: one write per packet (baseline)', tun: plain },
    { id: 'vnet', description: 'virtio header, GRO off: one writev per packet', tun: noGro },
    { id: 'gro', description: 'virtio header, TCP GRO: one writev per super-packet', tun: offload },
  ];
  const pristine = Array.from({ length: 64 }, (_, i) =>
    buildPacket({ version: 4, proto: 'tcp', src: [198, 18, 1, 3], dst: [198, 18, 1, 2], payload: 1448, seq: 1 + i * 1448, ack: 1, flags: 0x10 }),
  );
  const packets = pristine.map((p) => p.slice());
  const rates = new Map<string, number[]>(variants.map((v) => [v.id, []]));
  const writes = new Map<string, number>();
  try {
    for (let r = 0; r < repeats; r++) {
      for (const v of variants) {
        const before = v.tun.stats.writes;
        const t0 = process.hrtime.bigint();
        for (let b = 0; b < batches; b++) {
          // Coalescing rewrites head packets (PIT-2): restore the headers (64 bytes) each batch.
          for (let i = 0; i < packets.length; i++) packets[i]!.set(pristine[i]!.subarray(0, 64));
          const res = await v.tun.write(packets);
          if (res.packets !== packets.length) throw new Error(`${v.id}: ${res.failures[0]?.error.message}`);
        }
        const s = Number(process.hrtime.bigint() - t0) / 1e9;
        rates.get(v.id)!.push((batches * packets.length) / s);
        writes.set(v.id, (v.tun.stats.writes - before) / batches);
      }
    }
  } finally {
    for (const v of variants) await v.tun.close();
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const base = rates.get('plain')!;
  const rows: Row[] = variants.map((v) => {
    const xs = rates.get(v.id)!;
    return {
      id: v.id,
      description: v.description,
      packetsPerSecond: median(xs),
      writevPerBatch: writes.get(v.id)!,
      ratio: median(xs.map((x, i) => x / base[i]!)),
    };
  });
  process.stdout.write(JSON.stringify({ batches, repeats, packetsPerBatch: packets.length, rows }) + '\n');
}

async function parent(): Promise<void> {
  const ns = await createNetns('bench');
  try {
    const out = await ns.exec(process.execPath, [__filename, ...process.argv.slice(2)], 300_000);
    const json = process.argv.includes('--json');
    const r = JSON.parse(out.trim().split('\n').pop()!) as { batches: number; repeats: number; packetsPerBatch: number; rows: Row[] };
    if (json) {
      process.stdout.write(JSON.stringify({ machine: { cpu: os.cpus()[0]?.model.trim(), cpus: os.cpus().length, node: process.version, kernel: os.release() }, ...r }, null, 2) + '\n');
      return;
    }
    process.stdout.write(`vectun device write path: ${r.batches} batches x ${r.packetsPerBatch} packets, ${r.repeats} repeats, kernel ${os.release()}\n`);
    for (const row of r.rows) {
      process.stdout.write(
        `  ${row.id.padEnd(6)} ${(row.packetsPerSecond / 1e3).toFixed(0).padStart(7)} kpkt/s  x${row.ratio.toFixed(2).padEnd(6)} writev/batch ${row.writevPerBatch.toFixed(1).padStart(5)}  ${row.description}\n`,
      );
    }
    process.stdout.write('  x = median of per-repeat ratios to "plain" measured in the same run.\n');
  } finally {
    await ns.remove();
  }
}

(process.env[CHILD] === undefined ? ((process.env[CHILD] = '1'), parent()) : child()).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
