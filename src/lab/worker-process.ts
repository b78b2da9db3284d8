/**
 * A node worker script run inside a lab namespace that reports on stdout, one
 * JSON message a line: `ready` (with the port it listens on), `result` or
 * `error`, and any other messages of its own. Shared by the lab transfers
 * (traffic.ts), the UDP ticker (wg.ts) and the UDP benchmark
 * (src/bench/udp.ts), whose workers speak this protocol.
 * @module
 */
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { VectunError } from '../errors.js';
import type { Netns } from './netns.js';

/** The messages every worker may send; `M` adds its own. */
export type BaseWorkerMessage<R> = { type: 'ready'; port: number } | { type: 'result'; result: R } | { type: 'error'; message: string };

/** A started worker: its process, its ready port and its final result. */
export interface WorkerProcess<R> {
  child: ChildProcess;
  /** The port from `ready`; rejects when the worker ends first. */
  ready: Promise<number>;
  /** The `result`; rejects on `error`, or when the worker ends without one. */
  result: Promise<R>;
}

/** How {@link startWorkerProcess} runs a worker, beyond its script and config. */
export interface WorkerProcessOptions<M> {
  /** Sees the worker's messages other than ready, result and error. */
  onMessage?: (msg: M) => void;
  /** A stdin pipe (`child.stdin`), for workers told to finish by its end; default none. */
  stdin?: boolean;
}

/**
 * Starts `node script JSON(config)` in `ns`. `label` names the worker in
 * errors (`ERR_LAB_TRAFFIC`).
 */
export function startWorkerProcess<R, M extends { type: string } = never>(
  ns: Netns,
  script: string,
  config: unknown,
  label: string,
  { onMessage, stdin = false }: WorkerProcessOptions<M> = {},
): WorkerProcess<R> {
  const child = ns.spawn(process.execPath, [script, JSON.stringify(config)], { stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  let onReady: (port: number) => void = () => undefined;
  let onFail: (err: Error) => void = () => undefined;
  const ready = new Promise<number>((resolve, reject) => {
    onReady = resolve;
    onFail = reject;
  });
  const result = new Promise<R>((resolve, reject) => {
    let settled: { result: R } | Error | undefined;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let msg: BaseWorkerMessage<R> | M;
      try {
        msg = JSON.parse(line) as BaseWorkerMessage<R> | M;
      } catch {
        return;
      }
      // `M` is generic, so narrow through the base union and hand the rest on.
      const base = msg as BaseWorkerMessage<R>;
      if (base.type === 'ready') onReady(base.port);
      else if (base.type === 'result') settled = { result: base.result };
      else if (base.type === 'error') settled = new VectunError('ERR_LAB_TRAFFIC', `${label}: ${base.message}`);
      else onMessage?.(msg as M);
    });
    child.once('error', (err) => reject(new VectunError('ERR_LAB_TRAFFIC', `${label}: ${err.message}`, { cause: err })));
    child.once('close', (code, signal) => {
      const err =
        settled instanceof Error
          ? settled
          : settled === undefined
            ? new VectunError('ERR_LAB_TRAFFIC', `${label} exited (${signal ?? code}) without a result: ${stderr.trim()}`)
            : undefined;
      onFail(err ?? new VectunError('ERR_LAB_TRAFFIC', `${label} exited before it was ready`));
      if (settled !== undefined && !(settled instanceof Error)) resolve(settled.result);
      else reject(err);
    });
  });
  // Callers await `ready` first; keep an early failure from being reported as unhandled twice.
  ready.catch(() => undefined);
  result.catch(() => undefined);
  return { child, ready, result };
}
