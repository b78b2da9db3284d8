/**
 * Bounded TCP and UDP transfers between two lab namespaces, each side a
 * `traffic-worker.js` process started inside its namespace. Results carry byte
 * counts, sha256 on both ends (TCP) or per-datagram verification (UDP), and
 * timing. Every transfer has a hard time limit after which both workers are
 * killed and the promise rejects with `ERR_LAB_TIMEOUT`.
 * @module
 */
import { join } from 'node:path';
import { VectunError } from '../errors.js';
import { assertLabAddress, type Netns } from './netns.js';
import { startWorkerProcess, type WorkerProcess } from './worker-process.js';
import type { TcpSideResult, UdpReceiveResult, UdpSendResult, WorkerConfig, WorkerMessage } from './traffic-worker.js';

export type { TcpSideResult, UdpReceiveResult, UdpSendResult } from './traffic-worker.js';

const WORKER = join(__dirname, 'traffic-worker.js');
/** Extra time the parent allows beyond a worker's own limit (startup, reporting). */
const GRACE_MS = 5_000;

/** Live progress of the receiving side. */
export interface TransferProgress {
  bytes: number;
  elapsedMs: number;
}

/** Options of {@link tcpTransfer}. */
export interface TcpTransferOptions {
  /** Namespace of the sender. */
  from: Netns;
  /** Namespace of the receiver. */
  to: Netns;
  /** Receiver address inside `to` (198.18.0.0/15 or 2001:2::/48). */
  address: string;
  /** Bytes to send (upper bound when `seconds` is set). */
  bytes: number;
  /** Stop sending after this many seconds (throughput runs). */
  seconds?: number;
  /** Hard limit for the whole transfer. */
  timeoutMs: number;
  /** Seed of the pseudo-random stream; default 1. */
  seed?: number;
  onProgress?: (progress: TransferProgress) => void;
}

/** Outcome of {@link tcpTransfer}. */
export interface TcpTransferResult {
  sent: TcpSideResult;
  received: TcpSideResult;
  /** Same byte count and sha256 on both ends (and all `bytes` sent unless `seconds` bounded it). */
  intact: boolean;
  /** Receiver goodput, first byte to end of stream. */
  gbitPerSecond: number;
}

/** Options of {@link udpTransfer}. */
export interface UdpTransferOptions {
  from: Netns;
  to: Netns;
  address: string;
  /** Datagrams to send. */
  count: number;
  /** UDP payload bytes per datagram (≥ 16; at most the path MTU minus headers). */
  size: number;
  /** Datagrams in flight before the sender waits for an ack; default 64. */
  window?: number;
  timeoutMs: number;
  seed?: number;
}

/** Outcome of {@link udpTransfer}. */
export interface UdpTransferResult {
  sent: UdpSendResult;
  received: UdpReceiveResult;
  /** Every datagram arrived exactly once with the right contents. */
  intact: boolean;
}

type Worker = WorkerProcess<unknown>;

function startWorker(ns: Netns, config: WorkerConfig, onProgress?: (p: TransferProgress) => void): Worker {
  return startWorkerProcess<unknown, Extract<WorkerMessage, { type: 'progress' }>>(ns, WORKER, config, `${config.mode} in ${ns.name}`, {
    onMessage: (msg) => {
      // Other message types (none today) are ignored, as before the shared starter.
      if (msg.type === 'progress') onProgress?.({ bytes: msg.bytes, elapsedMs: msg.elapsedMs });
    },
  });
}

/** Runs `body` with a hard time limit; on expiry kills the workers and rejects. */
async function bounded<T>(workers: Worker[], timeoutMs: number, what: string, body: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new VectunError('ERR_LAB_TIMEOUT', `${what} did not finish within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([body(), limit]);
  } finally {
    clearTimeout(timer);
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  }
}

/**
 * Streams `bytes` deterministic pseudo-random bytes over one TCP connection
 * from `from` to `address` in `to`, and compares sha256 on both ends.
 * @throws VectunError `ERR_LAB_TIMEOUT`, `ERR_LAB_TRAFFIC` (a side failed).
 */
export async function tcpTransfer(o: TcpTransferOptions): Promise<TcpTransferResult> {
  assertLabAddress(o.address);
  const workers: Worker[] = [];
  return bounded(workers, o.timeoutMs + GRACE_MS, `tcp transfer of ${o.bytes} bytes to ${o.address}`, async () => {
    const receiver = startWorker(
      o.to,
      { mode: 'tcp-recv', host: o.address, port: 0, maxBytes: o.bytes, timeoutMs: o.timeoutMs, progressMs: 250 },
      o.onProgress,
    );
    workers.push(receiver);
    const port = await receiver.ready;
    const sender = startWorker(o.from, {
      mode: 'tcp-send',
      host: o.address,
      port,
      bytes: o.bytes,
      ...(o.seconds === undefined ? {} : { seconds: o.seconds }),
      seed: o.seed ?? 1,
      timeoutMs: o.timeoutMs,
      progressMs: 250,
    });
    workers.push(sender);
    const [sent, received] = (await Promise.all([sender.result, receiver.result])) as [TcpSideResult, TcpSideResult];
    return {
      sent,
      received,
      // Without a time bound every requested byte must have gone out, too.
      intact: sent.bytes === received.bytes && sent.sha256 === received.sha256 && (o.seconds !== undefined || sent.bytes === o.bytes),
      gbitPerSecond: received.elapsedMs > 0 ? (received.bytes * 8) / (received.elapsedMs * 1e6) : 0,
    };
  });
}

/**
 * Sends `count` datagrams of `size` bytes from `from` to `address` in `to`;
 * the receiver checks each one's index, length, checksum and exact body.
 * @throws VectunError `ERR_LAB_TIMEOUT`, `ERR_LAB_TRAFFIC` (a side failed).
 */
export async function udpTransfer(o: UdpTransferOptions): Promise<UdpTransferResult> {
  assertLabAddress(o.address);
  if (!Number.isInteger(o.size) || o.size < 16 || o.size > 65_000) {
    throw new VectunError('ERR_INVALID_ARG', `options.size must be an integer in 16..65000, got ${o.size}`);
  }
  const workers: Worker[] = [];
  const seed = o.seed ?? 1;
  return bounded(workers, o.timeoutMs + GRACE_MS, `udp transfer of ${o.count} datagrams to ${o.address}`, async () => {
    const receiver = startWorker(o.to, { mode: 'udp-recv', host: o.address, port: 0, count: o.count, seed, timeoutMs: o.timeoutMs, idleMs: 1000 });
    workers.push(receiver);
    const port = await receiver.ready;
    const sender = startWorker(o.from, {
      mode: 'udp-send',
      host: o.address,
      port,
      count: o.count,
      size: o.size - 16,
      seed,
      window: o.window ?? 64,
      timeoutMs: o.timeoutMs,
    });
    workers.push(sender);
    const [sent, received] = (await Promise.all([sender.result, receiver.result])) as [UdpSendResult, UdpReceiveResult];
    return {
      sent,
      received,
      intact: received.received === o.count && received.missing === 0 && received.duplicates === 0 && received.corrupt === 0,
    };
  });
}
