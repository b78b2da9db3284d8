/**
 * The measured crypto decision of the WireGuard data path (issue 9,
 * docs/wg-crypto.md): sealing and opening transport messages with node:crypto
 * one packet at a time vs the addon's batch call, in the same run.
 *
 *   node dist/bench/wg-crypto.js [--size 1420] [--batch 64] [--ms 400] [--repeats 5] [--json]
 *
 * Each repeat times every variant for `--ms` milliseconds, interleaved, so a
 * noisy neighbour hits all of them; the ratio is the median of per-repeat
 * ratios (native speed / node:crypto speed).
 */
import * as crypto from 'node:crypto';
import * as os from 'node:os';
import { createTransportCipher, TRANSPORT_OVERHEAD, type TransportCipher } from '../src/wg/aead.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const n = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
}

const size = arg('--size', 1420);
const batch = arg('--batch', 64);
const ms = arg('--ms', 400);
const repeats = arg('--repeats', 5);
const json = process.argv.includes('--json');

const key = crypto.randomBytes(32);
const packets = Array.from({ length: batch }, () => new Uint8Array(crypto.randomBytes(size)));
const stride = size + TRANSPORT_OVERHEAD + 16;

interface Variant {
  id: string;
  run: () => void;
}

function variants(c: TransportCipher, label: string): Variant[] {
  const sealKey = c.key(key);
  const openKey = c.key(key);
  const out = new Uint8Array(stride * batch);
  const lengths = new Int32Array(batch);
  const plain = new Uint8Array(stride * batch);
  const plainLengths = new Int32Array(batch);
  const counters = new Float64Array(batch);
  const keys = Array.from({ length: batch }, () => openKey);
  let counter = 0;
  c.seal(sealKey, 1, counter, packets, batch, size, out, stride, lengths);
  const sealed = packets.map((_, i) => out.slice(i * stride, i * stride + lengths[i]!));
  return [
    {
      id: `seal ${label}`,
      run: () => {
        if (c.seal(sealKey, 1, counter, packets, batch, size, out, stride, lengths) !== batch) throw new Error('seal failed');
        counter += batch;
      },
    },
    {
      id: `open ${label}`,
      run: () => {
        if (c.open(keys, sealed, batch, plain, stride, plainLengths, counters) !== batch) throw new Error('open failed');
      },
    },
  ];
}

const node = createTransportCipher({ implementation: 'node' });
const native = createTransportCipher({ implementation: 'native' });
const all = [...variants(node, 'node:crypto per packet'), ...variants(native, 'native batch')];

/** Microseconds per packet of `v` over about `ms` milliseconds. */
function time(v: Variant): number {
  for (let i = 0; i < 20; i++) v.run();
  const start = process.hrtime.bigint();
  const limit = BigInt(ms) * 1_000_000n;
  let batches = 0;
  let elapsed = 0n;
  do {
    v.run();
    batches++;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < limit);
  return Number(elapsed) / 1000 / (batches * batch);
}

const samples = new Map<string, number[]>(all.map((v) => [v.id, []]));
const ratios = { seal: [] as number[], open: [] as number[] };
for (let r = 0; r < repeats; r++) {
  const us = new Map<string, number>();
  for (const v of all) {
    const t = time(v);
    us.set(v.id, t);
    samples.get(v.id)!.push(t);
  }
  ratios.seal.push(us.get('seal node:crypto per packet')! / us.get('seal native batch')!);
  ratios.open.push(us.get('open node:crypto per packet')! / us.get('open native batch')!);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const machine = { cpu: os.cpus()[0]?.model.trim() ?? 'unknown', cpus: os.cpus().length, node: process.version, openssl: process.versions.openssl };
const rows = all.map((v) => {
  const us = median(samples.get(v.id)!);
  return { id: v.id, usPerPacket: us, gbitPerSecond: (size * 8) / us / 1000 };
});
const result = {
  machine, size, batch, repeats,
  rows,
  ratio: { seal: median(ratios.seal), open: median(ratios.open) },
};
if (json) {
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
} else {
  process.stdout.write(`WireGuard transport AEAD, ${size}-byte packets, ${batch} a batch (${machine.cpu}, ${machine.cpus} cpus, Node ${machine.node}, OpenSSL ${machine.openssl})\n`);
  for (const r of rows) {
    process.stdout.write(`  ${r.id.padEnd(30)} ${r.usPerPacket.toFixed(3).padStart(8)} us/packet  ${r.gbitPerSecond.toFixed(2).padStart(6)} Gbit/s of plaintext on one core\n`);
  }
  process.stdout.write(`  native batch / node:crypto: ${result.ratio.seal.toFixed(2)}x faster sealing, ${result.ratio.open.toFixed(2)}x faster opening (median of ${repeats} per-repeat ratios)\n`);
}
