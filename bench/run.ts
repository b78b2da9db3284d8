/**
 * `npm run bench`: the offload-core workloads (src/bench/core.ts) as a table,
 * or JSON with `--json`. First the calls a user reaches for first on plain
 * `Uint8Array`s (`coalesce(packets)`, `segment(frame)`) and their reusable
 * forms (`Coalescer`, `Segmenter`), warm and cold (a fresh process per cold
 * measurement), next to wireguard-go's figures; then the device layouts.
 *
 *   node dist/bench/run.js [--json] [--batches N] [--repeats N] [--only a,b,e] [--cold-runs N]
 */
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  ISSUE10_BEFORE_US,
  runChecksumBenchmarks,
  runCoreBenchmarks,
  type ColdBenchResult,
  type CoreBenchResult,
  type WorkloadId,
} from '../src/bench/core.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function positiveInt(name: string, fallback: number, min = 1): number {
  const v = arg(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`${name} must be an integer >= ${min}, got ${v}\n`);
    process.exit(2);
  }
  return n;
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}

const json = process.argv.includes('--json');
const only = arg('--only')?.split(',') as WorkloadId[] | undefined;
const coldRuns = positiveInt('--cold-runs', 3, 0);
const progress = json ? undefined : (l: string): void => void process.stderr.write(`  ${l}\n`);

// Cold first: fresh processes, before this one loads the CPU caches with its own runs.
const cold: (ColdBenchResult & { runs: number })[] = [];
const workloads = only ?? (['a', 'b', 'c', 'd', 'e', 'f'] as const);
if (coldRuns > 0) {
  const script = path.join(__dirname, 'cold.js');
  for (const id of workloads) {
    for (const form of ['free', 'fast'] as const) {
      // One fresh process per measurement; the median of coldRuns processes per figure.
      const runs: ColdBenchResult[] = [];
      for (let r = 0; r < coldRuns; r++) {
        runs.push(JSON.parse(execFileSync(process.execPath, [script, id, form], { encoding: 'utf8' })) as ColdBenchResult);
      }
      cold.push({
        ...runs[0]!,
        firstUs: median(runs.map((x) => x.firstUs)),
        next9Us: median(runs.map((x) => x.next9Us)),
        shortRunUs: median(runs.map((x) => x.shortRunUs)),
        checksumUs: median(runs.map((x) => x.checksumUs)),
        runs: coldRuns,
      });
      progress?.(`cold ${id} ${form}: short run ${cold[cold.length - 1]!.shortRunUs.toFixed(2)} us`);
    }
  }
}

const results = runCoreBenchmarks({
  memory: ['plain', 'plain-fast', 'plain-reused', 'arena', 'arena2'],
  batches: positiveInt('--batches', 1000),
  repeats: positiveInt('--repeats', 7),
  ...(only ? { workloads: only } : {}),
  onProgress: progress,
});

const checksum = only ? [] : runChecksumBenchmarks();

const machine = { cpu: os.cpus()[0]?.model.trim() ?? 'unknown', cpus: os.cpus().length, node: process.version, kernel: os.release(), loadavg: os.loadavg() };

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((c, i) => c.padStart(widths[i]!)).join('  ')).join('\n') + '\n';
}

if (json) {
  process.stdout.write(JSON.stringify({ machine, results, cold, checksum }, null, 2) + '\n');
} else {
  const verdict = (b: boolean | undefined): string => (b === undefined ? '-' : b ? 'beat' : 'MISS');
  const out = process.stdout;
  out.write(
    `vectun core benchmarks (${machine.cpu}, ${machine.cpus} cpus, Node ${machine.node}, load ${machine.loadavg.map((x) => x.toFixed(1)).join(' ')})\n\n`,
  );

  // 1. The simple calls on plain memory, warm, against the reference.
  const plain = results.filter((r) => r.role === 'issue' || r.role === 'fast');
  const warmRows: string[][] = [['wl', 'api', 'us/batch', 'min', 'cksum us', 'x cksum', 'wg-go us', 'x wg-go', 'vs wg-go', 'before #10']];
  for (const r of plain) {
    warmRows.push([
      r.workload,
      r.api,
      r.usPerBatch.toFixed(2),
      r.usPerBatchMin.toFixed(2),
      r.checksumUs.toFixed(2),
      r.ratioToChecksum.toFixed(2),
      r.reference.wireguardGo.toFixed(1),
      (r.usPerBatch / r.reference.wireguardGo).toFixed(2),
      verdict(r.beatsWireguardGo),
      r.role === 'issue' ? ISSUE10_BEFORE_US[r.workload].toFixed(1) : '',
    ]);
  }
  out.write('plain Uint8Arrays, warm (this process, after the cold runs):\n' + table(warmRows));

  // 2. The same calls cold: one fresh process per measurement.
  if (cold.length > 0) {
    const coldRows: string[][] = [['wl', 'api', 'first us', 'calls 2-10', 'short run us', 'x cksum', 'wg-go us', 'x wg-go', 'vs wg-go']];
    for (const c of cold) {
      coldRows.push([
        c.workload,
        c.api,
        c.firstUs.toFixed(0),
        c.next9Us.toFixed(1),
        c.shortRunUs.toFixed(2),
        (c.shortRunUs / c.checksumUs).toFixed(2),
        c.reference.wireguardGo.toFixed(1),
        (c.shortRunUs / c.reference.wireguardGo).toFixed(2),
        verdict(c.shortRunUs < c.reference.wireguardGo),
      ]);
    }
    out.write(
      `\nplain Uint8Arrays, cold: a fresh process per measurement, median of ${coldRuns} processes; short run = vectun bench's\n` +
        '(50 untimed calls in all, then the median of 3 x 200); issue #10 measured 75 us for coalesce (a), 212 us for segment:\n' +
        table(coldRows),
    );
  }

  // 3. Everything, including the device layouts.
  const roles: Record<CoreBenchResult['role'], string> = { issue: 'free fn', fast: 'reusable', device: 'device', other: '' };
  const rows: string[][] = [
    ['wl', 'figure', 'api', 'memory', 'us/batch', 'min', 'GB/s', 'cksum us', 'x cksum', 'wg-go us', 'vs wg-go', 'avx2 us', 'vs avx2', 'alloc+copy us'],
  ];
  for (const r of results) {
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
  out.write('\nall memory kinds, warm:\n' + table(rows));
  out.write(
    '\nfree fn: coalesce(packets) / segment(frame) on plain Uint8Arrays (fresh output per call, valid while held).\n' +
      'reusable: Coalescer#coalesce / Segmenter#segment on the same inputs (output recycled, valid until the next call).\n' +
      'device: the layout src/device/tun.ts uses (packets, or frame and output, in one Arena).\n' +
      'plain-reused: segmentInto from a plain frame into one plain output area reused across calls; arena2: frame\n' +
      '  and output in two arenas.\n' +
      'us/batch: median of repeats of the mean per call; x cksum: us/batch / one CK-1 pass over the same input bytes in\n' +
      '  the same memory, measured in the same run (the machine-independent figure).\n' +
      'wg-go us: wireguard-go as timed by issue #10\'s harness on a 2-core VM; before #10: vectun\'s free function there.\n' +
      '  x wg-go < 1 beats it; compare only on a quiet machine (see load above), else use x cksum.\n' +
      'alloc+copy us: segment() without the split, same run: a fresh Uint8Array of the output size, the copy into\n' +
      '  it from warm memory and the packet views: what returning packets in fresh memory costs by itself.\n' +
      'Coalesce inputs are restored (first 64 bytes of each packet) outside the timed region before each batch.\n',
  );
  for (const [id, d] of new Map(results.map((r) => [r.workload, r.description]))) out.write(`  ${id}: ${d}\n`);
  if (checksum.length > 0) {
    out.write('\nCK-1 primitive (128 distinct 1468-byte packets / 16 distinct 64 KiB runs per round):\n');
    for (const c of checksum) {
      out.write(`  ${String(c.bytes).padStart(5)} B  ${c.case.padEnd(32)} ${c.nsPerCall.toFixed(1).padStart(8)} ns/call  ${c.gbps.toFixed(1).padStart(5)} GB/s\n`);
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
