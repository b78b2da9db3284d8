/**
 * A scriptable stand-in for the native addon (src/device/native.ts), so the
 * device layer's policy can be tested without root: frames to read are queued
 * by the test, writev results can be injected, readiness is fired by hand, and
 * netlink requests are acknowledged like the kernel does.
 */
import type { NativeBinding, PollHandle, TunIoctl } from '../../src/device/native.js';

export const EINTR = 4;
export const EIO = 5;
export const EAGAIN = 11;
export const EINVAL = 22;
export const EBADFD = 77;

const IFF_VNET_HDR = 0x4000;

interface Poller {
  fd: number;
  callback: (status: number, events: number) => void;
  mask: number;
  closed: boolean;
  ref: boolean;
}

interface NetlinkSock {
  groups: number;
  inbox: Uint8Array[];
}

export interface FakeOptions {
  /** TUNSETOFFLOAD values the kernel accepts; default all. */
  acceptOffload?: (flags: number) => boolean;
  /** TUNSETIFF refuses IFF_VNET_HDR with EINVAL. */
  refuseVnetHdr?: boolean;
  mtu?: number;
}

export class FakeBinding implements NativeBinding {
  readonly ioctls: { fd: number; request: TunIoctl; value: number }[] = [];
  readonly opened: { name: string; flags: number; fd: number }[] = [];
  readonly closedFds: number[] = [];
  /** Every writev attempt, as copies of its buffers. */
  readonly attempts: Uint8Array[][] = [];
  /** The successful ones. */
  readonly written: Uint8Array[][] = [];
  /** Results to inject into the next writev calls (negative errno); undefined = success. */
  readonly writeScript: (number | undefined)[] = [];
  /** Frames the next reads return. */
  readonly frames: Uint8Array[] = [];
  readonly pollers: Poller[] = [];
  readonly netlinkSent: Uint8Array[] = [];
  readonly sockets = new Map<number, NetlinkSock>();
  readonly ifindex = 7;
  removed = false;
  readCalls = 0;
  #nextFd = 100;
  #flags = new Map<number, number>();
  #name = 'fake0';
  readonly #options: FakeOptions;

  constructor(options: FakeOptions = {}) {
    this.#options = options;
  }

  tunOpen(name: string, flags: number): number {
    if (this.#options.refuseVnetHdr === true && (flags & IFF_VNET_HDR) !== 0) return -EINVAL;
    const fd = this.#nextFd++;
    if (name !== '') this.#name = name.replace('%d', '0');
    this.#flags.set(fd, flags);
    this.opened.push({ name, flags, fd });
    return fd;
  }

  tunGetIff(fd: number): { name: string; flags: number } | number {
    if (this.removed) return -EBADFD;
    return { name: this.#name, flags: this.#flags.get(fd) ?? 0 };
  }

  tunIoctl(fd: number, request: TunIoctl, value: number): number {
    this.ioctls.push({ fd, request, value });
    if (request === 'TUNSETOFFLOAD' && !(this.#options.acceptOffload?.(value) ?? true)) return -EINVAL;
    return 0;
  }

  setNonBlocking(): number {
    return 0;
  }

  close(fd: number): number {
    this.closedFds.push(fd);
    this.sockets.delete(fd);
    return 0;
  }

  ifIndex(): number {
    return this.ifindex;
  }

  readBatch(_fd: number, arena: Uint8Array, slotSize: number, maxFrames: number, lengths: Int32Array): number {
    this.readCalls++;
    if (this.removed) return -EBADFD;
    if (this.frames.length === 0) return -EAGAIN;
    let n = 0;
    while (n < maxFrames && this.frames.length > 0) {
      const f = this.frames.shift()!;
      arena.set(f, n * slotSize);
      lengths[n++] = f.length;
    }
    return n;
  }

  writeLists(_fd: number, lists: readonly (readonly Uint8Array[])[], start: number, results: Int32Array): number {
    for (let i = start; i < lists.length; i++) {
      const list = lists[i]!;
      this.attempts.push(list.map((b) => b.slice()));
      const injected = this.writeScript.shift();
      if (injected === -EINTR) {
        // The real addon retries EINTR itself; a binding that surfaces it must be retried by the caller.
        results[i] = injected;
        return i;
      }
      if (injected !== undefined && injected < 0) {
        results[i] = injected;
        if (injected === -EAGAIN || injected === -EBADFD) return i;
        continue;
      }
      this.written.push(list.map((b) => b.slice()));
      results[i] = injected ?? list.reduce((n, b) => n + b.length, 0);
    }
    return lists.length;
  }

  nlOpen(groups: number): number {
    const fd = this.#nextFd++;
    this.sockets.set(fd, { groups, inbox: [] });
    return fd;
  }

  nlSend(fd: number, message: Uint8Array): number {
    this.netlinkSent.push(message.slice());
    const dv = new DataView(message.buffer, message.byteOffset, message.byteLength);
    const type = dv.getUint16(4, true);
    const seq = dv.getUint32(8, true);
    const sock = this.sockets.get(fd)!;
    if (type === 18 /* RTM_GETLINK */) sock.inbox.push(linkMessage(16, this.ifindex, this.#options.mtu ?? 1500, 0, seq));
    sock.inbox.push(ackMessage(seq, 0));
    setImmediate(() => this.#fireFd(fd, 1));
    return message.length;
  }

  nlRecv(fd: number, buffer: Uint8Array): number {
    const m = this.sockets.get(fd)?.inbox.shift();
    if (m === undefined) return -EAGAIN;
    buffer.set(m);
    return m.length;
  }

  pollCreate(fd: number, callback: (status: number, events: number) => void): PollHandle {
    const p: Poller = { fd, callback, mask: 0, closed: false, ref: true };
    this.pollers.push(p);
    return p as unknown as PollHandle;
  }

  pollSet(handle: PollHandle, events: number): number {
    (handle as unknown as Poller).mask = events;
    return 0;
  }

  pollClose(handle: PollHandle): number {
    (handle as unknown as Poller).closed = true;
    return 0;
  }

  pollRef(handle: PollHandle, ref: boolean): number {
    (handle as unknown as Poller).ref = ref;
    return 0;
  }

  /** The poller of the TUN descriptor (the first one created). */
  get tunPoller(): Poller {
    return this.pollers[0]!;
  }

  /** Fires the TUN poller for `events` if it watches any of them (like libuv). */
  fire(events: number, status = 0): boolean {
    const p = this.tunPoller;
    if (p.closed || (status === 0 && (p.mask & events) === 0)) return false;
    p.callback(status, status < 0 ? 0 : events & p.mask);
    return true;
  }

  #fireFd(fd: number, events: number): void {
    for (const p of this.pollers) if (p.fd === fd && !p.closed && (p.mask & events) !== 0) p.callback(0, events);
  }

  /** Delivers a link event on every socket bound to RTMGRP_LINK. */
  linkEvent(type: 16 | 17, mtu: number, flags: number, index = this.ifindex): void {
    for (const [fd, s] of this.sockets) {
      if ((s.groups & 1) === 0) continue;
      s.inbox.push(linkMessage(type, index, mtu, flags, 0));
      this.#fireFd(fd, 1);
    }
  }
}

function linkMessage(type: number, index: number, mtu: number, flags: number, seq: number): Uint8Array {
  const m = new Uint8Array(16 + 16 + 8);
  const dv = new DataView(m.buffer);
  dv.setUint32(0, m.length, true);
  dv.setUint16(4, type, true);
  dv.setUint32(8, seq, true);
  dv.setInt32(16 + 4, index, true);
  dv.setUint32(16 + 8, flags, true);
  dv.setUint16(32, 8, true);
  dv.setUint16(34, 4 /* IFLA_MTU */, true);
  dv.setUint32(36, mtu, true);
  return m;
}

function ackMessage(seq: number, error: number): Uint8Array {
  const m = new Uint8Array(16 + 4 + 16);
  const dv = new DataView(m.buffer);
  dv.setUint32(0, m.length, true);
  dv.setUint16(4, 2 /* NLMSG_ERROR */, true);
  dv.setUint32(8, seq, true);
  dv.setInt32(16, error, true);
  return m;
}
