/**
 * The `Tun` class: a Linux TUN device with virtio-net offloads, batched reads
 * (GSO split) and scatter-gather writes (GRO coalescing).
 *
 * Spec rules: DEV-1..DEV-9 and D-7/D-8 (open and offload negotiation), RD-1,
 * RD-2 and D-5 (read path, via the core's `segmentInto`), WR-1, SG-1..SG-6
 * and D-6 (write path, via the core's `Coalescer`), style rule 3 (EINVAL
 * fallback).
 *
 * Shaped like `dgram.Socket`: private state in one symbol-keyed object, an
 * open check in every method, idempotent `close()` emitting `'close'` on the
 * next tick, native `-errno` results turned into `VectunError`s.
 * @module
 */
import { EventEmitter } from 'node:events';
import { VectunError } from '../errors.js';
import { Arena } from '../core/arena.js';
import { segmentInto } from '../core/gso.js';
import { Coalescer } from '../core/gro.js';
import { GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, VNET_HDR_LEN } from '../core/virtio.js';
import {
  EACCES, EAGAIN, EBADFD, EINTR, EINVAL, ENOENT, ENODEV, POLL_READABLE, POLL_WRITABLE,
  loadBinding, syscallError, type NativeBinding, type PollHandle,
} from './native.js';
import {
  IFF_UP, NetlinkSocket, RTMGRP_LINK, RTM_DELLINK, RTM_NEWLINK, addAddressMessage, addRouteMessage,
  getLinkMessage, parseCidr, parseLink, setMtuMessage, setUpMessage, type NetlinkMessage,
} from './rtnetlink.js';

// linux/if_tun.h
const IFF_TUN = 0x0001;
const IFF_MULTI_QUEUE = 0x0100;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
const TUN_F_CSUM = 0x01;
const TUN_F_TSO4 = 0x02;
const TUN_F_TSO6 = 0x04;
const TUN_F_USO4 = 0x20; // kernel 6.2+; missing from older headers
const TUN_F_USO6 = 0x40;

/** One read slot: a vnet header and the largest super-packet (DEV-9). */
export const READ_SLOT = VNET_HDR_LEN + 65535;
/** Frames per read with virtio headers (DEV-7). */
export const DEFAULT_BATCH = 128;
/** Smallest split-output area, so one frame with a small gso_size still fits (D-5). */
const MIN_OUTPUT = 4 << 20;
const IFNAMSIZ = 16;
/** Consecutive EINTRs after which a write gives up (a signal storm, not progress). */
const MAX_EINTR = 1000;
const BIG_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;

/** What the kernel accepted at open (`TUNSETIFF`, `TUNSETOFFLOAD`); the single source of truth. */
export interface TunOffload {
  /** Frames carry the 10-byte virtio-net header (IFF_VNET_HDR). */
  readonly vnetHdr: boolean;
  /** TUN_F_CSUM: partial checksums in both directions. */
  readonly csum: boolean;
  /** TUN_F_TSO4: IPv4 TCP super-packets in both directions; enables TCP GRO. */
  readonly tso4: boolean;
  /** TUN_F_TSO6: IPv6 TCP super-packets in both directions. */
  readonly tso6: boolean;
  /** TUN_F_USO4 (kernel 6.2+): IPv4 UDP super-packets; enables UDP GRO. */
  readonly uso4: boolean;
  /** TUN_F_USO6 (kernel 6.2+): IPv6 UDP super-packets. */
  readonly uso6: boolean;
}

/** Options of {@link Tun.open}. */
export interface TunOpenOptions {
  /** Interface name (<= 15 bytes, may contain `%d`); default: the kernel picks `tunN`. */
  name?: string;
  /** true (default): negotiate offloads, falling back if refused (D-8); `'require'`: fail instead; false: plain packets. */
  offload?: boolean | 'require';
  /** Queues (IFF_MULTI_QUEUE when > 1); default 1. */
  queues?: number;
  /** TUNSETPERSIST: the device outlives its descriptors. */
  persist?: boolean;
  /** TUNSETOWNER uid. */
  owner?: number;
  /** TUNSETGROUP gid. */
  group?: number;
  /** Frames per read (1..1024); default 128 with virtio headers (DEV-7). */
  batchSize?: number;
  /** Closes the device when aborted. */
  signal?: AbortSignal;
  /** @internal A replacement for the native addon (tests). */
  binding?: NativeBinding;
}

/** Options of {@link Tun.fromFd}. */
export type TunFromFdOptions = Pick<TunOpenOptions, 'offload' | 'batchSize' | 'signal' | 'binding'>;

/** A packet the kernel did not take (D-6). */
export interface WriteFailure {
  /** Position in the array passed to `write`. */
  index: number;
  /** Why: `ERR_TUN_SYSCALL` with `errno`/`syscall`, or a packet-level code. */
  error: VectunError;
}

/** What one `write` achieved (D-6). */
export interface WriteResult {
  /** Packets the kernel accepted. */
  packets: number;
  /** Bytes the kernel accepted, vnet headers included (SG-5). */
  bytes: number;
  /** writev calls that succeeded. */
  writes: number;
  /** Packets not written, with the reason. */
  failures: WriteFailure[];
}

/** Options of {@link Tun.write}. */
export interface TunWriteOptions {
  /**
   * Skips the GRO checksum validation (CK-4) for packets known to verify:
   * `true` for all, or one flag per packet (1 = verified), such as
   * another Tun's {@link Tun.checksumsVerified} for the unmodified batch it
   * read. Default: every packet is validated (packets may have been
   * modified). A false claim lets a corrupt packet merge and get a fresh,
   * valid checksum from the kernel.
   */
  checksumsVerified?: boolean | Uint8Array;
}

/** Counters of one device (snapshot). */
export interface TunStats {
  /** Batches returned by read. */
  reads: number;
  /** Frames the kernel handed over. */
  frames: number;
  /** Frames announcing a GSO type (split by the core). */
  superPackets: number;
  /** Packets produced from super-packets. */
  segments: number;
  /** Packets delivered to the caller. */
  packetsRead: number;
  /** Bytes of those packets (IP headers included, vnet headers not). */
  bytesRead: number;
  /** Frames (or packets) dropped on read, by error code (`ERR_PACKET_EMPTY`, `ERR_GSO_TYPE_UNSUPPORTED`, ...). */
  readDrops: Record<string, number>;
  /** Successful writev calls. */
  writes: number;
  /** Of those, carrying more than one packet. */
  coalescedWrites: number;
  /** Packets the kernel accepted (each packet of a coalesced write counts). */
  packetsWritten: number;
  /** Bytes accepted, vnet headers included. */
  bytesWritten: number;
  /** Packets the kernel refused (or that were dropped before it, e.g. empty), by code or errno name. */
  writeDrops: Record<string, number>;
  /** Times a write waited for the device to become writable (EAGAIN). */
  writeWaits: number;
  /** Coalesced writes rejected with EINVAL that turned GRO off (style rule 3). */
  groFallbacks: {
    /** TCP GRO turned off after a rejected coalesced TCP write. */
    tcp: number;
    /** UDP GRO turned off after a rejected coalesced UDP write. */
    udp: number;
  };
}

/** A queue descriptor handed out by {@link Tun.queue}, for `Tun.fromFd` in a worker. */
export interface TunQueueHandle {
  /** The queue's descriptor; ownership passes to whoever adopts it. */
  fd: number;
  /** Queue number, 1 .. queues - 1 (queue 0 stays with the Tun). */
  index: number;
  /** Interface name of the device. */
  name: string;
}

interface Reader {
  resolve(batch: Uint8Array[]): void;
  reject(err: VectunError): void;
}

interface TunState {
  binding: NativeBinding;
  fd: number;
  /** Queue fds (index 0 = fd); null once handed out. */
  queueFds: (number | null)[];
  poller: PollHandle;
  pollMask: number;
  /** A check-phase re-evaluation of a readable watch nobody waits on is scheduled. */
  idleCheck: boolean;
  name: string;
  ifindex: number;
  mtu: number;
  up: boolean;
  offload: TunOffload;
  batchSize: number;
  closed: boolean;
  closing: Promise<void> | undefined;
  removed: VectunError | undefined;
  moved: boolean;
  events: NetlinkSocket | undefined;
  control: NetlinkSocket | undefined;
  // read side
  readers: Reader[];
  serving: boolean;
  flowing: boolean;
  /** pause() was called: adding a 'packets' listener does not resume. */
  paused: boolean;
  flowReader: Reader | undefined;
  /**
   * Read slots (`batchSize * READ_SLOT`) followed by the split-output region,
   * both views on ONE Arena: `segmentInto` then takes its fused single-pass
   * copy + checksum path (frame and output in the same WebAssembly memory).
   */
  slots: Uint8Array | undefined;
  out: Uint8Array | undefined;
  lengths: Int32Array;
  /** Per packet of the last batch: 1 = its checksum was computed by the split (see `checksumsVerified`). */
  verified: Uint8Array;
  batchLength: number;
  frameNext: number;
  frameCount: number;
  // write side
  writeChain: Promise<unknown>;
  /**
   * writeLists results, reused (writes are serialized, DEV-8). Off-heap on
   * purpose: a small `new Int32Array(n)` lives on V8's heap, and handing it to
   * the addon makes V8 move it off-heap (malloc + copy) on every call.
   */
  writeResults: Int32Array;
  writable: Reader | undefined;
  coalescer: Coalescer | undefined;
  gro: { tcp: boolean; udp: boolean };
  warned: { tcp: boolean; udp: boolean };
  stats: TunStats;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

const kState = Symbol('vectun.tun');
const ZERO_HDR = new Uint8Array(VNET_HDR_LEN);

function invalid(message: string): VectunError {
  return new VectunError('ERR_INVALID_ARG', message);
}

function optionalInt(value: unknown, option: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${option} must be an integer in ${min}..${max}, got ${String(value)}`);
  }
  return value;
}

function optionalBool(value: unknown, option: string): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  throw invalid(`${option} must be a boolean, got ${typeof value}`);
}

function validateCommon(o: TunFromFdOptions): void {
  if (o.offload !== undefined && typeof o.offload !== 'boolean' && o.offload !== 'require') {
    throw invalid(`options.offload must be true, false or 'require', got ${String(o.offload)}`);
  }
  optionalInt(o.batchSize, 'options.batchSize', 1, 1024);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalid('options.signal must be an AbortSignal');
}

function closedError(what: string): VectunError {
  return new VectunError('ERR_TUN_CLOSED', `${what}: the TUN device is closed`);
}

function emptyStats(): TunStats {
  return {
    reads: 0, frames: 0, superPackets: 0, segments: 0, packetsRead: 0, bytesRead: 0, readDrops: {},
    writes: 0, coalescedWrites: 0, packetsWritten: 0, bytesWritten: 0, writeDrops: {}, writeWaits: 0,
    groFallbacks: { tcp: 0, udp: 0 },
  };
}

function bump(counts: Record<string, number>, key: string, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by;
}

/** DEV-3 + D-8: TSO first, then USO; what the kernel accepted. */
function negotiate(b: NativeBinding, fds: readonly number[], mode: boolean | 'require'): TunOffload {
  for (const fd of fds) {
    // D-7: set the header size explicitly, and little-endian on big-endian hosts (HDR-2).
    const sz = b.tunIoctl(fd, 'TUNSETVNETHDRSZ', VNET_HDR_LEN);
    if (sz < 0) throw syscallError(sz, 'ioctl', 'TUNSETVNETHDRSZ');
    if (BIG_ENDIAN) {
      const le = b.tunIoctl(fd, 'TUNSETVNETLE', 1);
      if (le < 0) throw syscallError(le, 'ioctl', 'TUNSETVNETLE');
    }
  }
  const tcp = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6; // DEV-3 step 1: 0x07
  const all = tcp | TUN_F_USO4 | TUN_F_USO6; // DEV-3 step 3: 0x67
  const set = (flags: number): number => {
    for (const fd of fds) {
      const r = b.tunIoctl(fd, 'TUNSETOFFLOAD', flags);
      if (r < 0) return r;
    }
    return 0;
  };
  if (mode !== false && set(all) === 0) {
    return { vnetHdr: true, csum: true, tso4: true, tso6: true, uso4: true, uso6: true };
  }
  // Kernels before 6.2 reject the USO bits with EINVAL (DEV-3 step 3): TCP only.
  const r = mode === false ? -EINVAL : set(tcp);
  if (r === 0) return { vnetHdr: true, csum: true, tso4: true, tso6: true, uso4: false, uso6: false };
  if (mode === 'require') {
    throw new VectunError('ERR_TUN_OFFLOAD_UNAVAILABLE', 'the kernel refused TUNSETOFFLOAD for TCP segmentation offload', {
      errno: -r, syscall: 'ioctl',
    });
  }
  // D-8: no offload, headers stay (all-zero on write, gso NONE on read).
  set(0);
  return { vnetHdr: true, csum: false, tso4: false, tso6: false, uso4: false, uso6: false };
}

const PLAIN: TunOffload = Object.freeze({ vnetHdr: false, csum: false, tso4: false, tso6: false, uso4: false, uso6: false });

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
  /** The device was moved to another network namespace; I/O continues. */
  moved: [];
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
 * later I/O fail with `ERR_TUN_REMOVED`), `'moved'` (moved to another network
 * namespace; I/O keeps working, link control does not), `'warning'`
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
    // Event mode starts when a 'packets' listener is added, as streams do with 'data'.
    this.on('newListener', (event: string | symbol) => {
      if (event === 'packets') {
        queueMicrotask(() => {
          const st = this[kState];
          if (!st.closed && !st.flowing && !st.paused) this.resume();
        });
      }
    });
  }

  /**
   * Creates (or attaches to) a TUN device and negotiates offloads (DEV-1,
   * DEV-3, D-7, D-8).
   * @throws VectunError `ERR_TUN_PERMISSION`, `ERR_TUN_UNAVAILABLE`,
   *   `ERR_TUN_OFFLOAD_UNAVAILABLE`, `ERR_TUN_SYSCALL`, `ERR_INVALID_ARG`.
   */
  static async open(options: TunOpenOptions = {}): Promise<Tun> {
    if (options === null || typeof options !== 'object') throw invalid('options must be an object');
    validateCommon(options);
    const name = options.name ?? '';
    if (typeof name !== 'string' || Buffer.byteLength(name) >= IFNAMSIZ) {
      throw invalid(`options.name must be a string of at most ${IFNAMSIZ - 1} bytes`);
    }
    const queues = optionalInt(options.queues, 'options.queues', 1, 256) ?? 1;
    const persist = optionalBool(options.persist, 'options.persist');
    const owner = optionalInt(options.owner, 'options.owner', 0, 0xfffffffe);
    const group = optionalInt(options.group, 'options.group', 0, 0xfffffffe);
    options.signal?.throwIfAborted();
    const b = options.binding ?? loadBinding();
    const mode = options.offload ?? true;

    const fds: number[] = [];
    const cleanup = (): void => {
      for (const fd of fds) b.close(fd);
    };
    try {
      const base = IFF_TUN | IFF_NO_PI | (queues > 1 ? IFF_MULTI_QUEUE : 0);
      let vnet = mode !== false;
      let fd = b.tunOpen(name, base | (vnet ? IFF_VNET_HDR : 0));
      // D-8: a kernel without IFF_VNET_HDR gets plain packets, unless offload is required.
      if (fd === -EINVAL && vnet && mode !== 'require') {
        vnet = false;
        fd = b.tunOpen(name, base);
      }
      if (fd < 0) throw openError(fd);
      fds.push(fd);
      const iff = b.tunGetIff(fd);
      if (typeof iff === 'number') throw syscallError(iff, 'ioctl', 'TUNGETIFF');
      for (let q = 1; q < queues; q++) {
        const qfd = b.tunOpen(iff.name, base | (vnet ? IFF_VNET_HDR : 0));
        if (qfd < 0) throw openError(qfd);
        fds.push(qfd);
      }
      const offload = vnet ? negotiate(b, fds, mode) : PLAIN;
      if (persist !== undefined) ioctlOrThrow(b, fd, 'TUNSETPERSIST', persist ? 1 : 0);
      if (owner !== undefined) ioctlOrThrow(b, fd, 'TUNSETOWNER', owner);
      if (group !== undefined) ioctlOrThrow(b, fd, 'TUNSETGROUP', group);
      return await Tun.#create(b, fds, iff.name, offload, options);
    } catch (err) {
      cleanup();
      throw err;
    }
  }

  /**
   * Adopts an open TUN descriptor (e.g. a queue handed to a worker thread,
   * {@link Tun.queue}); once this resolves, the Tun owns it and closes it. Offloads are
   * negotiated only if it was opened with IFF_VNET_HDR (DEV-2).
   */
  static async fromFd(fd: number, options: TunFromFdOptions = {}): Promise<Tun> {
    if (!Number.isInteger(fd) || fd < 0) throw invalid(`fd must be a non-negative integer, got ${String(fd)}`);
    if (options === null || typeof options !== 'object') throw invalid('options must be an object');
    validateCommon(options);
    options.signal?.throwIfAborted();
    const b = options.binding ?? loadBinding();
    const nb = b.setNonBlocking(fd);
    if (nb < 0) throw syscallError(nb, 'fcntl', 'O_NONBLOCK');
    const iff = b.tunGetIff(fd);
    if (typeof iff === 'number') throw syscallError(iff, 'ioctl', 'TUNGETIFF');
    const offload = (iff.flags & IFF_VNET_HDR) !== 0 ? negotiate(b, [fd], options.offload ?? true) : PLAIN;
    try {
      return await Tun.#create(b, [fd], iff.name, offload, options);
    } catch (err) {
      b.close(fd);
      throw err;
    }
  }

  static async #create(b: NativeBinding, fds: number[], name: string, offload: TunOffload, options: TunFromFdOptions): Promise<Tun> {
    const fd = fds[0]!;
    const ifindex = b.ifIndex(name);
    if (ifindex < 0) throw syscallError(ifindex, 'if_nametoindex', name);
    const batchSize = options.batchSize ?? (offload.vnetHdr ? DEFAULT_BATCH : 16);
    let tun: Tun | undefined;
    const poller = b.pollCreate(fd, (status, events) => {
      if (tun !== undefined) tun.#onPoll(status, events);
    });
    if (typeof poller === 'number') throw syscallError(poller, 'uv_poll_init', name);
    let events: NetlinkSocket | undefined;
    let control: NetlinkSocket | undefined;
    try {
      events = new NetlinkSocket(b, RTMGRP_LINK, (m) => {
        if (tun !== undefined) tun.#onLinkEvent(m);
      });
      control = new NetlinkSocket(b, 0);
      const replies = await control.request('RTM_GETLINK', (seq) => getLinkMessage(seq, ifindex));
      const link = replies.map((m) => parseLink(m.body)).find((l) => l?.index === ifindex);
      const state: TunState = {
        binding: b, fd, queueFds: [...fds], poller, pollMask: 0, idleCheck: false, name, ifindex,
        mtu: link?.mtu ?? 1500, up: ((link?.flags ?? 0) & IFF_UP) !== 0, offload: Object.freeze({ ...offload }),
        batchSize, closed: false, closing: undefined, removed: undefined, moved: false, events, control,
        readers: [], serving: false, flowing: false, paused: false, flowReader: undefined, slots: undefined, out: undefined,
        lengths: new Int32Array(new ArrayBuffer(4 * batchSize)), verified: new Uint8Array(0), batchLength: 0, frameNext: 0, frameCount: 0,
        writeChain: Promise.resolve(), writeResults: new Int32Array(new ArrayBuffer(4 * 256)), writable: undefined,
        coalescer: offload.vnetHdr ? new Coalescer({ tcp: offload.tso4 || offload.tso6, udp: offload.uso4 || offload.uso6 }) : undefined,
        gro: { tcp: offload.tso4 || offload.tso6, udp: offload.uso4 || offload.uso6 },
        warned: { tcp: false, udp: false }, stats: emptyStats(), signal: options.signal, onAbort: undefined,
      };
      tun = new Tun(state);
      if (options.signal !== undefined) {
        const t = tun;
        state.onAbort = () => void t.close();
        options.signal.addEventListener('abort', state.onAbort, { once: true });
      }
      return tun;
    } catch (err) {
      events?.close();
      control?.close();
      b.pollClose(poller);
      throw err;
    }
  }

  /** Interface name, e.g. `tun0`. */
  get name(): string {
    return this[kState].name;
  }
  /** Interface index in the namespace the device was opened in. */
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
    const s = this[kState].stats;
    return { ...s, readDrops: { ...s.readDrops }, writeDrops: { ...s.writeDrops }, groFallbacks: { ...s.groFallbacks } };
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

  #check(what: string): TunState {
    const s = this[kState];
    if (s.closed) throw closedError(what);
    return s;
  }

  // ---------------------------------------------------------------- reading

  /**
   * One batch of plain IP packets (every segment of every frame, D-5). The
   * views point into the device's arena and are valid until the next read.
   * Rejects with `ERR_TUN_CLOSED` on close, `ERR_TUN_REMOVED` once the device
   * is gone.
   */
  read(): Promise<Uint8Array[]> {
    let s: TunState;
    try {
      s = this.#check('read');
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<Uint8Array[]>((resolve, reject) => {
      s.readers.push({ resolve, reject });
      this.#serveReaders();
    });
  }

  /** Batches as from {@link Tun.read} until the device closes; same view lifetime. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array[], void, undefined> {
    for (;;) {
      let batch: Uint8Array[];
      try {
        batch = await this.read();
      } catch (err) {
        if (err instanceof VectunError && err.code === 'ERR_TUN_CLOSED') return;
        throw err;
      }
      yield batch;
    }
  }

  /** Stops event mode: no `'packets'` until `resume()`; unread packets stay in the kernel queue. */
  pause(): this {
    const s = this.#check('pause');
    s.flowing = false;
    s.paused = true;
    const r = s.flowReader;
    if (r !== undefined) {
      const at = s.readers.indexOf(r);
      if (at >= 0) s.readers.splice(at, 1);
      s.flowReader = undefined;
    }
    this.#updatePoll();
    return this;
  }

  /** Starts (or restarts) event mode: each batch is emitted as `'packets'`. */
  resume(): this {
    const s = this.#check('resume');
    s.paused = false;
    if (s.flowing) return this;
    s.flowing = true;
    this.#flow();
    return this;
  }

  #flow(): void {
    const s = this[kState];
    if (!s.flowing || s.closed || s.flowReader !== undefined) return;
    const reader: Reader = {
      resolve: (batch) => {
        s.flowReader = undefined;
        this.emit('packets', batch);
        // Next batch after the listeners ran and I/O had its turn.
        setImmediate(() => this.#flow());
      },
      reject: (err) => {
        s.flowReader = undefined;
        s.flowing = false;
        if (err.code !== 'ERR_TUN_CLOSED' && err.code !== 'ERR_TUN_REMOVED') this.emit('error', err);
      },
    };
    s.flowReader = reader;
    s.readers.push(reader);
    this.#serveReaders();
  }

  /** Hands batches to waiting readers, one per turn (each overwrites the last one's views). */
  #serveReaders(): void {
    const s = this[kState];
    if (s.serving) return;
    s.serving = true;
    try {
      while (s.readers.length > 0 && !s.closed) {
        if (s.removed !== undefined) {
          for (const r of s.readers.splice(0)) r.reject(s.removed);
          break;
        }
        const batch = this.#readBatch();
        if (batch === EAGAIN) break;
        if (batch instanceof VectunError) {
          if (batch.errno === EBADFD) this.#markRemoved(batch);
          else s.readers.shift()!.reject(batch);
          continue;
        }
        if (batch.length === 0) continue; // every frame dropped; read on
        s.stats.reads++;
        s.readers.shift()!.resolve(batch);
        if (s.readers.length > 0) setImmediate(() => this.#serveReaders());
        break;
      }
    } finally {
      s.serving = false;
    }
    this.#updatePoll();
  }

  /** Drains the descriptor (or continues the last drain) and splits the frames. */
  #readBatch(): Uint8Array[] | VectunError | typeof EAGAIN {
    const s = this[kState];
    const stats = s.stats;
    if (s.slots === undefined) this.#allocateArena();
    const arena = s.slots!;
    if (s.frameNext >= s.frameCount) {
      let n = s.binding.readBatch(s.fd, arena, READ_SLOT, s.batchSize, s.lengths);
      for (let k = 0; n === -EINTR && k < MAX_EINTR; k++) n = s.binding.readBatch(s.fd, arena, READ_SLOT, s.batchSize, s.lengths);
      if (n === -EAGAIN) return EAGAIN;
      if (n < 0) return syscallError(n, 'read', s.name);
      s.frameNext = 0;
      s.frameCount = n;
      stats.frames += n;
    }
    const packets: Uint8Array[] = [];
    const out = s.out;
    let used = 0;
    let i = s.frameNext;
    for (; i < s.frameCount; i++) {
      const frame = arena.subarray(i * READ_SLOT, i * READ_SLOT + s.lengths[i]!);
      if (out === undefined) {
        // RD-1: plain packets, delivered in place.
        if (frame.length === 0) this.#drop(new VectunError('ERR_PACKET_EMPTY', 'empty packet read'));
        else packets.push(frame);
        continue;
      }
      const before = packets.length;
      let n: number;
      try {
        n = segmentInto(frame, out.subarray(used), packets);
      } catch (err) {
        packets.length = before;
        // D-5: keep the frame for the next read when this batch filled the output area.
        if (err instanceof VectunError && err.code === 'ERR_OUTPUT_TOO_SMALL' && before > 0) break;
        this.#drop(err instanceof VectunError ? err : new VectunError('ERR_TUN_SYSCALL', String(err), { cause: err }));
        continue;
      }
      used += n;
      const count = packets.length;
      if (count > s.verified.length) {
        const grown = new Uint8Array(Math.max(count, 2 * s.verified.length, 256));
        grown.set(s.verified);
        s.verified = grown;
      }
      s.verified.fill(splitChecksumVerifies(frame) ? 1 : 0, before, count);
      if (frame.length > VNET_HDR_LEN && frame[1] !== GSO_NONE) {
        stats.superPackets++;
        stats.segments += packets.length - before;
      }
      // RD-6 / RD-9: a bare header gives an empty packet, an empty GSO payload none.
      if (packets.length === before) this.#drop(new VectunError('ERR_PACKET_EMPTY', 'frame without packet data'));
      else if (packets[before]!.length === 0 && packets.length === before + 1) {
        packets.length = before;
        this.#drop(new VectunError('ERR_PACKET_EMPTY', 'frame with an empty packet'));
      }
    }
    s.frameNext = i;
    s.batchLength = out === undefined ? 0 : packets.length;
    for (const p of packets) stats.bytesRead += p.length;
    stats.packetsRead += packets.length;
    return packets;
  }

  /** One Arena: read slots, then (with virtio headers) the split-output region (D-5 sizing). */
  #allocateArena(): void {
    const s = this[kState];
    const slotBytes = s.batchSize * READ_SLOT;
    const outBytes = s.offload.vnetHdr ? Math.max(2 * slotBytes, MIN_OUTPUT) : 0;
    const bytes = new Arena(slotBytes + outBytes).bytes;
    s.slots = bytes.subarray(0, slotBytes);
    s.out = outBytes > 0 ? bytes.subarray(slotBytes, slotBytes + outBytes) : undefined;
  }

  #drop(err: VectunError): void {
    bump(this[kState].stats.readDrops, err.code);
    this.emit('drop', err);
  }

  // ---------------------------------------------------------------- writing

  /**
   * Writes plain IP packets: coalesced into super-packets when offload is on
   * (TCP; UDP only with USO), one writev per write list. Resolves when the
   * kernel took them; per-packet failures are in the result (D-6). Head
   * packets of coalesced writes are modified in place (PIT-2); keep the
   * buffers unchanged until the promise settles.
   */
  write(packets: readonly Uint8Array[], options?: TunWriteOptions): Promise<WriteResult> {
    let s: TunState;
    let verified: boolean | Uint8Array | undefined;
    try {
      s = this.#check('write');
      if (!Array.isArray(packets)) throw invalid('packets must be an array of Uint8Array');
      if (options !== undefined) {
        if (options === null || typeof options !== 'object') throw invalid('options must be an object');
        verified = options.checksumsVerified;
        if (verified !== undefined && typeof verified !== 'boolean' && !(verified instanceof Uint8Array)) {
          throw invalid('options.checksumsVerified must be a boolean or a Uint8Array');
        }
      }
      for (let i = 0; i < packets.length; i++) {
        if (!(packets[i] instanceof Uint8Array)) throw invalid(`packets[${i}] must be a Uint8Array`);
        if (packets[i]!.length > 65535) throw invalid(`packets[${i}] is longer than 65535 bytes`);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    // DEV-8: one write at a time (the coalescer's tables are shared).
    const p = s.writeChain.then(() => this.#write(packets, verified));
    s.writeChain = p.catch(() => undefined);
    return p;
  }

  async #write(input: readonly Uint8Array[], verified: boolean | Uint8Array | undefined): Promise<WriteResult> {
    const s = this[kState];
    if (s.closed) throw closedError('write');
    if (s.removed !== undefined) throw s.removed;
    const result: WriteResult = { packets: 0, bytes: 0, writes: 0, failures: [] };
    // D-9: empty packets are dropped and reported, not written.
    let packets = input;
    if (input.some((p) => p.length === 0)) {
      packets = input.filter((p, index) => {
        if (p.length > 0) return true;
        result.failures.push({ index, error: new VectunError('ERR_PACKET_EMPTY', `packets[${index}] is empty`) });
        bump(s.stats.writeDrops, 'ERR_PACKET_EMPTY');
        return false;
      });
      if (verified instanceof Uint8Array) verified = undefined; // indices shifted: validate all
    }
    const c = s.coalescer;
    if (c === undefined) {
      // WR-1: one write per packet.
      await this.#writeLists(packets.map((p) => [p]), null, input, result);
      return result;
    }
    if (!s.gro.tcp && !s.gro.udp) {
      // GRO-A6: every packet alone behind an all-zero header; no coalescing pass needed.
      await this.#writeLists(packets.map((p) => [ZERO_HDR, p]), null, input, result);
      return result;
    }
    c.tcp = s.gro.tcp;
    c.udp = s.gro.udp;
    const list = c.coalesce(packets, verified === undefined ? undefined : { checksumsVerified: verified });
    const resend = await this.#writeLists(list.writes, list.packetCounts, input, result);
    if (resend.length > 0) await this.#writeLists(resend.map((p) => [ZERO_HDR, p]), null, input, result);
    return result;
  }

  /**
   * SG-4 over `lists`: EAGAIN waits for writability and resumes at the same
   * list; EBADFD fails the write (device removed); other errnos fail that
   * list's packets and go on. Returns the packets of coalesced writes the
   * kernel rejected with EINVAL, to be resent one by one.
   */
  async #writeLists(lists: readonly (readonly Uint8Array[])[], counts: readonly number[] | null, input: readonly Uint8Array[], result: WriteResult): Promise<Uint8Array[]> {
    const s = this[kState];
    if (s.writeResults.length < lists.length) s.writeResults = new Int32Array(new ArrayBuffer(4 * Math.max(lists.length, 2 * s.writeResults.length)));
    const results = s.writeResults;
    const resend: Uint8Array[] = [];
    let indexOf: Map<Uint8Array, number> | undefined;
    const fail = (packets: readonly Uint8Array[], error: VectunError): void => {
      indexOf ??= new Map(input.map((p, i) => [p, i] as const).reverse());
      for (const p of packets) result.failures.push({ index: indexOf.get(p) ?? -1, error });
      bump(s.stats.writeDrops, error.errno !== undefined ? errnoKey(error) : error.code, packets.length);
    };
    const vnet = s.offload.vnetHdr;
    let start = 0;
    let interrupts = 0;
    while (start < lists.length) {
      if (s.closed) throw closedError('write');
      if (s.removed !== undefined) throw s.removed;
      const stop = s.binding.writeLists(s.fd, lists, start, results);
      for (let i = start; i < stop && i < lists.length; i++) {
        const r = results[i]!;
        const list = lists[i]!;
        const count = counts?.[i] ?? 1;
        const packetsOf = (): Uint8Array[] => (count > 1 ? s.coalescer!.uncoalesced(i) : [list[vnet ? 1 : 0]!]);
        if (r >= 0) {
          let expected = 0;
          for (const b of list) expected += b.length;
          if (r !== expected) {
            // SG-3: TUN writes are atomic; a short count means the frame was not taken whole.
            fail(packetsOf(), new VectunError('ERR_TUN_SYSCALL', `writev wrote ${r} of ${expected} bytes`, { syscall: 'writev' }));
            continue;
          }
          result.packets += count;
          result.bytes += r;
          result.writes++;
          s.stats.writes++;
          s.stats.packetsWritten += count;
          s.stats.bytesWritten += r;
          if (count > 1) s.stats.coalescedWrites++;
        } else if (r === -EINVAL && count > 1) {
          // Style rule 3: the kernel refused the super-packet; GRO off for its protocol, resend plainly.
          this.#groFallback(list[0]![1] === GSO_UDP_L4 ? 'udp' : 'tcp');
          resend.push(...s.coalescer!.uncoalesced(i));
        } else {
          fail(packetsOf(), syscallError(r, 'writev', s.name));
        }
      }
      if (stop >= lists.length) break;
      const r = results[stop]!;
      if (r === -EBADFD) {
        this.#markRemoved(syscallError(r, 'writev', s.name));
        throw s.removed!;
      }
      if (r === -EINTR) {
        // SG-4: retry at once (the addon already does; a binding may not).
        if (++interrupts > MAX_EINTR) throw syscallError(r, 'writev', s.name);
        start = stop;
        continue;
      }
      // EAGAIN (SG-4): wait until writable, then the same list again.
      s.stats.writeWaits++;
      await this.#waitWritable();
      start = stop;
    }
    return resend;
  }

  #waitWritable(): Promise<void> {
    const s = this[kState];
    return new Promise<void>((resolve, reject) => {
      s.writable = { resolve: () => resolve(), reject };
      this.#updatePoll();
    });
  }

  #groFallback(proto: 'tcp' | 'udp'): void {
    const s = this[kState];
    s.gro[proto] = false;
    s.stats.groFallbacks[proto]++;
    if (!s.warned[proto]) {
      s.warned[proto] = true;
      this.emit('warning', new VectunError('ERR_TUN_GRO_FALLBACK', `${s.name}: the kernel rejected a coalesced ${proto.toUpperCase()} write (EINVAL); ${proto.toUpperCase()} GRO is now off for this device`, { errno: EINVAL, syscall: 'writev' }));
    }
  }

  /**
   * Turns GRO on or off per protocol (DEV-6). Only what was negotiated can be
   * on: TCP needs TSO, UDP needs USO (DEV-3).
   */
  setGro(options: { tcp?: boolean; udp?: boolean }): void {
    const s = this.#check('setGro');
    if (options === null || typeof options !== 'object') throw invalid('options must be an object');
    const tcp = optionalBool(options.tcp, 'options.tcp');
    const udp = optionalBool(options.udp, 'options.udp');
    if (tcp !== undefined) s.gro.tcp = tcp && (s.offload.tso4 || s.offload.tso6);
    if (udp !== undefined) s.gro.udp = udp && (s.offload.uso4 || s.offload.uso6);
  }

  // ---------------------------------------------------------------- readiness and events

  #updatePoll(idle = false): void {
    const s = this[kState];
    if (s.closed) return;
    let wantRead = s.readers.length > 0 && s.removed === undefined;
    if (!wantRead && !idle && (s.pollMask & POLL_READABLE) !== 0 && s.removed === undefined) {
      // Keep watching until the check phase: a loop like the bridge reads again
      // in the same tick, and stopping then restarting the watcher costs two
      // epoll_ctl calls (uv_poll_stop removes the fd at once) per batch.
      wantRead = true;
      if (!s.idleCheck) {
        s.idleCheck = true;
        setImmediate(() => {
          s.idleCheck = false;
          this.#updatePoll(true);
        });
      }
    }
    const mask = (wantRead ? POLL_READABLE : 0) | (s.writable !== undefined ? POLL_WRITABLE : 0);
    if (mask === s.pollMask) return;
    s.pollMask = mask;
    s.binding.pollSet(s.poller, mask);
  }

  #onPoll(status: number, events: number): void {
    const s = this[kState];
    if (s.closed) return;
    // An error (POLLERR: the device was deleted) stopped the watcher; the I/O below reports it.
    if (status < 0) s.pollMask = 0;
    if ((status < 0 || (events & POLL_WRITABLE) !== 0) && s.writable !== undefined) {
      const w = s.writable;
      s.writable = undefined;
      w.resolve([]);
    }
    if (status < 0 || (events & POLL_READABLE) !== 0) this.#serveReaders();
    this.#updatePoll();
  }

  #onLinkEvent(m: NetlinkMessage): void {
    const s = this[kState];
    if (s.closed || s.moved || s.removed !== undefined) return;
    if (m.type !== RTM_NEWLINK && m.type !== RTM_DELLINK) return;
    const link = parseLink(m.body);
    if (link === undefined || link.index !== s.ifindex) return;
    if (m.type === RTM_DELLINK) {
      // Moved to another namespace: our descriptor is still attached (TUNGETIFF works).
      if (typeof s.binding.tunGetIff(s.fd) === 'object') {
        s.moved = true;
        s.events?.close();
        s.events = undefined;
        this.emit('moved');
      } else {
        this.#markRemoved(new VectunError('ERR_TUN_REMOVED', `${s.name} was deleted`, { errno: EBADFD, syscall: 'read' }));
      }
      return;
    }
    if (link.mtu !== undefined && link.mtu !== s.mtu) {
      s.mtu = link.mtu;
      this.emit('mtu', link.mtu);
    }
    const up = (link.flags & IFF_UP) !== 0;
    if (up !== s.up) {
      s.up = up;
      this.emit(up ? 'up' : 'down');
    }
  }

  #markRemoved(cause: VectunError): void {
    const s = this[kState];
    if (s.removed !== undefined) return;
    s.removed = new VectunError('ERR_TUN_REMOVED', `${s.name} was deleted`, { errno: cause.errno ?? EBADFD, syscall: cause.syscall ?? 'read', cause });
    for (const r of s.readers.splice(0)) r.reject(s.removed);
    s.flowReader = undefined;
    s.flowing = false;
    const w = s.writable;
    s.writable = undefined;
    w?.reject(s.removed);
    this.#updatePoll();
    this.emit('removed');
  }

  // ---------------------------------------------------------------- link control (rtnetlink)

  #control(what: string): NetlinkSocket {
    const s = this.#check(what);
    if (s.removed !== undefined) throw s.removed;
    if (s.moved) throw new VectunError('ERR_TUN_REMOVED', `${what}: ${s.name} was moved to another network namespace`);
    return (s.control ??= new NetlinkSocket(s.binding, 0));
  }

  /** Sets the MTU (RTM_NEWLINK IFLA_MTU); emits `'mtu'`. */
  async setMtu(mtu: number): Promise<void> {
    optionalInt(mtu, 'mtu', 68, 65535);
    if (mtu === undefined) throw invalid('mtu is required');
    const s = this[kState];
    await this.#control('setMtu').request('set MTU', (seq) => setMtuMessage(seq, s.ifindex, mtu));
    if (s.mtu !== mtu && !s.closed) {
      s.mtu = mtu;
      this.emit('mtu', mtu);
    }
  }

  /** Brings the link up or down; emits `'up'` / `'down'`. */
  async setUp(up = true): Promise<void> {
    if (typeof up !== 'boolean') throw invalid('up must be a boolean');
    const s = this[kState];
    await this.#control('setUp').request(up ? 'set link up' : 'set link down', (seq) => setUpMessage(seq, s.ifindex, up));
    if (s.up !== up && !s.closed) {
      s.up = up;
      this.emit(up ? 'up' : 'down');
    }
  }

  /** Adds an address, e.g. `198.18.0.1/24` or `2001:2::1/64` (RTM_NEWADDR). */
  async addAddress(cidr: string): Promise<void> {
    const c = parseCidr(cidr, 'cidr');
    const s = this[kState];
    await this.#control('addAddress').request(`add address ${cidr}`, (seq) => addAddressMessage(seq, s.ifindex, c));
  }

  /** Routes `cidr` through this device (RTM_NEWROUTE, no gateway). */
  async addRoute(cidr: string): Promise<void> {
    const c = parseCidr(cidr, 'cidr');
    const s = this[kState];
    await this.#control('addRoute').request(`add route ${cidr}`, (seq) => addRouteMessage(seq, s.ifindex, c));
  }

  /**
   * Hands queue `index` (1..queues-1) over for `Tun.fromFd`, e.g. in a
   * worker_thread; this Tun keeps using queue 0 and no longer closes the
   * handed-out descriptor.
   */
  queue(index: number): TunQueueHandle {
    const s = this.#check('queue');
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
    const s = this.#check('unref');
    s.binding.pollRef(s.poller, false);
    return this;
  }

  /** Undoes {@link Tun.unref}: a waiting read keeps the process alive again. */
  ref(): this {
    const s = this.#check('ref');
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
    if (s.closing !== undefined) return s.closing;
    s.closed = true;
    s.flowing = false;
    s.flowReader = undefined;
    const b = s.binding;
    // Stop watching before closing the descriptor (libuv requirement).
    b.pollClose(s.poller);
    s.events?.close();
    s.control?.close();
    for (const fd of s.queueFds) if (fd !== null) b.close(fd);
    if (s.signal !== undefined && s.onAbort !== undefined) s.signal.removeEventListener('abort', s.onAbort);
    const err = closedError('pending I/O');
    for (const r of s.readers.splice(0)) r.reject(err);
    const w = s.writable;
    s.writable = undefined;
    w?.reject(err);
    s.closing = new Promise<void>((resolve) => {
      process.nextTick(() => {
        this.emit('close');
        resolve();
      });
    });
    return s.closing;
  }

  /** `await using tun = await Tun.open()`: closes the device. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Whether RD-9 gave this frame's packets a full transport checksum that CK-4
 * accepts unchanged: a GSO frame whose csum_start ends a fixed IP header
 * (IPv4 IHL 5, or IPv6 with TCP/UDP as next header), with the protocol the GSO
 * type names and csum_offset at that protocol's checksum field. Then the
 * split's sum covers exactly the bytes and pseudo-header CK-4 checks
 * (GRO-C2 candidates use the same iph). RD-7 completions (gso_type NONE) are
 * not claimed: they start from the kernel's partial sum, not one we built.
 */
function splitChecksumVerifies(f: Uint8Array): boolean {
  if (f.length < VNET_HDR_LEN + 40) return false;
  const gso = f[1];
  const start = f[6]! | (f[7]! << 8);
  const offset = f[8]! | (f[9]! << 8);
  const b0 = f[VNET_HDR_LEN]!;
  let proto: number;
  if (b0 === 0x45) {
    if (start !== 20 || gso === GSO_TCPV6) return false;
    proto = f[VNET_HDR_LEN + 9]!;
  } else if (b0 >> 4 === 6) {
    if (start !== 40 || gso === GSO_TCPV4) return false;
    proto = f[VNET_HDR_LEN + 6]!;
  } else return false;
  if (gso === GSO_TCPV4 || gso === GSO_TCPV6) return proto === 6 && offset === 16;
  return gso === GSO_UDP_L4 && proto === 17 && offset === 6;
}

function errnoKey(err: VectunError): string {
  return /failed: (\S+)/.exec(err.message)?.[1] ?? `errno ${err.errno}`;
}

/** tunOpen does open() then TUNSETIFF; these errnos can only come from the open. */
const OPEN_ERRNOS = new Set([ENOENT, ENODEV, EACCES, 23 /* ENFILE */, 24 /* EMFILE */]);

function openError(result: number): VectunError {
  if (result === -ENOENT || result === -ENODEV) {
    return new VectunError('ERR_TUN_UNAVAILABLE', '/dev/net/tun is not available (is the tun module loaded?)', {
      errno: -result, syscall: 'open',
    });
  }
  return OPEN_ERRNOS.has(-result) ? syscallError(result, 'open', '/dev/net/tun') : syscallError(result, 'ioctl', 'TUNSETIFF');
}

function ioctlOrThrow(b: NativeBinding, fd: number, request: 'TUNSETPERSIST' | 'TUNSETOWNER' | 'TUNSETGROUP', value: number): void {
  const r = b.tunIoctl(fd, request, value);
  if (r < 0) throw syscallError(r, 'ioctl', request);
}
