/**
 * `vectun bench`: one-run comparison of a veth pair (the kernel's limit) with
 * the vectun bridge with and without offload, single TCP stream (iperf3 when
 * installed, else the built-in transfer; the output says which), the UDP row
 * (vectun UdpSocket vs Node dgram), plus the offload-core micro benchmarks, under a header of machine facts. The
 * measurements themselves live in `src/bench/`; this file prints them.
 * @module
 */
import * as os from 'node:os';
import { Interrupted, raceAbort, throwIfAborted } from './abort.js';
import { ExitCode } from './exit-codes.js';
import { checkPrerequisites, describeMissing, ensureIpOnPath } from './prereq.js';
import type { BenchOptions, CliIO } from './program.js';
import { formatCoreTable, formatMachineFacts, formatThroughputTable, type MachineFacts } from './report.js';

/** Facts for the header: the numbers mean little without them. */
export function machineFacts(): MachineFacts {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
  };
}

/** Runs the benchmarks; resolves to an exit code. */
export function runBench(o: BenchOptions, io: CliIO): Promise<number> {
  return benchCommand('vectun bench', 'namespaces and devices', o, io, async (facts, log) => {
    const { runE2eBenchmarks } = await import('../bench/e2e.js');
    const e2e = await raceAbort(runE2eBenchmarks({ seconds: o.seconds, repeats: o.repeats, onProgress: log, signal: io.signal }), io.signal);
    if (!o.json) {
      io.stdout.write(
        `single TCP stream A -> B, IPv${e2e.family}, ${e2e.seconds} s per measurement, ` +
          `${o.repeats === 1 ? 'one measurement per setup' : `median of ${o.repeats} interleaved measurements per setup`}, traffic by ` +
          `${e2e.tool === 'iperf3' ? 'iperf3' : 'the built-in Node transfer (iperf3 not installed)'}\n`,
      );
      io.stdout.write(formatThroughputTable(e2e.runs.filter((r) => !r.setup.startsWith('multi-'))));
      io.stdout.write(
        `same-repeat ratios (median): offload / veth ${e2e.offloadVsVeth.toFixed(2)}, offload / no offload ${e2e.offloadVsNoOffload.toFixed(2)}\n\n`,
      );
      const m = e2e.multiStream;
      if (m !== undefined) {
        io.stdout.write(`${m.streams} TCP streams A -> B (iperf3 -P ${m.streams}), offload on, the same run:\n`);
        io.stdout.write(formatThroughputTable(e2e.runs.filter((r) => r.setup.startsWith('multi-')), 'vs 1 queue', m.queues));
        io.stdout.write(
          `same-repeat ratios (median): ${m.queues} queues with workers / 1 queue ${m.workersVsOneQueue.toFixed(2)} (target 1.50), ` +
            `/ ${m.queues} queues on the main thread ${m.workersVsMainThread.toFixed(2)}; ` +
            `queue 0 in a worker too / on the main thread ${m.allWorkersVsWorkers.toFixed(2)}\n\n`,
        );
      }
    }

    // UDP: vectun UdpSocket vs Node dgram, 1200-byte datagrams between the namespaces (src/bench/udp.ts).
    const { runUdpBenchmark, formatUdpResult } = await import('../bench/udp.js');
    throwIfAborted(io.signal);
    const udp = await raceAbort(runUdpBenchmark({ seconds: Math.min(o.seconds, 2), repeats: o.repeats, onProgress: log }), io.signal);
    if (!o.json) io.stdout.write(formatUdpResult(udp) + '\n');

    // The pure core runs in this process, after the end-to-end runs so they do not share the CPU.
    const { runCoreBenchmarks } = await import('../bench/core.js');
    throwIfAborted(io.signal);
    const core = runCoreBenchmarks({ batches: 200, repeats: 3, onProgress: o.json ? undefined : log });
    if (o.json) {
      io.stdout.write(JSON.stringify({ machine: facts, e2e, udp, core }, null, 2) + '\n');
    } else {
      io.stdout.write('offload core, one batch = 128 packets or one 64 KiB frame (median of 3 x 200 batches)\n');
      io.stdout.write(formatCoreTable(core));
    }
  });
}

/** `vectun bench wg`: the WireGuard comparison (src/bench/wg.ts); resolves to an exit code. */
export function runBenchWg(o: BenchOptions, io: CliIO): Promise<number> {
  return benchCommand('vectun bench wg', 'namespaces and processes', o, io, async (facts, log) => {
    const { runWgBenchmarks, formatWgBenchResult } = await import('../bench/wg.js');
    const result = await raceAbort(runWgBenchmarks({ seconds: o.seconds, repeats: o.repeats, onProgress: log, signal: io.signal }), io.signal);
    io.stdout.write(o.json ? `${JSON.stringify({ machine: facts, wg: result }, null, 2)}\n` : formatWgBenchResult(result));
  });
}

/**
 * What every bench command shares: the prerequisites (exit 3 naming what is
 * missing), the machine header, progress lines on stderr, and on SIGINT or
 * SIGTERM a note that `cleaned` were removed with the signal's exit code.
 */
async function benchCommand(
  name: string,
  cleaned: string,
  o: BenchOptions,
  io: CliIO,
  measure: (facts: MachineFacts, log: (line: string) => void) => Promise<void>,
): Promise<number> {
  const missing = describeMissing(checkPrerequisites({ namespaces: true }));
  if (missing !== undefined) {
    io.stderr.write(missing);
    return ExitCode.PREREQUISITES;
  }
  ensureIpOnPath();
  const facts = machineFacts();
  if (!o.json) io.stdout.write(`${name}\n${formatMachineFacts(facts)}\n`);
  const log = (line: string): void => void io.stderr.write(`  ${line}\n`);
  try {
    await measure(facts, log);
    return ExitCode.OK;
  } catch (err) {
    const stop = err instanceof Interrupted ? err : io.signal.aborted ? new Interrupted(String(io.signal.reason)) : undefined;
    if (stop !== undefined) {
      io.stderr.write(`\n${name}: ${stop.message}; ${cleaned} removed\n`);
      return stop.exitCode;
    }
    throw err;
  }
}
