/**
 * `vectun demo`: two namespaces joined by two vectun TUN devices that this
 * process bridges, a sha256-verified TCP transfer with offload and then
 * without it, a live progress line and a summary table.
 *
 * Data path of one run: sender in A → kernel TCP (64 KiB TSO super-packets
 * with offload) → tunA → read + GSO split here → coalesce + writev → tunB →
 * kernel GRO → receiver in B. The topology (lab) removes the namespaces and
 * devices on every exit path; this file only makes sure it is asked to.
 * @module
 */
import { bridge, type BridgeHandle } from '../device/bridge.js';
import { createTunTopology, type TunTopology } from '../lab/topology.js';
import { tcpTransfer, type TransferProgress } from '../lab/traffic.js';
import { Interrupted, raceAbort, throwIfAborted } from './abort.js';
import { ExitCode } from './exit-codes.js';
import { ProgressReporter } from './format.js';
import { checkPrerequisites, describeMissing, ensureIpOnPath } from './prereq.js';
import type { CliIO, DemoOptions } from './program.js';
import { describeOffload, formatDemoSummary, snapshotCounters, type DemoRunResult } from './report.js';

/** Runs the demo; resolves to an exit code (see exit-codes.ts). */
export async function runDemo(o: DemoOptions, io: CliIO): Promise<number> {
  const missing = describeMissing(checkPrerequisites({ namespaces: true }));
  if (missing !== undefined) {
    io.stderr.write(missing);
    return ExitCode.PREREQUISITES;
  }
  ensureIpOnPath();
  const family = o.ipv6 ? 'IPv6' : 'IPv4';
  const plan = o.offload ? [true, false] : [false];
  io.stdout.write(
    `vectun demo: ${family} TCP for ${o.seconds} s per run through two TUN devices bridged by this process` +
      `${o.offload ? ', with offload and then without' : ', without offload'}\n`,
  );

  const runs: DemoRunResult[] = [];
  try {
    for (const offload of plan) runs.push(await oneRun(offload, o, io));
  } catch (err) {
    // A signal during setup surfaces as whatever step it broke (the lab removes namespaces at once).
    const stop = err instanceof Interrupted ? err : io.signal.aborted ? new Interrupted(String(io.signal.reason)) : undefined;
    if (stop !== undefined) {
      io.stderr.write(`\nvectun demo: ${stop.message}; namespaces and devices removed\n`);
      return stop.exitCode;
    }
    throw err;
  }

  io.stdout.write(`\n${formatDemoSummary(runs)}`);
  const bad = runs.filter((r) => !r.intact);
  if (bad.length > 0) {
    io.stderr.write(`vectun demo: data did not verify in: ${bad.map((r) => r.label).join(', ')}\n`);
    return ExitCode.VERIFY;
  }
  return ExitCode.OK;
}

async function oneRun(offload: boolean, o: DemoOptions, io: CliIO): Promise<DemoRunResult> {
  const label = offload ? 'offload' : 'no offload';
  throwIfAborted(io.signal);
  let topo: TunTopology | undefined;
  let handle: BridgeHandle | undefined;
  const progress = new ProgressReporter(io.stdout);
  try {
    topo = await createTunTopology({ offload });
    throwIfAborted(io.signal);
    const negotiatedA = describeOffload(topo.tunA.offload);
    const negotiatedB = describeOffload(topo.tunB.offload);
    const negotiated = negotiatedA === negotiatedB ? negotiatedA : `${negotiatedA} / ${negotiatedB}`;
    io.stdout.write(
      `\n[${label}] ${topo.a.ns.name} (${topo.a.dev}) <-> this process <-> ${topo.b.ns.name} (${topo.b.dev}); offload negotiated: ${negotiated}\n`,
    );

    // A failed bridge direction ends the run at once instead of letting the transfer time out.
    let bridgeFailed: (err: Error) => void = () => undefined;
    const failure = new Promise<never>((_, reject) => (bridgeFailed = reject));
    failure.catch(() => undefined);
    const onError = (err: Error, direction: string): void => {
      io.stderr.write(`\nvectun demo: bridge ${direction} stopped: ${err.message}\n`);
      bridgeFailed(err);
    };
    handle = bridge(topo.tunA, topo.tunB, { onError });
    const stats = handle.stats;

    // Rates over the last progress interval, not since the start, so the line shows what happens now.
    // Segments per frame come from tunA (GSO split of what the sender's kernel handed over),
    // packets per writev from tunB (GRO coalescing towards the receiver).
    const tunA = topo.tunA;
    const tunB = topo.tunB;
    let prev = { bytes: 0, ms: 0, written: 0, writes: 0, segments: 0, frames: 0 };
    const onProgress = (p: TransferProgress): void => {
      const ra = tunA.stats;
      const wb = tunB.stats;
      const dt = (p.elapsedMs - prev.ms) / 1000;
      progress.update({
        label,
        elapsed: p.elapsedMs / 1000,
        seconds: o.seconds,
        bytes: p.bytes,
        bitsPerSecond: dt > 0 ? ((p.bytes - prev.bytes) * 8) / dt : 0,
        packetsWritten: wb.packetsWritten - prev.written,
        writes: wb.writes - prev.writes,
        segmentsRead: ra.packetsRead - prev.segments,
        framesRead: ra.frames - prev.frames,
      });
      prev = { bytes: p.bytes, ms: p.elapsedMs, written: wb.packetsWritten, writes: wb.writes, segments: ra.packetsRead, frames: ra.frames };
    };

    const transfer = tcpTransfer({
      from: topo.a.ns,
      to: topo.b.ns,
      address: o.ipv6 ? topo.b.v6 : topo.b.v4,
      bytes: o.maxBytes,
      seconds: o.seconds,
      // Generous: the sender stops at `seconds`; the rest is startup and draining.
      timeoutMs: o.seconds * 1000 + 30_000,
      onProgress,
    });
    const result = await Promise.race([raceAbort(transfer, io.signal), failure]);
    progress.done();
    if (handle.error !== undefined) io.stderr.write(`vectun demo: the bridge reported: ${handle.error.message}\n`);

    return {
      label,
      negotiated,
      family: o.ipv6 ? 'IPv6' : 'IPv4',
      bytes: result.received.bytes,
      seconds: result.received.elapsedMs / 1000,
      intact: result.intact,
      sha256: result.received.sha256,
      data: snapshotCounters(stats.aToB),
      acks: snapshotCounters(stats.bToA),
      framesRead: tunA.stats.frames,
      segmentsRead: tunA.stats.packetsRead,
    };
  } finally {
    progress.done();
    // Stop, then remove without waiting for the stop: closing the devices settles the bridge's
    // pending reads and any write stuck on them, which lets the stop complete.
    const stopping = handle?.stop();
    if (topo !== undefined) await topo.remove();
    await stopping;
    if (handle !== undefined) await handle.done.catch(() => undefined);
  }
}
