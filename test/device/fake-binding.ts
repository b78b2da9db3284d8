/**
 * A scriptable stand-in for the native addon (src/device/native.ts), so the
 * device layer's policy can be tested without root: frames to read are queued
 * by the test, writev results can be injected, readiness is fired by hand, and
 * netlink requests are acknowledged like the kernel does.
 */
import type { NativeBinding, TunIoctl } from '../../src/device/native.js';
import { FakePolls, type FakePoller } from '../fake-poll.js';

export const EINTR = 4;
export const EIO = 5;
export const EAGAIN = 11;
export const EINVAL = 22;
export const EBADFD = 77;
export const ENODEV = 19;

const IFF_VNET_HDR = 0x4000;


interface NetlinkSock {
  groups: number;
  inbox: Uint8Array[];
  /** Inode of the namespace it was opened in. */
  netns: number;
}

/** Namespace inode of the caller (sockets opened without a namespace fd). */
export const HOME_NETNS = 4026531840;

export interface FakeOptions {
  /** TUNSETOFFLOAD values the kernel accepts; default all. */
  acceptOffload?: (flags: number) => boolean;
  /** TUNSETIFF refuses IFF_VNET_HDR with EINVAL. */
  refuseVnetHdr?: boolean;
  mtu?: number;
  /** TUNGETDEVNETNS works (Linux 5.2+); default: it fails with ENOTTY, as on older kernels. */
  netns?: boolean;
}

export class FakeBinding extends FakePolls implements NativeBinding {
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
  readonly netlinkSent: Uint8Array[] = [];
  readonly sockets = new Map<number, NetlinkSock>();
  /** The device's index in the namespace it is in. */
  ifindex = 7;
  /** Inode of the namespace the device is in. */
  deviceNetns = HOME_NETNS;
  /** Namespace fds handed out by tunNetns and not closed yet: fd -> inode. */
  readonly netnsFds = new Map<number, number>();
  /** The namespace (inode) of every nlOpen, in order. */
  readonly nlOpens: number[] = [];
  removed = false;
  readCalls = 0;
  #nextFd = 100;
  #flags = new Map<number, number>();
  #name = 'fake0';
  readonly #options: FakeOptions;

  constructor(options: FakeOptions = {}) {
    super();
    this.#options = options;
    this.linkMtu = options.mtu ?? 1500;
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

  tunNetns(): { fd: number; dev: number; inode: number } | number {
    if (this.#options.netns !== true) return -25; // ENOTTY
    if (this.removed) return -EBADFD;
    const fd = this.#nextFd++;
    this.netnsFds.set(fd, this.deviceNetns);
    return { fd, dev: 4, inode: this.deviceNetns };
  }

  close(fd: number): number {
    this.closedFds.push(fd);
    this.sockets.delete(fd);
    this.netnsFds.delete(fd);
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

  nlOpen(groups: number, netnsFd = -1): number {
    const netns = netnsFd < 0 ? HOME_NETNS : this.netnsFds.get(netnsFd);
    if (netns === undefined) return -9; // EBADF
    const fd = this.#nextFd++;
    this.sockets.set(fd, { groups, inbox: [], netns });
    this.nlOpens.push(netns);
    return fd;
  }

  /** Called with each request's type before the fake kernel handles it. */
  beforeNetlinkRequest: ((type: number) => void) | undefined;

  nlSend(fd: number, message: Uint8Array): number {
    this.netlinkSent.push(message.slice());
    const dv = new DataView(message.buffer, message.byteOffset, message.byteLength);
    const type = dv.getUint16(4, true);
    this.beforeNetlinkRequest?.(type);
    const seq = dv.getUint32(8, true);
    const sock = this.sockets.get(fd)!;
    // The device is visible (and changeable) only from sockets in its namespace.
    const here = sock.netns === this.deviceNetns && !this.removed;
    if (type === 18 /* RTM_GETLINK */ && here) sock.inbox.push(linkMessage(16, this.ifindex, this.linkMtu, this.linkFlags, seq, this.#name));
    if (type === 16 /* RTM_NEWLINK */ && here) this.#applyNewLink(message);
    sock.inbox.push(ackMessage(seq, here ? 0 : -ENODEV));
    setImmediate(() => this.#fireFd(fd, 1));
    return message.length;
  }

  nlRecv(fd: number, buffer: Uint8Array): number {
    const m = this.sockets.get(fd)?.inbox.shift();
    if (m === undefined) return -EAGAIN;
    buffer.set(m);
    return m.length;
  }

  /** The poller of the TUN descriptor (the first one created). */
  get tunPoller(): FakePoller {
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

  /** Delivers a link event on every socket bound to RTMGRP_LINK (in namespace `netns`, when given). */
  linkEvent(type: 16 | 17, mtu: number, flags: number, index = this.ifindex, netns?: number): void {
    if (type === 16 && index === this.ifindex) {
      this.linkMtu = mtu;
      this.linkFlags = flags;
    }
    for (const [fd, s] of this.sockets) {
      if ((s.groups & 1) === 0 || (netns !== undefined && s.netns !== netns)) continue;
      s.inbox.push(linkMessage(type, index, mtu, flags, 0, this.#name));
      this.#fireFd(fd, 1);
    }
  }

  /**
   * `ip link set dev X netns N`: the kernel closes the device (down), sends
   * RTM_DELLINK in the old namespace, and it gets `ifindex` in the new one.
   */
  moveTo(netns: number, ifindex = this.ifindex): void {
    const from = [...this.sockets].filter(([, s]) => (s.groups & 1) !== 0 && s.netns === this.deviceNetns);
    for (const [, s] of from) s.inbox.push(linkMessage(17, this.ifindex, this.linkMtu, 0, 0, this.#name));
    this.linkFlags = 0;
    // By the time the old namespace's listeners read the DELLINK, the device is in the new one.
    this.deviceNetns = netns;
    this.ifindex = ifindex;
    for (const [fd] of from) this.#fireFd(fd, 1);
  }

  /** The MTU and flags RTM_GETLINK reports (updated by link events and RTM_NEWLINK requests). */
  linkMtu: number;
  linkFlags = 0;

  #applyNewLink(message: Uint8Array): void {
    const dv = new DataView(message.buffer, message.byteOffset, message.byteLength);
    const change = dv.getUint32(16 + 12, true);
    if (change !== 0) this.linkFlags = (this.linkFlags & ~change) | (dv.getUint32(16 + 8, true) & change);
    if (message.length >= 40 && dv.getUint16(34, true) === 4 /* IFLA_MTU */) this.linkMtu = dv.getUint32(36, true);
  }
}

function linkMessage(type: number, index: number, mtu: number, flags: number, seq: number, name: string): Uint8Array {
  const nameAttr = 4 + ((name.length + 1 + 3) & ~3);
  const m = new Uint8Array(16 + 16 + 8 + nameAttr);
  const dv = new DataView(m.buffer);
  dv.setUint32(0, m.length, true);
  dv.setUint16(4, type, true);
  dv.setUint32(8, seq, true);
  dv.setInt32(16 + 4, index, true);
  dv.setUint32(16 + 8, flags, true);
  dv.setUint16(32, 8, true);
  dv.setUint16(34, 4 /* IFLA_MTU */, true);
  dv.setUint32(36, mtu, true);
  dv.setUint16(40, 4 + name.length + 1, true);
  dv.setUint16(42, 3 /* IFLA_IFNAME */, true);
  m.set(Buffer.from(name, 'latin1'), 44);
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
