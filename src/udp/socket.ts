/**
 * `UdpSocket`: batched UDP with segmentation offload, what Node's `dgram`
 * lacks. Sends go out through sendmmsg(2), runs of equal-size datagrams to one
 * destination as single UDP_SEGMENT (GSO) messages; receives come in through
 * recvmmsg(2) with UDP_GRO, coalesced receives split into datagram views on an
 * {@link Arena}.
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
import { Arena } from '../core/arena.js';
import { EAGAIN, EINTR, EINVAL, EIO, EMSGSIZE, POLL_READABLE, POLL_WRITABLE, errnoName, type PollHandle } from '../device/native.js';
import { SOCKADDR_IN6_LEN, SourceInterner, UdpEndpoint, parseSockaddr } from './address.js';
import { loadUdpBinding, type UdpBinding } from './native.js';
import { PLAN_STRIDE, SendPlan, UDP_MAX_PAYLOAD_V4, UDP_MAX_PAYLOAD_V6, UDP_MAX_SEGMENTS, planSend, type PlanLimits } from './plan.js';

export { UdpEndpoint } from './address.js';

const ECONNREFUSED = 111;
const EHOSTUNREACH = 113;
const ENETUNREACH = 101;
const EPERM = 1;
const EACCES = 13;
const EAFNOSUPPORT = 97;
/** Names src/device/native.ts does not know. */
const UDP_ERRNO_NAMES: Record<number, string> = { 97: 'EAFNOSUPPORT', 98: 'EADDRINUSE', 111: 'ECONNREFUSED', 113: 'EHOSTUNREACH', 92: 'ENOPROTOOPT' };

/** One receive slot: the largest UDP payload or GRO-coalesced receive (65535 - 8 rounded up). */
export const UDP_RECV_SLOT = 65536;
/** Messages per recvmmsg/sendmmsg call by default. */
export const UDP_DEFAULT_BATCH = 64;
/** Consecutive EINTRs after which a call gives up (a signal storm, not progress). */
const MAX_EINTR = 1000;

/** Options of {@link UdpSocket.open}. */
export interface UdpOpenOptions {
  /** 4, 6, or `'dual'` (IPv6 socket that also carries IPv4, shown as IPv4); default from `address`, else `'dual'` (4 where IPv6 is disabled). */
  family?: 4 | 6 | 'dual';
  /** Local address to bind; default the wildcard of the family. */
  address?: string;
  /** Local port; default 0 (the kernel picks). */
  port?: number;
  /** Messages per recvmmsg/sendmmsg call, 1..1024; default 64. A GRO receive may hold up to 64 datagrams. */
  batchSize?: number;
  /** Use UDP_SEGMENT when the kernel has it; default true. false forces one datagram per message. */
  gso?: boolean;
  /** Ask for UDP_GRO (coalesced receives); default true. */
  gro?: boolean;
  /** SO_RCVBUF bytes (SO_RCVBUFFORCE when privileged, so it can exceed net.core.rmem_max). */
  receiveBufferSize?: number;
  /** SO_SNDBUF bytes (SO_SNDBUFFORCE when privileged). */
  sendBufferSize?: number;
  /** SO_MARK (needs CAP_NET_ADMIN), e.g. to keep tunnel traffic out of the tunnel's own routes. */
  fwmark?: number;
  /**
   * Network namespace to create the socket in: a name under /run/netns
   * (`ip netns add NAME`) or a path such as /proc/PID/ns/net. The socket
   * stays there for its lifetime, whatever namespace the process is in (as a
   * WireGuard interface's socket stays in its birth namespace). Needs
   * CAP_SYS_ADMIN; implemented with setns(2) around socket(2) on the calling
   * thread, which is restored before open returns.
   */
  netns?: string;
  /** Closes the socket when aborted. */
  signal?: AbortSignal;
  /** @internal A replacement for the native addon (tests). */
  binding?: UdpBinding;
}

/** What the kernel offers, probed once at open; batch sizes derive from it. */
export interface UdpCapabilities {
  /** UDP_SEGMENT sends are used (kernel support, not forced off, not turned off after EIO). */
  readonly gso: boolean;
  /** UDP_GRO was accepted: receives may be coalesced. */
  readonly gro: boolean;
  /** Datagrams per send message: {@link UDP_MAX_SEGMENTS} with GSO, 1 without. */
  readonly maxSegments: number;
}

/** One receive: datagram views (valid until the next read) and their sources. */
export interface UdpBatch {
  /**
   * Views on the socket's arena; valid until the next read. Later reads may
   * hand out the same view objects again with new contents (views are reused
   * per receive slot), so copy (`slice()`) what you keep.
   */
  datagrams: Uint8Array[];
  /** `sources[i]` sent `datagrams[i]`; identical sources are the same object within (and usually across) batches. */
  sources: UdpEndpoint[];
}

/** One datagram of {@link UdpSocket.sendBatch}. */
export interface UdpTransmit {
  /** The payload (sent from where it is, no copy). */
  data: Uint8Array;
  /** Where to (from {@link UdpSocket.endpoint}). */
  destination: UdpEndpoint;
}

/** A datagram the kernel did not take. */
export interface UdpSendFailure {
  /** Position in the array passed to send/sendBatch. */
  index: number;
  /** Why: ERR_UDP_CONNECTION_REFUSED, ERR_UDP_HOST_UNREACHABLE, ERR_UDP_NETWORK_UNREACHABLE, ERR_UDP_MESSAGE_SIZE, ERR_UDP_INVALID_ENDPOINT, ERR_UDP_SYSCALL. */
  error: VectunError;
}

/** What one send achieved. */
export interface UdpSendResult {
  /** Datagrams the kernel accepted. */
  datagrams: number;
  /** Their payload bytes. */
  bytes: number;
  /** sendmmsg calls that sent something. */
  calls: number;
  /** Datagrams not sent, with the reason; every other datagram was sent. */
  failures: UdpSendFailure[];
}

/** Counters of one socket (snapshot). */
export interface UdpStats {
  /** Datagrams the kernel accepted for sending. */
  datagramsSent: number;
  /** Their payload bytes. */
  bytesSent: number;
  /** sendmmsg calls that sent at least one message. */
  sendCalls: number;
  /** Messages (mmsghdr entries) sent; a GSO message carries several datagrams. */
  sendMessages: number;
  /** Messages sent with UDP_SEGMENT. */
  gsoSends: number;
  /** Datagrams inside those. */
  gsoSegments: number;
  /** Times GSO was turned off after EIO. */
  gsoFallbacks: number;
  /** GSO messages refused with EINVAL/EMSGSIZE and resent one datagram at a time. */
  gsoSplits: number;
  /** Times a send waited for writability (EAGAIN). */
  sendWaits: number;
  /** Datagrams not sent, by error code. */
  sendFailures: Record<string, number>;
  /** Datagrams delivered to the caller. */
  datagramsReceived: number;
  /** Their payload bytes. */
  bytesReceived: number;
  /** recvmmsg calls that returned data. */
  receiveCalls: number;
  /** Messages received (a GRO message holds several datagrams). */
  receiveMessages: number;
  /** Received messages the kernel had coalesced (UDP_GRO, more than one datagram). */
  groReceives: number;
  /** Datagrams inside those. */
  groSegments: number;
  /** Datagrams the kernel dropped for this socket (full receive buffer), from SO_RXQ_OVFL; as of the last receive. */
  receiveDrops: number;
  /** ICMP errors (ERR_UDP_CONNECTION_REFUSED, ...) a receive call reported for earlier sends, by code; reads go on. */
  receiveErrors: Record<string, number>;
  /** Messages discarded because they did not fit a slot (MSG_TRUNC; cannot happen with 64 KiB slots). */
  truncated: number;
  /** datagramsSent / sendCalls. */
  segmentsPerSendCall: number;
  /** datagramsReceived / receiveCalls. */
  segmentsPerReceiveCall: number;
}

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

interface Reader {
  resolve(batch: UdpBatch): void;
  reject(err: VectunError): void;
}

interface UdpState {
  binding: UdpBinding;
  fd: number;
  poller: PollHandle;
  pollMask: number;
  idleCheck: boolean;
  /** AF_INET6 socket (IPv4 destinations go out as IPv4-mapped). */
  inet6: boolean;
  /** AF_INET6 with IPV6_V6ONLY off. */
  dual: boolean;
  local: UdpEndpoint;
  remote: UdpEndpoint | undefined;
  batchSize: number;
  gso: boolean;
  gro: boolean;
  limits: PlanLimits;
  closed: boolean;
  closing: Promise<void> | undefined;
  // receive side
  readers: Reader[];
  serving: boolean;
  flowing: boolean;
  paused: boolean;
  flowReader: Reader | undefined;
  arena: Uint8Array | undefined;
  lengths: Int32Array;
  segments: Int32Array;
  names: Uint8Array;
  /** `names` as 32-bit words, for comparing sources. */
  nameWords: Int32Array;
  drops: Uint32Array;
  /** Per receive slot: the views handed out for it last time, and the length and segment size they were cut for. */
  slotViews: (Uint8Array[] | undefined)[];
  slotLength: Int32Array;
  slotSegment: Int32Array;
  interner: SourceInterner;
  // send side
  sendBusy: boolean;
  sendQueued: number;
  sendChain: Promise<unknown>;
  plan: SendPlan;
  /** Second plan for replanning mid-batch (swapped with `plan`). */
  spare: SendPlan;
  writable: Reader | undefined;
  warned: boolean;
  stats: Omit<UdpStats, 'segmentsPerSendCall' | 'segmentsPerReceiveCall'>;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

const kState = Symbol('vectun.udp');
const NO_ADDRESSES: readonly Uint8Array[] = Object.freeze([]);

function invalid(message: string): VectunError {
  return new VectunError('ERR_INVALID_ARG', message);
}

function closedError(what: string): VectunError {
  return new VectunError('ERR_UDP_CLOSED', `${what}: the UDP socket is closed`);
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

/** The VectunError for a `-errno` result of a UDP `syscall` (stable codes for the errors a sender acts on). */
export function udpError(result: number, syscall: string, what?: string): VectunError {
  const errno = -result;
  const code =
    errno === ECONNREFUSED ? 'ERR_UDP_CONNECTION_REFUSED'
      : errno === EHOSTUNREACH ? 'ERR_UDP_HOST_UNREACHABLE'
        : errno === ENETUNREACH ? 'ERR_UDP_NETWORK_UNREACHABLE'
          : errno === EMSGSIZE ? 'ERR_UDP_MESSAGE_SIZE'
            : 'ERR_UDP_SYSCALL';
  const name = UDP_ERRNO_NAMES[errno] ?? errnoName(errno);
  return new VectunError(code, `${syscall}${what === undefined ? '' : ` (${what})`} failed: ${name}`, { errno, syscall });
}

function emptyStats(): UdpState['stats'] {
  return {
    datagramsSent: 0, bytesSent: 0, sendCalls: 0, sendMessages: 0, gsoSends: 0, gsoSegments: 0, gsoFallbacks: 0,
    gsoSplits: 0, sendWaits: 0, sendFailures: {}, datagramsReceived: 0, bytesReceived: 0, receiveCalls: 0,
    receiveMessages: 0, groReceives: 0, groSegments: 0, receiveDrops: 0, receiveErrors: {}, truncated: 0,
  };
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
    // Event mode starts when a 'datagrams' listener is added, as streams do with 'data'.
    this.on('newListener', (event: string | symbol) => {
      if (event === 'datagrams') {
        queueMicrotask(() => {
          const st = this[kState];
          if (!st.closed && !st.flowing && !st.paused) this.resume();
        });
      }
    });
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
    if (options === null || typeof options !== 'object') throw invalid('options must be an object');
    const o = options;
    if (o.family !== undefined && o.family !== 4 && o.family !== 6 && o.family !== 'dual') {
      throw invalid(`options.family must be 4, 6 or 'dual', got ${String(o.family)}`);
    }
    if (o.address !== undefined && typeof o.address !== 'string') throw invalid('options.address must be a string');
    const port = optionalInt(o.port, 'options.port', 0, 65535) ?? 0;
    const batchSize = optionalInt(o.batchSize, 'options.batchSize', 1, 1024) ?? UDP_DEFAULT_BATCH;
    const wantGso = optionalBool(o.gso, 'options.gso') ?? true;
    const wantGro = optionalBool(o.gro, 'options.gro') ?? true;
    const rcvbuf = optionalInt(o.receiveBufferSize, 'options.receiveBufferSize', 1, 0x7fffffff);
    const sndbuf = optionalInt(o.sendBufferSize, 'options.sendBufferSize', 1, 0x7fffffff);
    const fwmark = optionalInt(o.fwmark, 'options.fwmark', 0, 0xffffffff);
    let netns = '';
    if (o.netns !== undefined) {
      if (typeof o.netns !== 'string' || o.netns === '') throw invalid('options.netns must be a namespace name or path');
      if (o.netns.includes('/')) netns = o.netns;
      else if (/^[A-Za-z0-9_.-]{1,255}$/.test(o.netns) && o.netns !== '.' && o.netns !== '..') netns = `/run/netns/${o.netns}`;
      else throw invalid(`options.netns ${JSON.stringify(o.netns)} is not a namespace name`);
    }
    if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalid('options.signal must be an AbortSignal');
    const local = o.address === undefined ? undefined : UdpEndpoint.of(o.address, port);
    const family = o.family ?? (local === undefined ? 'dual' : local.address.includes(':') ? 6 : 4);
    if (family === 4 && local !== undefined && local.family === 6) {
      throw new VectunError('ERR_UDP_INVALID_ENDPOINT', `options.address ${o.address} is IPv6 but options.family is 4`);
    }
    if (family === 6 && local !== undefined && local.family === 4) {
      throw new VectunError('ERR_UDP_INVALID_ENDPOINT', `options.address ${o.address} is IPv4 but options.family is 6 (use 'dual' for IPv4 on an IPv6 socket)`);
    }
    o.signal?.throwIfAborted();
    const b = o.binding ?? loadUdpBinding();

    let inet6 = family !== 4;
    let fd = b.udpOpen(inet6 ? 6 : 4, family === 6 ? 1 : 0, netns);
    let effective = family;
    if (fd === -EAFNOSUPPORT && o.family === undefined && local === undefined) {
      // IPv6 disabled in this kernel or namespace: the default becomes IPv4.
      inet6 = false;
      effective = 4;
      fd = b.udpOpen(4, 0, netns);
    }
    if (fd < 0) throw udpError(fd, netns === '' ? 'socket' : 'setns', netns === '' ? undefined : netns);
    try {
      const setOpt = (name: Parameters<UdpBinding['udpSetOption']>[1], value: number): number => b.udpSetOption(fd, name, value);
      if (rcvbuf !== undefined) {
        const r = setOpt('SO_RCVBUFFORCE', rcvbuf);
        if (r === -EPERM || r === -EACCES) {
          const r2 = setOpt('SO_RCVBUF', rcvbuf);
          if (r2 < 0) throw udpError(r2, 'setsockopt', 'SO_RCVBUF');
        } else if (r < 0) throw udpError(r, 'setsockopt', 'SO_RCVBUFFORCE');
      }
      if (sndbuf !== undefined) {
        const r = setOpt('SO_SNDBUFFORCE', sndbuf);
        if (r === -EPERM || r === -EACCES) {
          const r2 = setOpt('SO_SNDBUF', sndbuf);
          if (r2 < 0) throw udpError(r2, 'setsockopt', 'SO_SNDBUF');
        } else if (r < 0) throw udpError(r, 'setsockopt', 'SO_SNDBUFFORCE');
      }
      if (fwmark !== undefined) {
        const r = setOpt('SO_MARK', fwmark);
        if (r < 0) throw udpError(r, 'setsockopt', 'SO_MARK');
      }
      // Drop counter on every receive (SO_RXQ_OVFL, socket(7)); best effort.
      setOpt('SO_RXQ_OVFL', 1);
      // Probing (quinn-udp does the same): reading UDP_SEGMENT fails with ENOPROTOOPT before Linux 4.18.
      const gsoSupported = b.udpGetOption(fd, 'UDP_SEGMENT') >= 0;
      // UDP_GRO (Linux 5.0): setting it is the probe.
      const gro = wantGro && setOpt('UDP_GRO', 1) >= 0;
      const bindTo = local ?? UdpEndpoint.of(effective === 4 ? '0.0.0.0' : '::', port);
      // An IPv4 address on a dual-stack socket is bound as its IPv4-mapped form (ipv6(7)).
      const r = b.udpBind(fd, inet6 && bindTo.family === 4 ? mappedV6(bindTo.sockaddr) : bindTo.sockaddr);
      if (r < 0) throw udpError(r, 'bind', bindTo.toString());
      const name = new Uint8Array(SOCKADDR_IN6_LEN);
      const n = b.udpSockname(fd, name);
      if (n < 0) throw udpError(n, 'getsockname');
      const bound = parseSockaddr(name, 0, n) ?? bindTo;
      let sock: UdpSocket | undefined;
      const poller = b.pollCreate(fd, (status, events) => {
        if (sock !== undefined) sock.#onPoll(status, events);
      });
      if (typeof poller === 'number') throw udpError(poller, 'uv_poll_init');
      const gso = wantGso && gsoSupported;
      const names = new Uint8Array(new ArrayBuffer(SOCKADDR_IN6_LEN * batchSize));
      const state: UdpState = {
        binding: b, fd, poller, pollMask: 0, idleCheck: false, inet6, dual: effective === 'dual', local: bound, remote: undefined,
        batchSize, gso, gro, limits: { maxSegments: gso ? UDP_MAX_SEGMENTS : 1, maxSegmentSize: UDP_MAX_PAYLOAD_V6 },
        closed: false, closing: undefined, readers: [], serving: false, flowing: false, paused: false, flowReader: undefined,
        arena: undefined, lengths: new Int32Array(new ArrayBuffer(4 * batchSize)), segments: new Int32Array(new ArrayBuffer(4 * batchSize)),
        names, nameWords: new Int32Array(names.buffer), drops: new Uint32Array(new ArrayBuffer(8)),
        slotViews: new Array<Uint8Array[] | undefined>(batchSize).fill(undefined), slotLength: new Int32Array(batchSize).fill(-1),
        slotSegment: new Int32Array(batchSize),
        interner: new SourceInterner(), sendBusy: false, sendQueued: 0, sendChain: Promise.resolve(), plan: new SendPlan(), spare: new SendPlan(),
        writable: undefined, warned: false, stats: emptyStats(), signal: o.signal, onAbort: undefined,
      };
      sock = new UdpSocket(state);
      if (o.signal !== undefined) {
        const s = sock;
        state.onAbort = () => void s.close();
        o.signal.addEventListener('abort', state.onAbort, { once: true });
      }
      return sock;
    } catch (err) {
      b.close(fd);
      throw err;
    }
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
    const s = this[kState].stats;
    return {
      ...s,
      sendFailures: { ...s.sendFailures },
      receiveErrors: { ...s.receiveErrors },
      segmentsPerSendCall: s.sendCalls === 0 ? 0 : s.datagramsSent / s.sendCalls,
      segmentsPerReceiveCall: s.receiveCalls === 0 ? 0 : s.datagramsReceived / s.receiveCalls,
    };
  }

  #check(what: string): UdpState {
    const s = this[kState];
    if (s.closed) throw closedError(what);
    return s;
  }

  /** Whether this socket can send to / receive from `e` (family and dual-stack). */
  #usable(s: UdpState, e: UdpEndpoint): boolean {
    return e.family === 6 ? s.inet6 : !s.inet6 || s.dual;
  }

  #destination(s: UdpState, e: unknown, what: string): UdpEndpoint {
    if (!(e instanceof UdpEndpoint)) throw new VectunError('ERR_UDP_INVALID_ENDPOINT', `${what} must be a UdpEndpoint (UdpSocket.endpoint(address, port))`);
    if (!this.#usable(s, e)) {
      throw new VectunError('ERR_UDP_INVALID_ENDPOINT', `${what} ${e.toString()} is IPv${e.family}, which this ${s.inet6 ? (s.dual ? 'dual-stack' : 'IPv6-only') : 'IPv4'} socket cannot reach`);
    }
    if (e.port === 0) throw new VectunError('ERR_UDP_INVALID_ENDPOINT', `${what} ${e.toString()} has port 0`);
    return e;
  }

  /**
   * Connects the socket (connect(2)): the kernel then filters receives to
   * that peer and reports ICMP errors (ECONNREFUSED) on later sends.
   * `send(datagrams)` may then omit the destination.
   */
  async connect(destination: UdpEndpoint): Promise<void> {
    const s = this.#check('connect');
    const d = this.#destination(s, destination, 'destination');
    const r = s.binding.udpConnect(s.fd, d.sockaddr.length === 16 && s.inet6 ? mappedV6(d.sockaddr) : d.sockaddr);
    if (r < 0) throw udpError(r, 'connect', d.toString());
    s.remote = d;
  }

  // ---------------------------------------------------------------- receiving

  /**
   * One batch of datagrams with their sources. The views point into the
   * socket's arena and are valid until the next read. Rejects with
   * `ERR_UDP_CLOSED` on close.
   */
  read(): Promise<UdpBatch> {
    let s: UdpState;
    try {
      s = this.#check('read');
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<UdpBatch>((resolve, reject) => {
      s.readers.push({ resolve, reject });
      this.#serveReaders();
    });
  }

  /** Batches as from {@link UdpSocket.read} until the socket closes; same view lifetime. */
  async *[Symbol.asyncIterator](): AsyncGenerator<UdpBatch, void, undefined> {
    for (;;) {
      let batch: UdpBatch;
      try {
        batch = await this.read();
      } catch (err) {
        if (err instanceof VectunError && err.code === 'ERR_UDP_CLOSED') return;
        throw err;
      }
      yield batch;
    }
  }

  /** Stops event mode: no `'datagrams'` until `resume()`; unread datagrams stay in the kernel's queue. */
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

  /** Starts (or restarts) event mode: each batch is emitted as `'datagrams'`. */
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
        this.emit('datagrams', batch);
        // Next batch after the listeners ran and I/O had its turn.
        setImmediate(() => this.#flow());
      },
      reject: (err) => {
        s.flowReader = undefined;
        s.flowing = false;
        if (err.code !== 'ERR_UDP_CLOSED') this.emit('error', err);
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
        const batch = this.#receive();
        if (batch === EAGAIN) break;
        if (batch instanceof VectunError) {
          s.readers.shift()!.reject(batch);
          continue;
        }
        if (batch.datagrams.length === 0) continue; // only truncated messages; read on
        s.readers.shift()!.resolve(batch);
        if (s.readers.length > 0) setImmediate(() => this.#serveReaders());
        break;
      }
    } finally {
      s.serving = false;
    }
    this.#updatePoll();
  }

  /** One recvmmsg, split into datagram views by the GRO segment size. */
  #receive(): UdpBatch | VectunError | typeof EAGAIN {
    const s = this[kState];
    const st = s.stats;
    s.arena ??= new Arena(s.batchSize * UDP_RECV_SLOT).bytes.subarray(0, s.batchSize * UDP_RECV_SLOT);
    const arena = s.arena;
    let n = -EINTR;
    for (let k = 0; k < MAX_EINTR; k++) {
      n = s.binding.udpRecv(s.fd, arena, UDP_RECV_SLOT, s.batchSize, s.lengths, s.segments, s.names, s.drops);
      if (n === -EINTR) continue;
      if (n === -ECONNREFUSED || n === -EHOSTUNREACH || n === -ENETUNREACH) {
        // An ICMP error for an earlier send on a connected socket (the kernel reports it once, on any call):
        // counted, not a receive failure; nothing queued was lost. wireguard-go's receive loop goes on, too.
        const code = udpError(n, 'recvmmsg').code;
        st.receiveErrors[code] = (st.receiveErrors[code] ?? 0) + 1;
        continue;
      }
      break;
    }
    if (n === -EAGAIN) return EAGAIN;
    if (n < 0) return udpError(n, 'recvmmsg');
    if (s.drops[1] === 1 && s.drops[0]! > st.receiveDrops) st.receiveDrops = s.drops[0]!;
    st.receiveCalls++;
    st.receiveMessages += n;
    const datagrams: Uint8Array[] = [];
    const sources: UdpEndpoint[] = [];
    const buffer = arena.buffer;
    const base = arena.byteOffset;
    const names = s.names;
    const words = s.nameWords;
    let bytes = 0;
    let last: UdpEndpoint | undefined;
    let lastAt = 0;
    for (let i = 0; i < n; i++) {
      const len = s.lengths[i]!;
      if (len < 0) {
        st.truncated++;
        continue;
      }
      // Same source as the last accepted message (the common case): skip the lookup.
      let src = last;
      const at = i * SOCKADDR_IN6_LEN;
      if (src === undefined || !sameName(words, at >> 2, lastAt >> 2)) {
        src = s.interner.intern(names, at, SOCKADDR_IN6_LEN);
        if (src === undefined) {
          st.truncated++;
          continue;
        }
      }
      last = src;
      lastAt = at;
      const seg = s.segments[i]!;
      bytes += len;
      const grouped = seg > 0 && seg < len;
      // Steady traffic fills a slot the same way batch after batch: reuse that slot's views
      // (creating typed arrays and collecting them was the largest JS cost per datagram).
      let views = s.slotViews[i];
      if (views === undefined || s.slotLength[i] !== len || s.slotSegment[i] !== (grouped ? seg : 0)) {
        views = sliceSlot(buffer, base + i * UDP_RECV_SLOT, len, grouped ? seg : 0);
        s.slotViews[i] = views;
        s.slotLength[i] = len;
        s.slotSegment[i] = grouped ? seg : 0;
      }
      if (views.length === 1) {
        datagrams.push(views[0]!);
        sources.push(src);
        continue;
      }
      // UDP_GRO (udp(7)): the kernel coalesced datagrams of one flow; all are `seg` bytes but the last.
      st.groReceives++;
      st.groSegments += views.length;
      for (let k = 0; k < views.length; k++) {
        datagrams.push(views[k]!);
        sources.push(src);
      }
    }
    st.datagramsReceived += datagrams.length;
    st.bytesReceived += bytes;
    return { datagrams, sources };
  }

  // ---------------------------------------------------------------- sending

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
    let s: UdpState;
    let dest: UdpEndpoint | undefined;
    try {
      s = this.#check('send');
      if (!Array.isArray(datagrams)) throw invalid('datagrams must be an array of Uint8Array');
      if (destination === undefined) {
        if (s.remote === undefined) throw new VectunError('ERR_UDP_INVALID_ENDPOINT', 'send without a destination needs a connected socket');
      } else dest = this.#destination(s, destination, 'destination');
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#enqueue(() => this.#sendSame(datagrams, dest));
  }

  /**
   * Sends datagrams to several destinations in one batch; consecutive
   * transmits to the same destination with the same size form GSO runs.
   * A transmit with a bad destination or an oversized datagram fails alone
   * (in `failures`); the others are sent.
   * @throws VectunError (rejects) `ERR_UDP_CLOSED`, `ERR_INVALID_ARG`.
   */
  sendBatch(transmits: readonly UdpTransmit[]): Promise<UdpSendResult> {
    try {
      this.#check('sendBatch');
      if (!Array.isArray(transmits)) throw invalid('transmits must be an array of { data, destination }');
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#enqueue(() => this.#sendTransmits(transmits));
  }

  /** One send at a time (the plan and wait state are shared); the first runs at once, in the caller's tick. */
  #enqueue(run: () => Promise<UdpSendResult>): Promise<UdpSendResult> {
    const s = this[kState];
    if (!s.sendBusy && s.sendQueued === 0) {
      const p = run();
      s.sendChain = p.catch(() => undefined);
      return p;
    }
    s.sendQueued++;
    const p = s.sendChain.then(() => {
      s.sendQueued--;
      return run();
    });
    s.sendChain = p.catch(() => undefined);
    return p;
  }

  async #sendSame(datagrams: readonly Uint8Array[], dest: UdpEndpoint | undefined): Promise<UdpSendResult> {
    const s = this[kState];
    if (s.closed) throw closedError('send');
    const result: UdpSendResult = { datagrams: 0, bytes: 0, calls: 0, failures: [] };
    if (datagrams.length === 0) return result;
    const max = (dest ?? s.remote!).family === 4 ? UDP_MAX_PAYLOAD_V4 : UDP_MAX_PAYLOAD_V6;
    let skip: Uint8Array | undefined;
    for (let i = 0; i < datagrams.length; i++) {
      const d = datagrams[i];
      if (d instanceof Uint8Array && d.length <= max) continue;
      skip ??= new Uint8Array(datagrams.length);
      skip[i] = 1;
      this.#fail(result, i, d instanceof Uint8Array
        ? new VectunError('ERR_UDP_MESSAGE_SIZE', `datagrams[${i}] has ${d.length} bytes, more than the ${max} UDP can carry`)
        : invalid(`datagrams[${i}] must be a Uint8Array`));
    }
    const addresses = dest === undefined ? NO_ADDRESSES : dest.sockaddrs;
    await this.#transmit(datagrams, undefined, skip, addresses, dest, result);
    return result;
  }

  async #sendTransmits(transmits: readonly UdpTransmit[]): Promise<UdpSendResult> {
    const s = this[kState];
    if (s.closed) throw closedError('sendBatch');
    const result: UdpSendResult = { datagrams: 0, bytes: 0, calls: 0, failures: [] };
    const n = transmits.length;
    if (n === 0) return result;
    const datagrams: Uint8Array[] = new Array<Uint8Array>(n);
    const destinations: UdpEndpoint[] = new Array<UdpEndpoint>(n);
    let skip: Uint8Array | undefined;
    for (let i = 0; i < n; i++) {
      const t = transmits[i];
      const data = t?.data;
      const dest = t?.destination;
      let error: VectunError | undefined;
      if (!(data instanceof Uint8Array)) error = invalid(`transmits[${i}].data must be a Uint8Array`);
      else if (!(dest instanceof UdpEndpoint)) error = new VectunError('ERR_UDP_INVALID_ENDPOINT', `transmits[${i}].destination must be a UdpEndpoint`);
      else if (!this.#usable(s, dest) || dest.port === 0) error = new VectunError('ERR_UDP_INVALID_ENDPOINT', `transmits[${i}].destination ${dest.toString()} cannot be reached from this socket`);
      else if (data.length > (dest.family === 4 ? UDP_MAX_PAYLOAD_V4 : UDP_MAX_PAYLOAD_V6)) {
        error = new VectunError('ERR_UDP_MESSAGE_SIZE', `transmits[${i}].data has ${data.length} bytes, more than UDP can carry`);
      }
      if (error !== undefined) {
        skip ??= new Uint8Array(n);
        skip[i] = 1;
        this.#fail(result, i, error);
        datagrams[i] = EMPTY;
        destinations[i] = dest instanceof UdpEndpoint ? dest : PLACEHOLDER;
        continue;
      }
      datagrams[i] = data as Uint8Array;
      destinations[i] = dest as UdpEndpoint;
    }
    await this.#transmit(datagrams, destinations, skip, undefined, undefined, result);
    return result;
  }

  #fail(result: UdpSendResult, index: number, error: VectunError): void {
    result.failures.push({ index, error });
    const f = this[kState].stats.sendFailures;
    f[error.code] = (f[error.code] ?? 0) + 1;
  }

  /**
   * Plans and sends; EAGAIN waits for writability and resumes at the same
   * message, EINTR retries, EIO on a GSO message turns GSO off and replans the
   * rest, EINVAL/EMSGSIZE on a GSO message resends it one datagram per
   * message, other errnos fail the message's datagrams and go on.
   */
  async #transmit(
    datagrams: readonly Uint8Array[], destinations: readonly UdpEndpoint[] | undefined, skip: Uint8Array | undefined,
    fixed: readonly Uint8Array[] | undefined, target: UdpEndpoint | undefined, result: UdpSendResult,
  ): Promise<void> {
    const s = this[kState];
    const st = s.stats;
    let plan = s.plan;
    plan.reset();
    planSend(datagrams, destinations, skip, 0, s.limits, plan);
    s.sendBusy = true;
    try {
      let m = 0;
      let interrupts = 0;
      while (m < plan.messages) {
        if (s.closed) throw closedError('send');
        const addresses = fixed ?? plan.addresses;
        const sent = s.binding.udpSend(s.fd, datagrams, plan.plan, addresses, m, plan.messages - m, s.inet6);
        if (sent > 0) {
          result.calls++;
          st.sendCalls++;
          st.sendMessages += sent;
          const p = plan.plan;
          let count = 0;
          let bytes = 0;
          for (let k = m; k < m + sent; k++) {
            const first = p[k * PLAN_STRIDE]!;
            const c = p[k * PLAN_STRIDE + 1]!;
            for (let j = first; j < first + c; j++) bytes += datagrams[j]!.length;
            count += c;
            if (p[k * PLAN_STRIDE + 2]! > 0) {
              st.gsoSends++;
              st.gsoSegments += c;
            }
          }
          result.datagrams += count;
          result.bytes += bytes;
          st.datagramsSent += count;
          st.bytesSent += bytes;
          m += sent;
          interrupts = 0;
          continue;
        }
        if (sent === -EINTR) {
          if (++interrupts > MAX_EINTR) throw udpError(sent, 'sendmmsg');
          continue;
        }
        if (sent === -EAGAIN) {
          st.sendWaits++;
          await this.#waitWritable();
          continue;
        }
        if (sent === 0) throw new VectunError('ERR_UDP_SYSCALL', 'sendmmsg sent no message', { syscall: 'sendmmsg' });
        const first = plan.plan[m * PLAN_STRIDE]!;
        const count = plan.plan[m * PLAN_STRIDE + 1]!;
        const segment = plan.plan[m * PLAN_STRIDE + 2]!;
        if (segment > 0 && (sent === -EIO || sent === -EINVAL || sent === -EMSGSIZE)) {
          // Replan from this message on; the messages before it were sent.
          const rest = s.spare;
          rest.reset();
          if (sent === -EIO) {
            this.#gsoFallback();
            planSend(datagrams, destinations, skip, first, s.limits, rest);
          } else {
            // The route's MTU is below this segment size: this message one datagram at a time, smaller runs from now on.
            st.gsoSplits++;
            s.limits.maxSegmentSize = Math.min(s.limits.maxSegmentSize, segment - 1);
            for (let j = first; j < first + count; j++) {
              rest.push(j, 1, 0);
              if (destinations !== undefined) rest.addresses.push(destinations[j]!.sockaddr);
            }
            planSend(datagrams, destinations, skip, first + count, s.limits, rest);
          }
          s.spare = plan;
          s.plan = rest;
          plan = rest;
          m = 0;
          continue;
        }
        const error = udpError(sent, 'sendmmsg', (destinations?.[first] ?? target ?? s.remote)?.toString());
        for (let j = first; j < first + count; j++) this.#fail(result, j, error);
        m++;
      }
    } finally {
      s.sendBusy = false;
    }
  }

  #gsoFallback(): void {
    const s = this[kState];
    s.gso = false;
    s.limits.maxSegments = 1;
    s.stats.gsoFallbacks++;
    if (!s.warned) {
      s.warned = true;
      this.emit('warning', new VectunError('ERR_UDP_GSO_FALLBACK', `${s.local.toString()}: a UDP_SEGMENT send failed with EIO (no checksum offload on the route's device); GSO is now off for this socket`, { errno: EIO, syscall: 'sendmmsg' }));
    }
  }

  #waitWritable(): Promise<void> {
    const s = this[kState];
    return new Promise<void>((resolve, reject) => {
      s.writable = { resolve: () => resolve(), reject };
      this.#updatePoll();
    });
  }

  // ---------------------------------------------------------------- readiness

  #updatePoll(idle = false): void {
    const s = this[kState];
    if (s.closed) return;
    let wantRead = s.readers.length > 0;
    if (!wantRead && !idle && (s.pollMask & POLL_READABLE) !== 0) {
      // As in Tun: keep watching until the check phase, so a reader that comes
      // back in the same tick costs no epoll_ctl DEL/ADD pair.
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
    if (status < 0) s.pollMask = 0;
    if ((status < 0 || (events & POLL_WRITABLE) !== 0) && s.writable !== undefined) {
      const w = s.writable;
      s.writable = undefined;
      w.resolve(EMPTY_BATCH);
    }
    if (status < 0 || (events & POLL_READABLE) !== 0) this.#serveReaders();
    this.#updatePoll();
  }

  /** Lets the process exit while a read waits (like `socket.unref()`). */
  unref(): this {
    const s = this.#check('unref');
    s.binding.pollRef(s.poller, false);
    return this;
  }

  /** Undoes {@link UdpSocket.unref}: a waiting read keeps the process alive again. */
  ref(): this {
    const s = this.#check('ref');
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
    if (s.closing !== undefined) return s.closing;
    s.closed = true;
    s.flowing = false;
    s.flowReader = undefined;
    // Stop watching before closing the descriptor (libuv requirement).
    s.binding.pollClose(s.poller);
    s.binding.close(s.fd);
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

  /** `await using sock = await UdpSocket.open()`: closes the socket. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

const EMPTY = new Uint8Array(0);
const EMPTY_BATCH: UdpBatch = { datagrams: [], sources: [] };
/** Stands in for a missing destination of a rejected transmit (never sent). */
const PLACEHOLDER = UdpEndpoint.of('0.0.0.0', 0);

/** Views on one receive slot: one datagram, or `segment`-byte datagrams (the last may be shorter). */
function sliceSlot(buffer: ArrayBufferLike, offset: number, length: number, segment: number): Uint8Array[] {
  if (segment === 0) return [new Uint8Array(buffer, offset, length)];
  const views: Uint8Array[] = [];
  for (let p = 0; p < length; p += segment) views.push(new Uint8Array(buffer, offset + p, Math.min(segment, length - p)));
  return views;
}

/** Whether the sockaddrs at words `a` and `b` (7 x 32 bits each) are equal. */
function sameName(w: Int32Array, a: number, b: number): boolean {
  return w[a] === w[b] && w[a + 1] === w[b + 1] && w[a + 2] === w[b + 2] && w[a + 3] === w[b + 3] &&
    w[a + 4] === w[b + 4] && w[a + 5] === w[b + 5] && w[a + 6] === w[b + 6];
}

/** sockaddr_in → IPv4-mapped sockaddr_in6 (for connect on a dual-stack socket). */
function mappedV6(sin: Uint8Array): Uint8Array {
  const out = new Uint8Array(SOCKADDR_IN6_LEN);
  const head = UdpEndpoint.of('::', 0).sockaddr;
  out.set(head.subarray(0, 2), 0); // AF_INET6, host order
  out[2] = sin[2]!;
  out[3] = sin[3]!;
  out[18] = 0xff;
  out[19] = 0xff;
  out.set(sin.subarray(4, 8), 20);
  return out;
}
