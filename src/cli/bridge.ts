/**
 * `vectun bridge <ifA> <ifB>`: opens (creating, or attaching to persistent)
 * TUN devices and forwards packets both ways until SIGINT/SIGTERM, then
 * prints the statistics.
 *
 * The devices may be configured from outside while it runs: moved to another
 * namespace, addressed, brought down and up, MTU changed. None of that
 * invalidates the file descriptor, so forwarding simply continues; the events
 * are logged on stderr. Only the deletion of a device ends the bridge.
 *
 * With `--queues N` each further queue pair runs in its own worker thread
 * (src/device/bridge-queues.ts), so N queues use up to N cores.
 * @module
 */
import { bridgeQueues } from '../device/bridge-queues.js';
import type { Tun } from '../device/tun.js';
import { VectunError } from '../errors.js';
import { ExitCode } from './exit-codes.js';
import { PERMISSION_FIX, checkPrerequisites, describeMissing } from './prereq.js';
import { describeError, type BridgeOptions, type CliIO } from './program.js';
import { bridgeStatsJson, describeOffload, formatBridgeStats } from './report.js';

/** Events worth a log line while bridging (device contract, architecture.md). */
const LOGGED_EVENTS = ['up', 'down', 'mtu', 'moved', 'removed', 'warning'] as const;

/** Runs the bridge; resolves to an exit code once stopped. */
export async function runBridge(o: BridgeOptions, io: CliIO): Promise<number> {
  if (o.ifA === o.ifB) {
    io.stderr.write('vectun bridge: ifA and ifB must be two different devices\n');
    return ExitCode.USAGE;
  }
  const missing = describeMissing(checkPrerequisites({ namespaces: false }));
  if (missing !== undefined) {
    io.stderr.write(missing);
    return ExitCode.PREREQUISITES;
  }

  const { Tun } = await import('../device/tun.js');
  const tuns: Tun[] = [];
  const log = (line: string): void => void io.stderr.write(`vectun bridge: ${line}\n`);
  try {
    for (const name of [o.ifA, o.ifB]) {
      try {
        tuns.push(await Tun.open({ name, offload: o.offload, queues: o.queues }));
      } catch (err) {
        if (err instanceof VectunError && err.code === 'ERR_TUN_PERMISSION') {
          log(`cannot open ${name}: ${err.message}\n  fix: ${PERMISSION_FIX}`);
          return ExitCode.PREREQUISITES;
        }
        throw err;
      }
    }
    const [a, b] = tuns as [Tun, Tun];
    const offloadA = describeOffload(a.offload);
    const offloadB = describeOffload(b.offload);
    for (const t of tuns) {
      for (const ev of LOGGED_EVENTS) t.on(ev, (...args: unknown[]) => log(`${t.name}: ${ev}${formatDetail(args[0])}`));
    }
    // Without an 'error' listener an EventEmitter error would crash the process.
    for (const t of tuns) t.on('error', (err: unknown) => log(`${t.name}: error: ${describeError(err)}`));
    const started = process.hrtime.bigint();
    // A signal, or a failing direction (e.g. a device deleted), ends the run. The loop of the
    // other direction may still wait on a read, so the failure is signalled here, not by `done`.
    let onFailure: () => void = () => undefined;
    const failed = new Promise<void>((resolve) => (onFailure = resolve));
    // Queue pair 0 on this thread, every further pair in its own worker thread (bridge-queues.ts).
    const fwd = await bridgeQueues(a, b, {
      offload: o.offload,
      onError: (err, { queue, direction }) => {
        log(`${direction === 'aToB' ? `${a.name} -> ${b.name}` : `${b.name} -> ${a.name}`} (queue ${queue}) stopped: ${describeError(err)}`);
        onFailure();
      },
    });
    // Announced once every worker holds its queues: from then on the devices may be moved.
    await fwd.ready.then(
      () => log(
        `forwarding ${a.name} (offload: ${offloadA}) <-> ${b.name} (offload: ${offloadB}), ${a.queues} queue(s)` +
          `${fwd.queues > 1 ? `, ${fwd.queues - 1} in worker threads` : ''}; stop with Ctrl-C or SIGTERM`,
      ),
      () => onFailure(), // already logged by onError
    );
    await Promise.race([
      new Promise<void>((resolve) => (io.signal.aborted ? resolve() : io.signal.addEventListener('abort', () => resolve(), { once: true }))),
      failed,
    ]);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    // Stop, then close without waiting for the stop: closing settles the reads the loops still
    // wait on and rejects a write stuck on a vanished device, which lets the stop complete.
    // The workers stop, close their queues and report their final counters; then this
    // thread closes queue 0, and with the last descriptor the kernel removes a device it created.
    const stopping = fwd.stop();
    for (const t of tuns.splice(0)) await t.close();
    await stopping;
    await fwd.done.catch(() => undefined);

    const stats = fwd.stats;
    const error = fwd.error;
    const names = { a: o.ifA, b: o.ifB };
    if (o.json) {
      io.stdout.write(
        bridgeStatsJson(names, { a: offloadA, b: offloadB }, stats, seconds, error === undefined ? undefined : describeError(error), fwd.perQueue),
      );
    } else {
      io.stdout.write(formatBridgeStats(names, stats, seconds));
    }
    if (error !== undefined) return ExitCode.FAILURE;
    return ExitCode.OK;
  } finally {
    for (const t of tuns) await t.close().catch(() => undefined);
  }
}

function formatDetail(detail: unknown): string {
  if (detail === undefined || detail === null) return '';
  if (typeof detail === 'object') {
    if (detail instanceof Error) return `: ${detail.message}`;
    try {
      return ` ${JSON.stringify(detail)}`;
    } catch {
      return '';
    }
  }
  return ` ${String(detail)}`;
}
