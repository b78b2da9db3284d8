/**
 * WireGuard benchmark: single TCP stream from namespace A to B through
 * (1) the bare veth (the kernel's limit), (2) wireguard-go ↔ wireguard-go (the
 * reference), (3) vectun ↔ vectun, (4) vectun (A, sending) ↔ wireguard-go
 * (B), each tunnel over its own veth. All are built first and measured in
 * turn within each repeat, so machine load hits them alike; ratios pair the
 * measurements of one repeat and take the median over repeats.
 *
 * Traffic from iperf3 (installed with apt-get when missing and possible; if
 * not, the lab's Node workers, and the result says so).
 *
 * Used by `vectun bench wg`; runnable alone:
 * `node dist/src/bench/wg.js [--seconds 3] [--repeats 3] [--json]`.
 * @module
 */
import { execFile } from 'node:child_process';
import { VectunError } from '../errors.js';
import { checkLabPrerequisites, type Netns } from '../lab/netns.js';
import { createVethTopology, type Topology } from '../lab/topology.js';
import { tcpTransfer } from '../lab/traffic.js';
import { createWgTopology, ensureWgTools, type WgTopology } from '../lab/wg.js';
import { hasIperf3, iperf3, median } from './e2e.js';

/** The setups measured. */
export type WgBenchSetup = 'veth' | 'wireguard-go-wireguard-go' | 'vectun-vectun' | 'vectun-wireguard-go';

/** Options of {@link runWgBenchmarks}. */
export interface WgBenchOptions {
  /** Seconds per measurement; default 3. */
  seconds?: number;
  /** Measurements per setup, interleaved; default 3. */
  repeats?: number;
  /** Traffic generator; `auto` (default): iperf3, installing it if missing, else the Node workers. */
  tool?: 'auto' | 'iperf3' | 'node';
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}

/** One setup's figures. */
export interface WgBenchRun {
  setup: WgBenchSetup;
  /** Median Gbit/s over the repeats. */
  gbitPerSecond: number;
  samples: number[];
  /** Median of per-repeat ratios to wireguard-go ↔ wireguard-go. */
  vsWireguardGo: number;
  /** Median of per-repeat ratios to the bare veth. */
  vsVeth: number;
}

/** The whole result. */
export interface WgBenchResult {
  tool: 'iperf3' | 'node';
  /** Why the Node workers were used, when they were. */
  toolNote?: string;
  seconds: number;
  repeats: number;
  runs: WgBenchRun[];
}

/** Human names of the setups, in table order. */
export const WG_BENCH_LABELS: Record<WgBenchSetup, string> = {
  veth: 'veth pair (no tunnel)',
  'wireguard-go-wireguard-go': 'wireguard-go -> wireguard-go',
  'vectun-vectun': 'vectun -> vectun',
  'vectun-wireguard-go': 'vectun -> wireguard-go',
};

/** Installs iperf3 with apt-get (root, Debian); resolves to an error text, or undefined on success. */
function installIperf3(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      ['-c', 'export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq --no-install-recommends iperf3 >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq --no-install-recommends iperf3; }'],
      { timeout: 300_000 },
      (err, _stdout, stderr) => resolve(err ? (stderr.trim().split('\n').pop() ?? err.message) : undefined),
    );
  });
}

async function chooseTool(want: 'auto' | 'iperf3' | 'node', log: (line: string) => void): Promise<{ tool: 'iperf3' | 'node'; note?: string }> {
  if (want === 'node') return { tool: 'node', note: 'asked for' };
  if (hasIperf3()) return { tool: 'iperf3' };
  log('iperf3 not installed: installing it with apt-get');
  const failure = await installIperf3();
  if (failure === undefined && hasIperf3()) return { tool: 'iperf3' };
  if (want === 'iperf3') throw new VectunError('ERR_LAB_PREREQUISITE', `iperf3 is not installed and apt-get could not install it: ${failure ?? 'unknown'}`);
  return { tool: 'node', note: `iperf3 could not be installed (${failure ?? 'unknown'}): the Node workers are used` };
}

async function nodeTransfer(from: Netns, to: Netns, address: string, seconds: number): Promise<number> {
  const r = await tcpTransfer({ from, to, address, bytes: Math.ceil(seconds * 12.5e9), seconds, timeoutMs: (seconds + 30) * 1000 });
  if (!r.intact) throw new VectunError('ERR_LAB_TRAFFIC', 'benchmark transfer arrived corrupted');
  return r.gbitPerSecond;
}

/**
 * Builds the four setups, measures them `repeats` times in turn, and removes
 * everything (also on failure or abort).
 * @throws VectunError when lab prerequisites or the reference tools are missing.
 */
export async function runWgBenchmarks(options: WgBenchOptions = {}): Promise<WgBenchResult> {
  checkLabPrerequisites();
  const seconds = options.seconds ?? 3;
  const repeats = options.repeats ?? 3;
  const log = options.onProgress ?? (() => undefined);
  const { tool, note } = await chooseTool(options.tool ?? 'auto', log);
  await ensureWgTools();

  const built: Array<Topology | WgTopology> = [];
  try {
    const setups: Array<{ setup: WgBenchSetup; from: Netns; to: Netns; address: string }> = [];
    const veth = await createVethTopology();
    built.push(veth);
    setups.push({ setup: 'veth', from: veth.a.ns, to: veth.b.ns, address: veth.b.v4 });
    for (const [setup, a, b] of [
      ['wireguard-go-wireguard-go', 'wireguard-go', 'wireguard-go'],
      ['vectun-vectun', 'vectun', 'vectun'],
      ['vectun-wireguard-go', 'vectun', 'wireguard-go'],
    ] as const) {
      options.signal?.throwIfAborted();
      const topo = await createWgTopology({ a, b, initiator: 'a' });
      built.push(topo);
      // The handshake happens here, not inside the first measurement.
      await nodeTransfer(topo.a.ns, topo.b.ns, topo.b.v4, 0.2);
      setups.push({ setup, from: topo.a.ns, to: topo.b.ns, address: topo.b.v4 });
    }

    const samples = new Map<WgBenchSetup, number[]>(setups.map((s) => [s.setup, []]));
    for (let r = 0; r < repeats; r++) {
      for (const s of setups) {
        options.signal?.throwIfAborted();
        const gbps = tool === 'iperf3' ? await iperf3(s.from, s.to, s.address, seconds) : await nodeTransfer(s.from, s.to, s.address, seconds);
        samples.get(s.setup)!.push(gbps);
        log(`${WG_BENCH_LABELS[s.setup]} run ${r + 1}/${repeats}: ${gbps.toFixed(2)} Gbit/s`);
      }
    }
    const paired = (x: WgBenchSetup, y: WgBenchSetup): number => {
      const ys = samples.get(y)!;
      return median(samples.get(x)!.map((v, i) => (ys[i]! > 0 ? v / ys[i]! : 0)));
    };
    const runs = setups.map(
      (s): WgBenchRun => ({
        setup: s.setup,
        gbitPerSecond: median(samples.get(s.setup)!),
        samples: samples.get(s.setup)!,
        vsWireguardGo: paired(s.setup, 'wireguard-go-wireguard-go'),
        vsVeth: paired(s.setup, 'veth'),
      }),
    );
    return { tool, ...(note === undefined ? {} : { toolNote: note }), seconds, repeats, runs };
  } finally {
    for (const t of built.reverse()) await t.remove().catch(() => undefined);
  }
}

/** The result as a table: Gbit/s, ratio to wireguard-go ↔ wireguard-go, ratio to veth. */
export function formatWgBenchResult(r: WgBenchResult): string {
  const rows = r.runs.map((run) => [
    WG_BENCH_LABELS[run.setup].padEnd(30),
    run.gbitPerSecond.toFixed(2).padStart(6),
    `${run.vsWireguardGo.toFixed(2)}x`.padStart(13),
    `${run.vsVeth.toFixed(2)}x`.padStart(8),
  ]);
  const head = ['setup'.padEnd(30), 'Gbit/s', 'vs wg-go↔wg-go', ' vs veth'];
  const lines = [head.join('  '), head.map((h) => '-'.repeat(h.length)).join('  '), ...rows.map((row) => row.join('  '))];
  const tool = r.tool === 'iperf3' ? 'iperf3' : `the Node workers${r.toolNote === undefined ? '' : ` (${r.toolNote})`}`;
  return (
    `single TCP stream A -> B through each setup, ${r.seconds} s per measurement, ` +
    `${r.repeats === 1 ? 'one measurement' : `median of ${r.repeats} interleaved measurements`} per setup, traffic by ${tool}\n` +
    `${lines.join('\n')}\nratios: medians of the ratios within each repeat\n`
  );
}

async function main(argv: string[]): Promise<void> {
  const o: WgBenchOptions = { onProgress: (line) => void process.stderr.write(`  ${line}\n`) };
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--seconds' && v !== undefined) (o.seconds = Number(v)), i++;
    else if (a === '--repeats' && v !== undefined) (o.repeats = Number(v)), i++;
    else if (a === '--json') json = true;
    else throw new VectunError('ERR_INVALID_ARG', `unknown argument ${a}`);
  }
  const r = await runWgBenchmarks(o);
  process.stdout.write(json ? `${JSON.stringify(r, null, 2)}\n` : formatWgBenchResult(r));
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
