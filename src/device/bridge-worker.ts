/**
 * Worker-thread entry of {@link bridgeQueues} (bridge-queues.ts): adopts
 * queue i of both devices (`Tun.fromFd`), forwards them with the
 * {@link bridge} loop, posts its counters every `statsIntervalMs` and, on
 * `{ type: 'stop' }`, stops, closes both queues, posts the final counters
 * and lets the thread end.
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads';
import { VectunError } from '../errors.js';
import { bridge, directionCounters, DirectionStats, type BridgeHandle } from './bridge.js';
import type { WorkerMessage, WorkerSetup } from './bridge-queues.js';
import { loadBinding } from './native.js';
import { Tun } from './tun.js';

const port = parentPort;
const setup = workerData as WorkerSetup;


async function main(): Promise<void> {
  if (port === null) throw new Error('bridge-worker.js runs only as a worker thread');
  const post = (m: WorkerMessage): void => port.postMessage(m);
  const tuns: Tun[] = [];
  let handle: BridgeHandle | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopRequested = false;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  port.on('message', (m: { type?: string }) => {
    if (m.type === 'stop') {
      stopRequested = true;
      finish();
    }
  });
  const fail = (err: unknown, direction: 'aToB' | 'bToA'): void => {
    const e = err instanceof VectunError ? err : new VectunError('ERR_TUN_WORKER', err instanceof Error ? err.message : String(err));
    post({ type: 'error', code: e.code, message: `queue ${setup.queue}: ${e.message}`, direction });
  };
  try {
    const pending = [setup.fdA, setup.fdB];
    try {
      while (pending.length > 0) {
        tuns.push(await Tun.fromFd(pending[0]!, { offload: setup.offload }));
        pending.shift();
        post({ type: 'adopted' });
      }
    } catch (err) {
      // The descriptor that failed was closed by fromFd (or is unusable); close the one not yet tried.
      const binding = loadBinding();
      for (const fd of pending.slice(1)) binding.close(fd);
      throw err;
    }
    const [a, b] = tuns as [Tun, Tun];
    if (!stopRequested) {
      handle = bridge(a, b, { onError: (e, d) => fail(e, d) });
      timer = setInterval(() => {
        if (handle !== undefined) post({ type: 'stats', aToB: directionCounters(handle.stats.aToB), bToA: directionCounters(handle.stats.bToA) });
      }, setup.statsIntervalMs);
      // A failing direction stops the loop; the parent decides when to stop the worker.
      await finished;
    }
  } catch (err) {
    fail(err, 'aToB');
    await finished;
  } finally {
    if (timer !== undefined) clearInterval(timer);
    // Stop, close (settles the pending reads), then wait for both loops.
    const stopping = handle?.stop();
    for (const t of tuns) await t.close().catch(() => undefined);
    await stopping;
    await handle?.done.catch(() => undefined);
    const zero = directionCounters(new DirectionStats());
    port?.postMessage({
      type: 'final',
      aToB: handle ? directionCounters(handle.stats.aToB) : zero,
      bToA: handle ? directionCounters(handle.stats.bToA) : zero,
    } satisfies WorkerMessage);
    port?.close();
  }
}

void main();
