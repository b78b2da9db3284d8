/**
 * `npm run bench`: the offload-core workloads of issue #3 (src/bench/core.ts)
 * as a table, or JSON with `--json`.
 *
 *   node dist/bench/run.js [--json] [--batches N] [--repeats N] [--only a,b,e]
 */
import * as os from 'node:os';
import { runChecksumBenchmarks, runCoreBenchmarks, type CoreBenchResult, type WorkloadId } from '../src/bench/core.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function positiveInt(name: string, fallback: number): number {
  const v = arg(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    process.stderr.write(`${name} must be a positive integer, got ${v}\n`);
    process.exit(2);
  }
  return n;
}

const json = process.argv.includes('--json');
const only = arg('--only')?.split(',') as WorkloadId[] | undefined;
const results = runCoreBenchmarks({
  memory: ['plain', 'plain-reused', 'arena', 'arena2'],
  batches: positiveInt('--batches', 1000),
  repeats: positiveInt('--repeats', 7),
  ...(only ? { workloads: only } : {}),
  onProgress: json ? undefined : (l) => process.stderr.write(`  ${l}\n`),
});

const checksum = only ? [] : runChecksumBenchmarks();

const machine = { cpu: os.cpus()[0]?.model.trim() ?? 'unknown', cpus: os.cpus().length, node: process.version, kernel: os.release() };

if (json) {
  process.stdout.write(JSON.stringify({ machine, results, checksum }, null, 2) + '\n');
} else {
  const verdict = (b: boolean | undefined): string => (b === undefined ? '-' : b ? 'beat' : 'MISS');
  const roles: Record<CoreBenchResult['role'], string> = { issue: 'ISSUE #3', device: 'device', other: '' };
  const rows: string[][] = [
    ['wl', 'figure', 'api', 'memory', 'us/batch', 'min', 'GB/s', 'cksum us', 'x cksum', 'wg-go us', 'vs wg-go', 'avx2 us', 'vs avx2', 'alloc+copy us'],
  ];
  for (const r of results as CoreBenchResult[]) {
    rows.push([
      r.workload,
      roles[r.role],
      r.api,
      r.memory,
      r.usPerBatch.toFixed(2),
      r.usPerBatchMin.toFixed(2),
      r.payloadGBps.toFixed(2),
      r.checksumUs.toFixed(2),
      r.ratioToChecksum.toFixed(2),
      String(r.reference.wireguardGo),
      verdict(r.beatsWireguardGo),
      r.reference.tailscaleAvx2 === undefined ? '-' : String(r.reference.tailscaleAvx2),
      verdict(r.beatsTailscaleAvx2),
      r.allocCopyUs === undefined ? '' : r.allocCopyUs.toFixed(2),
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  process.stdout.write(`vectun core benchmarks (${machine.cpu}, ${machine.cpus} cpus, Node ${machine.node})\n`);
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padStart(widths[i]!)).join('  ') + '\n');
  process.stdout.write(
    '\nfigure ISSUE #3: the issue\'s workload through its API on plain Uint8Arrays (a-d: Coalescer#coalesce, the\n' +
      '  reusable form of coalesce(); e, f: segment(frame), packets in fresh memory that stays valid while held).\n' +
      'figure device: the layout src/device/tun.ts uses (packets, or frame and output, in one Arena).\n' +
      'plain-reused: segmentInto from a plain frame into one plain output area reused across calls; arena2: frame\n' +
      '  and output in two arenas.\n' +
      'us/batch: median of repeats; x cksum: us/batch / one CK-1 pass over the same input bytes in the same memory,\n' +
      '  measured in the same run (the machine-independent figure).\n' +
      'vs wg-go / vs avx2: beat when us/batch is below the reference (wireguard-go generic checksum / Tailscale AVX2\n' +
      '  peer, issue #3 figures from other machines of this kind); MISS otherwise.\n' +
      'alloc+copy us: segment() without the split, same run: a fresh Uint8Array of the output size, the copy into\n' +
      '  it from warm memory and the packet views. What returning packets in fresh memory costs by itself (the\n' +
      '  reference writes into preallocated buffers; that is the plain-reused row).\n' +
      'Coalesce inputs are restored (first 64 bytes of each packet) outside the timed region before each batch.\n',
  );
  const issue = (results as CoreBenchResult[]).filter((r) => r.role === 'issue');
  const misses = issue.filter((r) => !r.beatsWireguardGo).map((r) => r.workload);
  process.stdout.write(
    `issue #3 figures beating wireguard-go: ${issue.length - misses.length} of ${issue.length}` +
      (misses.length > 0 ? ` (MISS: ${misses.join(', ')})\n` : '\n'),
  );
  for (const [id, d] of new Map(results.map((r) => [r.workload, r.description]))) process.stdout.write(`  ${id}: ${d}\n`);
  if (checksum.length > 0) {
    process.stdout.write('\nCK-1 primitive (128 distinct 1468-byte packets / 16 distinct 64 KiB runs per round):\n');
    for (const c of checksum) {
      process.stdout.write(`  ${String(c.bytes).padStart(5)} B  ${c.case.padEnd(32)} ${c.nsPerCall.toFixed(1).padStart(8)} ns/call  ${c.gbps.toFixed(1).padStart(5)} GB/s\n`);
    }
  }
}

// The UDP row (src/bench/udp.ts: vectun UdpSocket vs Node dgram between two
// namespaces), table mode only, after the core runs so the two do not share
// the CPU. Needs root (skipped with the reason otherwise); `--no-udp` skips it,
// `--udp-seconds N` sets its length; JSON: `node dist/src/bench/udp.js --json`.
if (!json && only === undefined && !process.argv.includes('--no-udp')) {
  void (async () => {
    const { labUnavailableReason } = await import('../src/lab/netns.js');
    const { formatUdpResult, runUdpBenchmark } = await import('../src/bench/udp.js');
    const reason = labUnavailableReason();
    if (reason !== undefined) {
      process.stdout.write(`\nUDP row skipped: ${reason}\n`);
      return;
    }
    const r = await runUdpBenchmark({ seconds: positiveInt('--udp-seconds', 2), repeats: 3, onProgress: (l) => process.stderr.write(`  ${l}\n`) });
    process.stdout.write('\n' + formatUdpResult(r));
  })().catch((err: unknown) => {
    process.stderr.write(`UDP row failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
