/**
 * The `Tun` class: a Linux TUN device with virtio-net offloads, batched reads
 * (GSO split) and scatter-gather writes (GRO coalescing).
 *
 * This file is the public surface and the wiring; each concern lives in its
 * own file, as functions over the Tun's state (`tun-state.ts`):
 * - `tun-open.ts`: options, TUNSETIFF on every queue, offload negotiation
 *   (DEV-1..DEV-9, D-7, D-8);
 * - `tun-read.ts`: the read path, GSO split, event mode (RD-1, RD-2, D-5);
 * - `tun-write.ts`: the write path, GRO coalescing, the EINVAL fallback
 *   (WR-1, SG-1..SG-6, D-6, style rule 3);
 * - `tun-link.ts`: rtnetlink link control and link events;
 * - `tun-stats.ts`: counters;
 * - `src/io/event-loop.ts` (shared with UdpSocket): pending readers, event
 *   mode, readiness (uv_poll), AbortSignal and close.
 *
 * Shaped like `dgram.Socket`: private state in one symbol-keyed object, an
 * open check in every method, idempotent `close()` emitting `'close'` on the
 * next tick, native `-errno` results turned into `VectunError`s.
 * @module
 */
import { EventEmitter } from 'node:events';
import { VectunError } from '../errors.js';
import { Coalescer } from '../core/gro.js';
import { batches, closeHandle, closeOnAbort, onPoll, pause, read, resume, resumeOnListener } from '../io/event-loop.js';
import { syscallError } from './native.js';
import { addAddress, addRoute, onLinkEvent, openLinkSockets, setMtu, setUp, type LinkSockets, type TunMove } from './tun-link.js';
import { adoptDescriptor, closeAll, openDevice, type OpenedDevice, type TunFromFdOptions, type TunOffload, type TunOpenOptions } from './tun-open.js';
import { DEFAULT_BATCH, TUN_IO } from './tun-read.js';
import { checkOpen, kState, type TunState } from './tun-state.js';
import { invalid } from '../options.js';
import { emptyStats, snapshotStats, type TunStats } from './tun-stats.js';
import { setGro, write, type TunWriteOptions, type WriteResult } from './tun-write.js';

export type { TunFromFdOptions, TunOffload, TunOpenOptions } from './tun-open.js';
export { DEFAULT_BATCH, READ_SLOT } from './tun-read.js';
export type { TunMove } from './tun-link.js';
export type { TunStats } from './tun-stats.js';
export type { TunWriteOptions, WriteFailure, WriteResult } from './tun-write.js';

/** A queue descriptor handed out by {@link Tun.queue}, for `Tun.fromFd` in a worker. */
export interface TunQueueHandle {
  /** The queue's descriptor; ownership passes to whoever adopts it. */
  fd: number;
  /** Queue number, 1 .. queues - 1 (queue 0 stays with the Tun). */
  index: number;
  /** Interface name of the device. */
  name: string;
}

/** Events of a {@link Tun} and their listener arguments (documentation; `on` stays EventEmitter's). */
export interface TunEvents {
  /** A batch in event mode; views valid until the next batch (pause() to hold them). */
  packets: [batch: Uint8Array[]];
  /** The MTU changed (from outside or by setMtu). */
  mtu: [mtu: number];
  /** The link was brought up (from outside or by setUp). */
  up: [];
  /** The link was brought down; writes fail with EIO until it is up again. */
  down: [];
  /** The device was deleted; I/O now fails with ERR_TUN_REMOVED. */
  removed: [];
  /**
   * The device was moved to another network namespace; I/O continues. Link
   * control and link events follow it there (`to.followed`), after which
   * `ifindex` (and `name`, if renamed) are those of the new namespace.
   */
  moved: [to: TunMove];
  /** ERR_TUN_GRO_FALLBACK, once per protocol. */
  warning: [warning: VectunError];
  /** A malformed frame was dropped (and counted in stats.readDrops). */
  drop: [error: VectunError];
  /** A read failed in event mode. */
  error: [error: VectunError];
  /** The handle is closed; emitted once, on the next tick after close(). */
  close: [];
}

/**
 * A TUN device. Create with {@link Tun.open} or adopt a descriptor with
 * {@link Tun.fromFd}.
 *
 * Events: `'packets'` (batch; event mode, see {@link Tun.pause}), `'mtu'`
 * (new MTU), `'up'`, `'down'`, `'removed'` (deleted from outside; pending and
 * later I/O fail with `ERR_TUN_REMOVED`), `'moved'` ({@link TunMove}: moved to
 * another network namespace; I/O keeps working, and link control and link
 * events follow the device there, TUNGETDEVNETNS, Linux 5.2+), `'warning'`
 * (`ERR_TUN_GRO_FALLBACK`, once per protocol), `'drop'` (a malformed frame,
 * counted in `stats.readDrops`), `'error'` (a read failure in event mode),
 * `'close'`.
 */
export class Tun extends EventEmitter {
  /** @internal */
  readonly [kState]: TunState;

  private constructor(state: TunState) {
    super();
    this[kState] = state;
    resumeOnListener(this, TUN_IO);
  }

  /**
   * Creates (or attaches to) a TUN device and negotiates offloads (DEV-1,
   * DEV-3, D-7, D-8).
   * @throws VectunError `ERR_TUN_PERMISSION`, `ERR_TUN_UNAVAILABLE`,
   *   `ERR_TUN_OFFLOAD_UNAVAILABLE`, `ERR_TUN_SYSCALL`, `ERR_INVALID_ARG`.
   */
  static async open(options: TunOpenOptions = {}): Promise<Tun> {
    const device = openDevice(options);
    try {
      return await Tun.#create(device, options);
    } catch (err) {
      closeAll(device.binding, device.fds);
      throw err;
    }
  }

  /**
   * Adopts an open TUN descriptor (e.g. a queue handed to a worker thread,
   * {@link Tun.queue}); once this resolves, the Tun owns it and closes it. Offloads are
   * negotiated only if it was opened with IFF_VNET_HDR (DEV-2).
   */
  static async fromFd(fd: number, options: TunFromFdOptions = {}): Promise<Tun> {
    const device = adoptDescriptor(fd, options);
    try {
      return await Tun.#create(device, options);
    } catch (err) {
      device.binding.close(fd);
      throw err;
    }
  }

  static async #create(device: OpenedDevice, options: TunFromFdOptions): Promise<Tun> {
    const { binding: b, fds, name, offload } = device;
    const fd = fds[0]!;
    const batchSize = options.batchSize ?? (offload.vnetHdr ? DEFAULT_BATCH : 16);
    let tun: Tun | undefined;
    const poller = b.pollCreate(fd, (status, events) => {
      if (tun !== undefined) onPoll(tun, TUN_IO, status, events);
    });
    if (typeof poller === 'number') throw syscallError(poller, 'uv_poll_init', name);
    let link: LinkSockets | undefined;
    try {
      link = await openLinkSockets(b, fd, name, (m) => {
        if (tun !== undefined) onLinkEvent(tun, m);
      });
      const state: TunState = {
        binding: b, fd, queueFds: [...fds], poller, pollMask: 0, idleCheck: false, name, ifindex: link.ifindex,
        mtu: link.mtu, up: link.up, offload: Object.freeze({ ...offload }),
        batchSize, closed: false, closing: undefined, removed: undefined, linkLost: undefined, following: undefined, heldEvents: [], events: link.events, control: link.control,
        readers: [], serving: false, flowing: false, paused: false, flowReader: undefined, slots: undefined, out: undefined,
        lengths: new Int32Array(new ArrayBuffer(4 * batchSize)), verified: new Uint8Array(0), batchLength: 0, frameNext: 0, frameCount: 0,
        writeChain: Promise.resolve(), writeResults: new Int32Array(new ArrayBuffer(4 * 256)), writable: undefined,
        coalescer: offload.vnetHdr ? new Coalescer({ tcp: offload.tso4 || offload.tso6, udp: offload.uso4 || offload.uso6 }) : undefined,
        gro: { tcp: offload.tso4 || offload.tso6, udp: offload.uso4 || offload.uso6 },
        warned: { tcp: false, udp: false }, stats: emptyStats(), signal: options.signal, onAbort: undefined,
      };
      const t = new Tun(state);
      tun = t;
      closeOnAbort(state, () => t.close());
      return t;
    } catch (err) {
      link?.events.close();
      link?.control.close();
      b.pollClose(poller);
      throw err;
    }
  }

  /** Interface name, e.g. `tun0` (as of the last move followed, which may rename it). */
  get name(): string {
    return this[kState].name;
  }
  /** Interface index in the namespace the device is in (re-resolved after a move). */
  get ifindex(): number {
    return this[kState].ifindex;
  }
  /** Current MTU (kept up to date by link events). */
  get mtu(): number {
    return this[kState].mtu;
  }
  /** Whether the link is administratively up. */
  get isUp(): boolean {
    return this[kState].up;
  }
  /** Number of queues (file descriptors) opened for the device. */
  get queues(): number {
    return this[kState].queueFds.length;
  }
  /** What the kernel accepted (style rule 2). */
  get offload(): TunOffload {
    return this[kState].offload;
  }
  /** Frames per read. */
  get batchSize(): number {
    return this[kState].batchSize;
  }
  /** Effective GRO switches (DEV-6): requested and supported by the negotiated offloads. */
  get gro(): {
    /** TCP packets are coalesced. */
    tcp: boolean;
    /** UDP datagrams are coalesced. */
    udp: boolean;
  } {
    return { ...this[kState].gro };
  }
  /** A snapshot of the counters. */
  get stats(): TunStats {
    return snapshotStats(this[kState].stats);
  }
  /** Whether close() was called. */
  get closed(): boolean {
    return this[kState].closed;
  }

  /**
   * One flag per packet of the last batch read: 1 when the split computed its
   * transport checksum (RD-9) in the layout GRO validates (IPv4 without
   * options or IPv6 without extension headers, TCP or UDP matching the GSO
   * type), so CK-4 passes as long as the packet is unchanged. Pass it to
   * another device's `write(batch, { checksumsVerified })` to skip the
   * redundant validation when forwarding. Same lifetime as the batch (valid
   * until the next read); empty after a read of plain packets.
   */
  get checksumsVerified(): Uint8Array {
    const s = this[kState];
    return s.verified.subarray(0, s.batchLength);
  }

  // ---------------------------------------------------------------- reading (tun-read.ts)

  /**
   * One batch of plain IP packets (every segment of every frame, D-5). The
   * views point into the device's arena and are valid until the next read.
   * Rejects with `ERR_TUN_CLOSED` on close, `ERR_TUN_REMOVED` once the device
   * is gone.
   */
  read(): Promise<Uint8Array[]> {
    return read(this, TUN_IO);
  }

  /** Batches as from {@link Tun.read} until the device closes; same view lifetime. */
  [Symbol.asyncIterator](): AsyncGenerator<Uint8Array[], void, undefined> {
    return batches(this, TUN_IO);
  }

  /** Stops event mode: no `'packets'` until `resume()`; unread packets stay in the kernel queue. */
  pause(): this {
    pause(this, TUN_IO);
    return this;
  }

  /** Starts (or restarts) event mode: each batch is emitted as `'packets'`. */
  resume(): this {
    resume(this, TUN_IO);
    return this;
  }

  // ---------------------------------------------------------------- writing (tun-write.ts)

  /**
   * Writes plain IP packets: coalesced into super-packets when offload is on
   * (TCP; UDP only with USO), one writev per write list. Resolves when the
   * kernel took them; per-packet failures are in the result (D-6). Head
   * packets of coalesced writes are modified in place (PIT-2); keep the
   * buffers unchanged until the promise settles.
   */
  write(packets: readonly Uint8Array[], options?: TunWriteOptions): Promise<WriteResult> {
    return write(this, packets, options);
  }

  /**
   * Turns GRO on or off per protocol (DEV-6). Only what was negotiated can be
   * on: TCP needs TSO, UDP needs USO (DEV-3).
   */
  setGro(options: { tcp?: boolean; udp?: boolean }): void {
    setGro(this, options);
  }

  // ---------------------------------------------------------------- link control (tun-link.ts)

  /** Sets the MTU (RTM_NEWLINK IFLA_MTU); emits `'mtu'`. */
  async setMtu(mtu: number): Promise<void> {
    await setMtu(this, mtu);
  }

  /** Brings the link up or down; emits `'up'` / `'down'`. */
  async setUp(up = true): Promise<void> {
    await setUp(this, up);
  }

  /** Adds an address, e.g. `198.18.0.1/24` or `2001:2::1/64` (RTM_NEWADDR). */
  async addAddress(cidr: string): Promise<void> {
    await addAddress(this, cidr);
  }

  /** Routes `cidr` through this device (RTM_NEWROUTE, no gateway). */
  async addRoute(cidr: string): Promise<void> {
    await addRoute(this, cidr);
  }

  // ---------------------------------------------------------------- queues and the event loop

  /**
   * Hands queue `index` (1..queues-1) over for `Tun.fromFd`, e.g. in a
   * worker_thread; this Tun keeps using queue 0 and no longer closes the
   * handed-out descriptor.
   */
  queue(index: number): TunQueueHandle {
    const s = checkOpen(this, 'queue');
    if (!Number.isInteger(index) || index < 1 || index >= s.queueFds.length) {
      throw invalid(`index must be an integer in 1..${s.queueFds.length - 1}, got ${String(index)}`);
    }
    const fd = s.queueFds[index];
    if (fd === null || fd === undefined) throw invalid(`queue ${index} was already handed out`);
    s.queueFds[index] = null;
    return { fd, index, name: s.name };
  }

  /** Lets the process exit while a read waits (like `socket.unref()`). */
  unref(): this {
    const s = checkOpen(this, 'unref');
    s.binding.pollRef(s.poller, false);
    return this;
  }

  /** Undoes {@link Tun.unref}: a waiting read keeps the process alive again. */
  ref(): this {
    const s = checkOpen(this, 'ref');
    s.binding.pollRef(s.poller, true);
    return this;
  }

  // ---------------------------------------------------------------- closing

  /**
   * Closes the device's descriptors (the device disappears unless persistent
   * or still open elsewhere). Idempotent; pending reads and writes reject
   * with `ERR_TUN_CLOSED`; `'close'` follows on the next tick.
   */
  close(): Promise<void> {
    const s = this[kState];
    return closeHandle(this, TUN_IO, () => {
      s.events?.close();
      s.control?.close();
      for (const fd of s.queueFds) if (fd !== null) s.binding.close(fd);
    });
  }

  /** `await using tun = await Tun.open()`: closes the device. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
