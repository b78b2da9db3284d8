/**
 * Multi-queue bridge on every core: queue pair 0 (the devices' own
 * descriptors) is forwarded on the calling thread, every further pair i in
 * its own worker thread, which adopts queue i of both devices
 * (`Tun.queue(i)` → `Tun.fromFd`, IFF_MULTI_QUEUE, D-7) and runs the same
 * {@link bridge} loop there. The kernel spreads flows over the queues by
 * hash, so the pairs are independent and each thread reads, splits,
 * coalesces and writes its own flows.
 *
 * Why queue 0 stays here: the calling thread has nothing else to do while it
 * forwards (link events and signals are rare), and its descriptors carry the
 * devices' lifetime and link control; a worker for it would add a thread
 * without taking work off a busy one.
 *
 * Statistics: workers report their counters every {@link STATS_INTERVAL_MS}
 * and once more, final, when they stop; {@link QueueBridgeHandle.stats} sums
 * them with the calling thread's live counters.
 * @module
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { VectunError, type VectunErrorCode } from '../errors.js';
import { bridge, directionCounters, DirectionStats, type BridgeHandle, type BridgeStats, type DirectionCounters } from './bridge.js';
import type { Tun } from './tun.js';

/** How often a worker posts its counters while forwarding. */
export const STATS_INTERVAL_MS = 250;
/** How long {@link QueueBridgeHandle.stop} waits for a worker's final report before terminating it. */
const WORKER_STOP_TIMEOUT_MS = 10_000;

/** Options of {@link bridgeQueues}. */
export interface QueueBridgeOptions {
  /** Offload mode for the queues the workers adopt (`Tun.fromFd`); default true. */
  offload?: boolean | 'require';
  /** Stops every pair when aborted (like `stop()`). */
  signal?: AbortSignal;
  /** Called once per failing direction (any thread); the caller decides whether to stop. */
  onError?: (error: Error, where: { queue: number; direction: 'aToB' | 'bToA' }) => void;
  /**
   * Forward every pair on the calling thread (the single-threaded bridge,
   * for comparison); default false.
   */
  singleThread?: boolean;
}

/** Counters of one queue pair. */
export interface QueueStats extends BridgeStats {
  /** Queue number. */
  readonly queue: number;
  /** Where the pair runs: `main` (the calling thread) or `worker`. */
  readonly thread: 'main' | 'worker';
}

/** A running multi-queue bridge. */
export interface QueueBridgeHandle {
  /** Queue pairs bridged: min(a.queues, b.queues). */
  readonly queues: number;
  /** Both directions summed over every pair (workers as of their last report). */
  readonly stats: BridgeStats;
  /** Per pair, in queue order (workers as of their last report). */
  readonly perQueue: readonly QueueStats[];
  /** The first error of any pair, if any. */
  readonly error: Error | undefined;
  /**
   * Resolves once every worker has adopted its two queues (they are then
   * bound to the devices, which may move to other namespaces); rejects with
   * the first worker's failure to start.
   */
  readonly ready: Promise<void>;
  /**
   * Stops every pair. Resolves once the workers have stopped, closed their
   * queues and sent their final counters, and the calling thread's pair has
   * no write in flight; its reads settle when the caller closes `a` and `b`
   * (as with {@link bridge}).
   */
  stop(): Promise<void>;
  /** Resolves when every pair has finished (after `stop()` and closing `a` and `b`, or errors). */
  readonly done: Promise<void>;
}

/** @internal Counters as posted by a worker (plain numbers). */
export type Counters = DirectionCounters;

/** @internal Messages from bridge-worker.ts. */
export type WorkerMessage =
  | { type: 'adopted' }
  | { type: 'stats'; aToB: Counters; bToA: Counters }
  | { type: 'error'; code?: VectunErrorCode; message: string; direction: 'aToB' | 'bToA' }
  | { type: 'final'; aToB: Counters; bToA: Counters };

/** @internal What bridge-worker.ts receives as `workerData`. */
export interface WorkerSetup {
  fdA: number;
  fdB: number;
  queue: number;
  offload: boolean | 'require';
  statsIntervalMs: number;
}

const zero = (): Counters => directionCounters(new DirectionStats());

/** One pair forwarded by a worker thread. */
class WorkerPair {
  aToB = zero();
  bToA = zero();
  final = false;
  readonly exited: Promise<void>;
  /** Both queues adopted (see {@link QueueBridgeHandle.ready}). */
  readonly ready: Promise<void>;
  readonly #worker: Worker;
  #adopted = 0;
  #onReady: (err?: Error) => void = () => undefined;

  constructor(setup: WorkerSetup, onError: (e: Error, direction: 'aToB' | 'bToA') => void) {
    this.ready = new Promise<void>((resolve, reject) => (this.#onReady = (err) => (err === undefined ? resolve() : reject(err))));
    this.ready.catch(() => undefined); // observed through QueueBridgeHandle.ready
    this.#worker = new Worker(path.join(__dirname, 'bridge-worker.js'), { workerData: setup });
    this.#worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'adopted') {
        if (++this.#adopted === 2) this.#onReady();
      } else if (m.type === 'stats' || m.type === 'final') {
        this.aToB = m.aToB;
        this.bToA = m.bToA;
        if (m.type === 'final') this.final = true;
      } else if (m.type === 'error') {
        const e = new VectunError(m.code ?? 'ERR_TUN_WORKER', m.message);
        this.#onReady(e); // no-op once ready
        onError(e, m.direction);
      }
    });
    this.exited = new Promise((resolve) => {
      this.#worker.once('error', (err) => {
        const message = err instanceof Error ? err.message : String(err);
        const e = new VectunError('ERR_TUN_WORKER', `queue ${setup.queue} worker failed: ${message}`, { cause: err });
        this.#onReady(e);
        onError(e, 'aToB');
      });
      this.#worker.once('exit', () => {
        this.#onReady(new VectunError('ERR_TUN_WORKER', `queue ${setup.queue} worker exited before adopting its queues`));
        resolve();
      });
    });
  }

  /** Asks the worker to stop; resolves once it exited (terminated after a timeout). */
  async stop(): Promise<void> {
    this.#worker.postMessage({ type: 'stop' });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), WORKER_STOP_TIMEOUT_MS)));
    const r = await Promise.race([this.exited.then(() => 'exited' as const), timeout]);
    clearTimeout(timer);
    if (r === 'timeout') await this.#worker.terminate();
  }
}

/**
 * Bridges `a` and `b` queue pair by queue pair: pair 0 on this thread, pair
 * i ≥ 1 in a worker thread (see the module notes). Hands queues 1.. of both
 * devices over (`Tun.queue`); the workers close them when they stop.
 * @throws VectunError `ERR_INVALID_ARG` when `a` and `b` are the same device.
 */
export async function bridgeQueues(a: Tun, b: Tun, options: QueueBridgeOptions = {}): Promise<QueueBridgeHandle> {
  if (a === b) throw new VectunError('ERR_INVALID_ARG', 'bridge needs two different devices');
  const n = Math.min(a.queues, b.queues);
  const pairs: FdPair[] = [];
  for (let q = 1; q < n; q++) pairs.push({ queue: q, fdA: a.queue(q).fd, fdB: b.queue(q).fd });
  return start([a, b], pairs, options);
}

/** A queue of each device, by descriptor. */
interface FdPair {
  queue: number;
  fdA: number;
  fdB: number;
}

/**
 * @internal For the benchmark's comparison only (queue 0 in a worker too):
 * every pair of raw queue descriptors (`fdA[i]`, `fdB[i]`, IFF_MULTI_QUEUE,
 * opened with IFF_VNET_HDR) in its own worker, none on this thread. The
 * workers own and close the descriptors.
 */
export async function bridgeQueueFdsInWorkers(fdA: readonly number[], fdB: readonly number[], options: QueueBridgeOptions = {}): Promise<QueueBridgeHandle> {
  const n = Math.min(fdA.length, fdB.length);
  return start(undefined, Array.from({ length: n }, (_, q) => ({ queue: q, fdA: fdA[q]!, fdB: fdB[q]! })), options);
}

async function start(pair0: [Tun, Tun] | undefined, pairs: readonly FdPair[], options: QueueBridgeOptions): Promise<QueueBridgeHandle> {
  const n = pairs.length + (pair0 === undefined ? 0 : 1);
  const offload = options.offload ?? true;
  let error: Error | undefined;
  let stopped = false;
  const report = (e: Error, queue: number, direction: 'aToB' | 'bToA'): void => {
    if (stopped) return; // closing after stop() is expected
    error ??= e;
    options.onError?.(e, { queue, direction });
  };

  const local: { queue: number; handle: BridgeHandle; extra: Tun[] }[] = [];
  const workers: { queue: number; pair: WorkerPair }[] = [];
  if (pair0 !== undefined) local.push({ queue: 0, handle: bridge(pair0[0], pair0[1], { onError: (e, d) => report(e, 0, d) }), extra: [] });
  try {
    for (const { queue: q, fdA, fdB } of pairs) {
      if (options.singleThread === true) {
        const { Tun: TunClass } = await import('./tun.js');
        const ta = await TunClass.fromFd(fdA, { offload });
        const tb = await TunClass.fromFd(fdB, { offload });
        local.push({ queue: q, handle: bridge(ta, tb, { onError: (e, d) => report(e, q, d) }), extra: [ta, tb] });
      } else {
        const setup: WorkerSetup = { fdA, fdB, queue: q, offload, statsIntervalMs: STATS_INTERVAL_MS };
        workers.push({ queue: q, pair: new WorkerPair(setup, (e, d) => report(e, q, d)) });
      }
    }
  } catch (err) {
    stopped = true;
    await Promise.all(workers.map((w) => w.pair.stop()));
    for (const l of local) {
      void l.handle.stop();
      for (const t of l.extra) await t.close();
    }
    throw err;
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      stopped = true;
      const localStops = local.map((l) => l.handle.stop());
      // Queues this thread adopted (singleThread) are closed here; `a` and `b` by the caller.
      for (const l of local) for (const t of l.extra) await t.close();
      await Promise.all([...localStops, ...workers.map((w) => w.pair.stop())]);
    })());
  const onAbort = (): void => void stop();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) void stop();

  const perQueue = (): QueueStats[] => {
    const rows: QueueStats[] = [];
    for (const l of local) {
      rows.push({ queue: l.queue, thread: 'main', aToB: new DirectionStats(directionCounters(l.handle.stats.aToB)), bToA: new DirectionStats(directionCounters(l.handle.stats.bToA)) });
    }
    for (const w of workers) rows.push({ queue: w.queue, thread: 'worker', aToB: new DirectionStats(w.pair.aToB), bToA: new DirectionStats(w.pair.bToA) });
    return rows.sort((x, y) => x.queue - y.queue);
  };

  const ready = Promise.all(workers.map((w) => w.pair.ready)).then(() => undefined);
  ready.catch(() => undefined); // a caller that never awaits it still sees the failure through onError
  const done = Promise.all([...local.map((l) => l.handle.done), ...workers.map((w) => w.pair.exited)]).then(() => {
    options.signal?.removeEventListener('abort', onAbort);
  });

  return {
    queues: n,
    get stats(): BridgeStats {
      const aToB = new DirectionStats();
      const bToA = new DirectionStats();
      for (const q of perQueue()) {
        aToB.add(q.aToB);
        bToA.add(q.bToA);
      }
      return { aToB, bToA };
    },
    get perQueue() {
      return perQueue();
    },
    get error() {
      return error ?? local.map((l) => l.handle.error).find((e) => e !== undefined);
    },
    ready,
    stop,
    done,
  };
}
