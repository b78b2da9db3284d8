/**
 * A scriptable stand-in for native/udp.c (src/udp/native.ts), so UdpSocket's
 * policy (planning, fallbacks, error mapping, waits, closing, receive
 * splitting) is testable without sockets: sends are recorded message by
 * message, send results can be injected, received messages are queued by the
 * test, readiness is fired by hand.
 */
import { mappedSockaddr } from '../../src/udp/address.js';
import type { UdpBinding, UdpGetOption, UdpSetOption } from '../../src/udp/native.js';
import { FakePolls } from '../fake-poll.js';

export const EINTR = 4;
export const EIO = 5;
export const EAGAIN = 11;
export const EINVAL = 22;
export const EMSGSIZE = 90;
export const ENOPROTOOPT = 92;
export const ENETUNREACH = 101;
export const ECONNREFUSED = 111;
export const EHOSTUNREACH = 113;

/** One message as the kernel would have seen it. */
export interface SentMessage {
  /** The gathered payload (copied at send time). */
  data: Uint8Array;
  /** Its buffers as passed (identity, to check nothing was copied). */
  buffers: Uint8Array[];
  /** UDP_SEGMENT size, 0 without. */
  segment: number;
  /** Destination sockaddr bytes (empty when connected), after IPv4 mapping. */
  address: Uint8Array;
}

/** A queued receive. */
export interface QueuedMessage {
  data: Uint8Array;
  /** UDP_GRO segment size, 0 = a single datagram. */
  segment?: number;
  /** Source sockaddr (16 or 28 bytes). */
  name: Uint8Array;
  truncated?: boolean;
}

/**
 * What the next udpSend call does: a negative errno fails the first message,
 * a positive number accepts that many messages (at most what was offered),
 * undefined accepts all; a function decides from the messages offered.
 */
export type SendStep = number | undefined | ((offered: SentMessage[]) => number);

export interface FakeUdpOptions {
  /** getsockopt(UDP_SEGMENT) result; default 0 (supported). */
  gsoProbe?: number;
  /** setsockopt(UDP_GRO) result; default 0 (accepted). */
  groProbe?: number;
  /** Port the kernel "picks" for port 0. */
  port?: number;
  /** socket(AF_INET6) fails with EAFNOSUPPORT (IPv6 disabled). */
  noInet6?: boolean;
}


export class FakeUdpBinding extends FakePolls implements UdpBinding {
  readonly opened: { family: 4 | 6; v6only: number; netns: string; fd: number }[] = [];
  readonly options: { name: UdpSetOption; value: number }[] = [];
  readonly closedFds: number[] = [];
  /** Every udpSend call: the messages offered. */
  readonly sendCalls: SentMessage[][] = [];
  /** The messages the "kernel" took, in order. */
  readonly sent: SentMessage[] = [];
  readonly sendScript: SendStep[] = [];
  readonly inbox: QueuedMessage[] = [];
  /** Results for the next udpRecv calls (negative errno); undefined = normal. */
  readonly recvScript: (number | undefined)[] = [];
  /** Cumulative SO_RXQ_OVFL count reported with the next receive, if set. */
  drops: number | undefined;
  recvCalls = 0;
  bound: Uint8Array | undefined;
  connected: Uint8Array | undefined;
  #nextFd = 200;
  readonly #o: FakeUdpOptions;

  constructor(options: FakeUdpOptions = {}) {
    super();
    this.#o = options;
  }

  udpOpen(family: 4 | 6, v6only: number, netns: string): number {
    if (family === 6 && this.#o.noInet6 === true) return -97;
    const fd = this.#nextFd++;
    this.opened.push({ family, v6only, netns, fd });
    return fd;
  }

  udpBind(_fd: number, sockaddr: Uint8Array): number {
    this.bound = sockaddr.slice();
    return 0;
  }

  udpConnect(_fd: number, sockaddr: Uint8Array): number {
    this.connected = sockaddr.slice();
    return 0;
  }

  udpSockname(_fd: number, out: Uint8Array): number {
    const b = this.bound!;
    out.set(b);
    if ((b[2]! | b[3]!) === 0) {
      const port = this.#o.port ?? 40000;
      out[2] = port >>> 8;
      out[3] = port & 0xff;
    }
    return b.length;
  }

  udpSetOption(_fd: number, name: UdpSetOption, value: number): number {
    this.options.push({ name, value });
    if (name === 'UDP_GRO') return this.#o.groProbe ?? 0;
    return 0;
  }

  udpGetOption(_fd: number, name: UdpGetOption): number {
    if (name === 'UDP_SEGMENT') return this.#o.gsoProbe ?? 0;
    return 0;
  }

  udpSend(_fd: number, buffers: readonly Uint8Array[], plan: Int32Array, addresses: readonly Uint8Array[], start: number, count: number, mapV4: boolean): number {
    const offered: SentMessage[] = [];
    for (let m = start; m < start + count && m - start < 1024; m++) {
      const first = plan[3 * m]!;
      const n = plan[3 * m + 1]!;
      const bufs = buffers.slice(first, first + n);
      let len = 0;
      for (const b of bufs) len += b.length;
      const data = new Uint8Array(len);
      let at = 0;
      for (const b of bufs) {
        data.set(b, at);
        at += b.length;
      }
      let address = addresses.length === 0 ? new Uint8Array(0) : (addresses.length === 1 ? addresses[0]! : addresses[m]!);
      if (mapV4 && address.length === 16) address = mappedSockaddr(address);
      offered.push({ data, buffers: bufs, segment: plan[3 * m + 2]!, address: address.slice() });
    }
    this.sendCalls.push(offered);
    const step = this.sendScript.shift();
    const r = typeof step === 'function' ? step(offered) : step === undefined ? offered.length : step;
    if (r > 0) this.sent.push(...offered.slice(0, r));
    return r > 0 ? Math.min(r, offered.length) : r;
  }

  udpRecv(_fd: number, arena: Uint8Array, slotSize: number, maxMessages: number, lengths: Int32Array, segments: Int32Array, names: Uint8Array, drops: Uint32Array): number {
    this.recvCalls++;
    const scripted = this.recvScript.shift();
    if (scripted !== undefined) return scripted;
    if (this.inbox.length === 0) return -EAGAIN;
    let n = 0;
    drops[1] = 0;
    while (n < maxMessages && this.inbox.length > 0) {
      const m = this.inbox.shift()!;
      arena.set(m.data.subarray(0, slotSize), n * slotSize);
      lengths[n] = m.truncated === true ? -1 : m.data.length;
      segments[n] = m.segment ?? 0;
      names.fill(0, 28 * n, 28 * n + 28);
      names.set(m.name, 28 * n);
      n++;
    }
    if (this.drops !== undefined) {
      drops[0] = this.drops;
      drops[1] = 1;
    }
    return n;
  }

  close(fd: number): number {
    this.closedFds.push(fd);
    return 0;
  }

  /** The socket's current poll mask (1 readable, 2 writable). */
  get mask(): number {
    return this.pollers[0]?.mask ?? 0;
  }

  /** Fires readiness as libuv would. */
  fire(events: number, status = 0): void {
    const p = this.pollers[0]!;
    if (!p.closed) p.callback(status, events);
  }
}
