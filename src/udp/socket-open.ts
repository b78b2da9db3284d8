/**
 * Opening a {@link UdpSocket}: option validation, socket(2) (in a network
 * namespace if asked), buffer sizes and fwmark, the GSO/GRO probes, bind;
 * and connect(2).
 *
 * Fallbacks instead of failures: no UDP_SEGMENT at open → one datagram per
 * message; IPv6 disabled → the default socket is IPv4.
 * @module
 */
import { VectunError } from '../errors.js';
import type { PollHandle } from '../device/native.js';
import { SOCKADDR_IN6_LEN, SourceInterner, UdpEndpoint, mappedSockaddr, parseSockaddr } from './address.js';
import { loadUdpBinding, type UdpBinding } from './native.js';
import { SendPlan, UDP_MAX_PAYLOAD_V6, UDP_MAX_SEGMENTS } from './plan.js';
import { checkOpen, destination, udpError, type UdpHost, type UdpState } from './socket-state.js';
import { invalid, optionalBool, optionalInt } from '../options.js';
import { emptyStats } from './socket-stats.js';

const EPERM = 1;
const EACCES = 13;
const EAFNOSUPPORT = 97;

/** Messages per recvmmsg/sendmmsg call by default. */
export const UDP_DEFAULT_BATCH = 64;

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

/** A bound socket, before it has a poller and a UdpSocket around it. */
export interface OpenedSocket {
  binding: UdpBinding;
  fd: number;
  inet6: boolean;
  dual: boolean;
  local: UdpEndpoint;
  batchSize: number;
  gso: boolean;
  gro: boolean;
  signal: AbortSignal | undefined;
}

/** Validates `options`, then opens, configures, probes and binds; the descriptor is closed on failure. */
export function openSocket(options: UdpOpenOptions): OpenedSocket {
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
    // The FORCE variant passes net.core.[rw]mem_max but needs CAP_NET_ADMIN; without it, the capped one.
    const setBuffer = (force: 'SO_RCVBUFFORCE' | 'SO_SNDBUFFORCE', capped: 'SO_RCVBUF' | 'SO_SNDBUF', bytes: number): void => {
      const r = setOpt(force, bytes);
      if (r === -EPERM || r === -EACCES) {
        const r2 = setOpt(capped, bytes);
        if (r2 < 0) throw udpError(r2, 'setsockopt', capped);
      } else if (r < 0) throw udpError(r, 'setsockopt', force);
    };
    if (rcvbuf !== undefined) setBuffer('SO_RCVBUFFORCE', 'SO_RCVBUF', rcvbuf);
    if (sndbuf !== undefined) setBuffer('SO_SNDBUFFORCE', 'SO_SNDBUF', sndbuf);
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
    const r = b.udpBind(fd, inet6 && bindTo.family === 4 ? mappedSockaddr(bindTo.sockaddr) : bindTo.sockaddr);
    if (r < 0) throw udpError(r, 'bind', bindTo.toString());
    const name = new Uint8Array(SOCKADDR_IN6_LEN);
    const n = b.udpSockname(fd, name);
    if (n < 0) throw udpError(n, 'getsockname');
    const bound = parseSockaddr(name, 0, n) ?? bindTo;
    const gso = wantGso && gsoSupported;
    return { binding: b, fd, inet6, dual: effective === 'dual', local: bound, batchSize, gso, gro, signal: o.signal };
  } catch (err) {
    b.close(fd);
    throw err;
  }
}

/** The state of a freshly opened socket watched by `poller`. */
export function initialState(opened: OpenedSocket, poller: PollHandle): UdpState {
  const { binding: b, fd, inet6, dual, local, batchSize, gso, gro, signal } = opened;
  const names = new Uint8Array(new ArrayBuffer(SOCKADDR_IN6_LEN * batchSize));
  return {
    binding: b, fd, poller, pollMask: 0, idleCheck: false, inet6, dual, local, remote: undefined,
    batchSize, gso, gro, limits: { maxSegments: gso ? UDP_MAX_SEGMENTS : 1, maxSegmentSize: UDP_MAX_PAYLOAD_V6 },
    closed: false, closing: undefined, readers: [], serving: false, flowing: false, paused: false, flowReader: undefined,
    arena: undefined, lengths: new Int32Array(new ArrayBuffer(4 * batchSize)), segments: new Int32Array(new ArrayBuffer(4 * batchSize)),
    names, nameWords: new Int32Array(names.buffer), drops: new Uint32Array(new ArrayBuffer(8)),
    slotViews: new Array<Uint8Array[] | undefined>(batchSize).fill(undefined), slotLength: new Int32Array(batchSize).fill(-1),
    slotSegment: new Int32Array(batchSize),
    interner: new SourceInterner(), sendBusy: false, sendQueued: 0, sendChain: Promise.resolve(), plan: new SendPlan(), spare: new SendPlan(),
    writable: undefined, warned: false, stats: emptyStats(), signal, onAbort: undefined,
  };
}

/** `UdpSocket.connect()`: connect(2) to a validated destination. */
export function connect(sock: UdpHost, to: UdpEndpoint): void {
  const s = checkOpen(sock, 'connect');
  const d = destination(s, to, 'destination');
  const r = s.binding.udpConnect(s.fd, d.sockaddr.length === 16 && s.inet6 ? mappedSockaddr(d.sockaddr) : d.sockaddr);
  if (r < 0) throw udpError(r, 'connect', d.toString());
  s.remote = d;
}
