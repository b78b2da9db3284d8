/**
 * The WireGuard data path end to end: one TCP stream (iperf3) through a
 * tunnel between two network namespaces over a veth, vectun↔vectun against
 * wireguard-go↔wireguard-go in the same run, interleaved per repeat so a
 * noisy neighbour hits both; the ratio is the median of per-repeat ratios.
 * (wg-tools' `vectun bench wg` is the full comparison with the bare veth and
 * the mixed pairs; this one is the quick loop used while profiling.)
 *
 *   node dist/bench/wg-tunnel.js [--seconds 5] [--repeats 3] [--pairs vectun:vectun,wireguard-go:wireguard-go] [--json]
 *
 * Needs root, iperf3, and wireguard-go (scripts/install-wireguard-go.sh).
 */
import { checkLabPrerequisites } from '../src/lab/netns.js';
import { createWgTopology, ensureWgTools, type WgImplementation, type WgTopology } from '../src/lab/wg.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] ?? fallback : fallback;
}

const seconds = Number(arg('--seconds', '5'));
const repeats = Number(arg('--repeats', '3'));
const pairs = arg('--pairs', 'vectun:vectun,wireguard-go:wireguard-go').split(',').map((p) => p.split(':') as [WgImplementation, WgImplementation]);
const json = process.argv.includes('--json');

async function iperf(topo: WgTopology): Promise<number> {
  const server = topo.b.ns.spawn('iperf3', ['-s', '-1', '-B', topo.b.v4], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 300));
    // One ping first: the handshake is not part of the measurement.
    await topo.a.ns.exec('ping', ['-c', '1', '-W', '3', topo.b.v4], 10_000).catch(() => undefined);
    const out = await topo.a.ns.exec('iperf3', ['-c', topo.b.v4, '-t', String(seconds), '-J'], (seconds + 30) * 1000);
    const report = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
    return report.end.sum_received.bits_per_second / 1e9;
  } finally {
    server.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  checkLabPrerequisites();
  await ensureWgTools();
  const runs = new Map<string, number[]>(pairs.map(([a, b]) => [`${a}↔${b}`, []]));
  const ratios: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const round: number[] = [];
    for (const [a, b] of pairs) {
      const topo = await createWgTopology({ a, b, initiator: 'a' });
      try {
        const g = await iperf(topo);
        runs.get(`${a}↔${b}`)!.push(g);
        round.push(g);
        if (!json) process.stderr.write(`  repeat ${r + 1}: ${a}↔${b} ${g.toFixed(3)} Gbit/s\n`);
      } finally {
        await topo.remove();
      }
    }
    if (round.length >= 2) ratios.push(round[0]! / round[1]!);
  }
  const median = (xs: number[]): number => {
    const s = [...xs].sort((x, y) => x - y);
    return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const rows = [...runs.entries()].map(([pair, gbit]) => ({ pair, gbitPerSecond: median(gbit), runs: gbit }));
  const ratio = median(ratios);
  if (json) {
    process.stdout.write(JSON.stringify({ seconds, repeats, rows, ratio }, null, 2) + '\n');
    return;
  }
  for (const row of rows) process.stdout.write(`${row.pair.padEnd(28)} ${row.gbitPerSecond.toFixed(3)} Gbit/s (median of ${row.runs.length})\n`);
  if (pairs.length >= 2) process.stdout.write(`${pairs[0]!.join('↔')} / ${pairs[1]!.join('↔')}: ${ratio.toFixed(2)}x (median of per-repeat ratios)\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
