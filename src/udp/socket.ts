/**
 * `UdpSocket`: batched UDP with segmentation offload, what Node's `dgram`
 * lacks. Sends go out through sendmmsg(2), runs of equal-size datagrams to one
 * destination as single UDP_SEGMENT (GSO) messages; receives come in through
 * recvmmsg(2) with UDP_GRO, coalesced receives split into datagram views on an
 * {@link Arena}.
 *
 * This file is the public surface and the wiring; each concern lives in its
 * own file, as functions over the socket's state (`socket-state.ts`):
 * - `socket-open.ts`: options, socket(2)/bind, GSO/GRO probing, connect;
 * - `socket-read.ts`: the receive path, GRO split, event mode;
 * - `socket-send.ts`: the send path, plan execution, the GSO fallbacks;
 * - `socket-stats.ts`: counters;
 * - `src/io/event-loop.ts` (shared with Tun): pending readers, event mode,
 *   readiness (uv_poll), AbortSignal and close.
 *
 * Shaped like {@link Tun} (and `dgram.Socket`): private state in one
 * symbol-keyed object, an open check in every method, idempotent `close()`
 * emitting `'close'` on the next tick, `-errno` results turned into
 * `VectunError`s, reads driven by the shared `uv_poll` watcher.
 *
 * Fallbacks instead of failures (quinn-udp and wireguard-go's StdNetBind do
 * the same): no UDP_SEGMENT at open → one datagram per message; EIO on a GSO
 * send (the route's device cannot checksum, so the kernel cannot segment) →
 * GSO off for the socket, one `'warning'`, the rest of the batch resent
 * without it; EINVAL on a GSO send (segments above the path MTU) → that
 * message resent one datagram at a time and smaller segment sizes only.
 * @module
 */
import { EventEmitter } from 'node:events';
import { VectunError } from '../errors.js';
import type { Arena } from '../core/arena.js';
import { batches, closeHandle, closeOnAbort, onPoll, pause, read, resume, resumeOnListener } from '../io/event-loop.js';
import { UdpEndpoint } from './address.js';
import { connect, initialState, openSocket, type OpenedSocket, type UdpCapabilities, type UdpOpenOptions } from './socket-open.js';
import { UDP_IO, type UdpBatch } from './socket-read.js';
import { send, sendBatch, type UdpSendResult, type UdpTransmit } from './socket-send.js';
import { checkOpen, kState, udpError, type UdpState } from './socket-state.js';
import { snapshotStats, type UdpStats } from './socket-stats.js';

export { UdpEndpoint } from './address.js';
export { UDP_DEFAULT_BATCH } from './socket-open.js';
export type { UdpCapabilities, UdpOpenOptions } from './socket-open.js';
export { UDP_RECV_SLOT } from './socket-read.js';
export type { UdpBatch } from './socket-read.js';
export type { UdpSendFailure, UdpSendResult, UdpTransmit } from './socket-send.js';
export { udpError } from './socket-state.js';
export type { UdpStats } from './socket-stats.js';

/** Events of a {@link UdpSocket} and their listener arguments (documentation; `on` stays EventEmitter's). */
export interface UdpSocketEvents {
  /** A batch in event mode; views valid until the next batch (pause() to hold them). */
  datagrams: [batch: UdpBatch];
  /** ERR_UDP_GSO_FALLBACK, once. */
  warning: [warning: VectunError];
  /** A receive failed in event mode. */
  error: [error: VectunError];
  /** The socket is closed; emitted once, on the next tick after close(). */
  close: [];
}

/**
 * A batched UDP socket. Create with {@link UdpSocket.open}; address peers
 * with endpoints from {@link UdpSocket.endpoint}.
 *
 * Events: `'datagrams'` (batch; event mode, see {@link UdpSocket.pause}),
 * `'warning'` (`ERR_UDP_GSO_FALLBACK`, once), `'error'` (a receive failure in
 * event mode), `'close'`.
 */
export class UdpSocket extends EventEmitter {
  /** @internal */
  readonly [kState]: UdpState;

  private constructor(state: UdpState) {
    super();
    this[kState] = state;
    resumeOnListener(this, UDP_IO);
  }

  /**
   * A validated destination (or any endpoint), its sockaddr bytes built once.
   * Reuse it for every send to that peer.
   * @throws VectunError `ERR_UDP_INVALID_ENDPOINT`.
   */
  static endpoint(address: string, port: number): UdpEndpoint {
    return UdpEndpoint.of(address, port);
  }

  /**
   * Opens and binds a socket, probes GSO/GRO (see {@link UdpSocket.capabilities}).
   * @throws VectunError `ERR_INVALID_ARG`, `ERR_UDP_INVALID_ENDPOINT`, `ERR_UDP_SYSCALL` (e.g. EADDRINUSE, EPERM for fwmark).
   */
  static async open(options: UdpOpenOptions = {}): Promise<UdpSocket> {
    const opened = openSocket(options);
    try {
      return UdpSocket.#create(opened);
    } catch (err) {
      opened.binding.close(opened.fd);
      throw err;
    }
  }

  static #create(opened: OpenedSocket): UdpSocket {
    const b = opened.binding;
    let sock: UdpSocket | undefined;
    const poller = b.pollCreate(opened.fd, (status, events) => {
      if (sock !== undefined) onPoll(sock, UDP_IO, status, events);
    });
    if (typeof poller === 'number') throw udpError(poller, 'uv_poll_init');
    const state = initialState(opened, poller);
    const s = new UdpSocket(state);
    sock = s;
    closeOnAbort(state, () => s.close());
    return s;
  }

  /** The bound address and port (the kernel's pick when port 0 was asked). */
  get localAddress(): UdpEndpoint {
    return this[kState].local;
  }

  /** The connected peer, if {@link UdpSocket.connect} was called. */
  get remoteAddress(): UdpEndpoint | undefined {
    return this[kState].remote;
  }

  /** What the kernel offers and the socket uses now (gso turns false after an EIO fallback). */
  get capabilities(): UdpCapabilities {
    const s = this[kState];
    return { gso: s.gso, gro: s.gro, maxSegments: s.limits.maxSegments };
  }

  /** Messages per recvmmsg/sendmmsg call. */
  get batchSize(): number {
    return this[kState].batchSize;
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this[kState].closed;
  }

  /** A snapshot of the counters. */
  get stats(): UdpStats {
    return snapshotStats(this[kState].stats);
  }

  /**
   * Connects the socket (connect(2)): the kernel then filters receives to
   * that peer and reports ICMP errors (ECONNREFUSED) on later sends.
   * `send(datagrams)` may then omit the destination.
   */
  async connect(destination: UdpEndpoint): Promise<void> {
    connect(this, destination);
  }

  // ---------------------------------------------------------------- receiving (socket-read.ts)

  /**
   * One batch of datagrams with their sources. The views point into the
   * socket's arena and are valid until the next read. Rejects with
   * `ERR_UDP_CLOSED` on close.
   */
  read(): Promise<UdpBatch> {
    return read(this, UDP_IO);
  }

  /** Batches as from {@link UdpSocket.read} until the socket closes; same view lifetime. */
  [Symbol.asyncIterator](): AsyncGenerator<UdpBatch, void, undefined> {
    return batches(this, UDP_IO);
  }

  /** Stops event mode: no `'datagrams'` until `resume()`; unread datagrams stay in the kernel's queue. */
  pause(): this {
    pause(this, UDP_IO);
    return this;
  }

  /** Starts (or restarts) event mode: each batch is emitted as `'datagrams'`. */
  resume(): this {
    resume(this, UDP_IO);
    return this;
  }

  // ---------------------------------------------------------------- sending (socket-send.ts)

  /**
   * Sends `datagrams` to one destination (or to the connected peer when
   * omitted): equal-size runs as UDP_SEGMENT messages, the rest one per
   * message, all through sendmmsg. Buffers are sent from where they are and
   * must stay unchanged until the promise settles. Resolves when the kernel
   * took them; per-datagram failures (with their index) are in the result.
   * An empty array is a no-op.
   * @throws VectunError (rejects) `ERR_UDP_CLOSED`, `ERR_UDP_INVALID_ENDPOINT`, `ERR_INVALID_ARG`.
   */
  send(datagrams: readonly Uint8Array[], destination?: UdpEndpoint): Promise<UdpSendResult> {
    return send(this, datagrams, destination);
  }

  /**
   * Sends datagrams to several destinations in one batch; consecutive
   * transmits to the same destination with the same size form GSO runs.
   * A transmit with a bad destination or an oversized datagram fails alone
   * (in `failures`); the others are sent.
   * @throws VectunError (rejects) `ERR_UDP_CLOSED`, `ERR_INVALID_ARG`.
   */
  sendBatch(transmits: readonly UdpTransmit[]): Promise<UdpSendResult> {
    return sendBatch(this, transmits);
  }

  // ---------------------------------------------------------------- the event loop

  /** Lets the process exit while a read waits (like `socket.unref()`). */
  unref(): this {
    const s = checkOpen(this, 'unref');
    s.binding.pollRef(s.poller, false);
    return this;
  }

  /** Undoes {@link UdpSocket.unref}: a waiting read keeps the process alive again. */
  ref(): this {
    const s = checkOpen(this, 'ref');
    s.binding.pollRef(s.poller, true);
    return this;
  }

  // ---------------------------------------------------------------- closing

  /**
   * Closes the socket. Idempotent; pending reads and sends reject with
   * `ERR_UDP_CLOSED`; `'close'` follows on the next tick.
   */
  close(): Promise<void> {
    const s = this[kState];
    return closeHandle(this, UDP_IO, () => s.binding.close(s.fd));
  }

  /** `await using sock = await UdpSocket.open()`: closes the socket. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
