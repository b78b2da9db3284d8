/**
 * The private state of one {@link UdpSocket} and the small checks every part
 * of it uses (open check, option and endpoint validation, errno mapping). The
 * other `socket-*.ts` files are functions over this state: `socket-open.ts`
 * (open, capability probing, connect), `socket-read.ts` (receive path, event
 * mode), `socket-send.ts` (send path, plan execution, GSO fallbacks),
 * `socket-stats.ts` (counters); readers, event mode, readiness and close are
 * `src/io/event-loop.ts`, shared with Tun; `socket.ts` is the public class
 * that wires them.
 * @module
 */
import type { EventEmitter } from 'node:events';
import { VectunError } from '../errors.js';
import { EMSGSIZE, errnoName } from '../device/native.js';
import { closedErrorOf, type IoState } from '../io/event-loop.js';
import { UdpEndpoint, type SourceInterner } from './address.js';
import type { UdpBinding } from './native.js';
import type { PlanLimits, SendPlan } from './plan.js';
import type { UdpBatch } from './socket-read.js';
import type { UdpCounters } from './socket-stats.js';


export const ECONNREFUSED = 111;
export const EHOSTUNREACH = 113;
export const ENETUNREACH = 101;
/** Names src/device/native.ts does not know. */
const UDP_ERRNO_NAMES: Record<number, string> = { 97: 'EAFNOSUPPORT', 98: 'EADDRINUSE', 111: 'ECONNREFUSED', 113: 'EHOSTUNREACH', 92: 'ENOPROTOOPT' };

/** Consecutive EINTRs after which a call gives up (a signal storm, not progress). */
export const MAX_EINTR = 1000;

/**
 * Everything a UdpSocket knows; one object under {@link kState}. The
 * event-loop part (poller, readers, event mode, the writable wait, closing,
 * signal) is {@link IoState}'s.
 */
export interface UdpState extends IoState<UdpBatch> {
  binding: UdpBinding;
  fd: number;
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
  // receive side
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
  warned: boolean;
  stats: UdpCounters;
}

/** The key of a UdpSocket's state. */
export const kState = Symbol('vectun.udp');

/** What the parts see of a UdpSocket: its state and its events. */
export interface UdpHost extends EventEmitter {
  readonly [kState]: UdpState;
}

export const closedError = closedErrorOf('ERR_UDP_CLOSED', 'the UDP socket');

/** The state of an open socket; `ERR_UDP_CLOSED` naming `what` otherwise. */
export function checkOpen(sock: UdpHost, what: string): UdpState {
  const s = sock[kState];
  if (s.closed) throw closedError(what);
  return s;
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

/** Whether this socket can send to / receive from `e` (family and dual-stack). */
export function usable(s: UdpState, e: UdpEndpoint): boolean {
  return e.family === 6 ? s.inet6 : !s.inet6 || s.dual;
}

/** `e` as a destination of this socket; `ERR_UDP_INVALID_ENDPOINT` naming `what` otherwise. */
export function destination(s: UdpState, e: unknown, what: string): UdpEndpoint {
  if (!(e instanceof UdpEndpoint)) throw new VectunError('ERR_UDP_INVALID_ENDPOINT', `${what} must be a UdpEndpoint (UdpSocket.endpoint(address, port))`);
  if (!usable(s, e)) {
    throw new VectunError('ERR_UDP_INVALID_ENDPOINT', `${what} ${e.toString()} is IPv${e.family}, which this ${s.inet6 ? (s.dual ? 'dual-stack' : 'IPv6-only') : 'IPv4'} socket cannot reach`);
  }
  if (e.port === 0) throw new VectunError('ERR_UDP_INVALID_ENDPOINT', `${what} ${e.toString()} has port 0`);
  return e;
}
