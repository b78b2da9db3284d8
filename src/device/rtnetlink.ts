/**
 * rtnetlink link control and link events, without spawning `ip`.
 *
 * Messages are built and parsed here (linux/netlink.h, linux/rtnetlink.h,
 * linux/if_link.h, linux/if_addr.h); the addon only opens, sends, receives and
 * polls the AF_NETLINK socket. Netlink uses host byte order, which is
 * little-endian on every host vectun supports.
 * @module
 */
import { VectunError } from '../errors.js';
import { parseIPv4, parseIPv6 } from '../net/ip.js';
import { EAGAIN, POLL_READABLE, errnoName, syscallError, type NativeBinding, type PollHandle } from './native.js';

// Message types (linux/rtnetlink.h) and flags (linux/netlink.h).
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_NEWROUTE = 24;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
/** Multicast group of link events (RTNLGRP_LINK, as the legacy bitmask). */
export const RTMGRP_LINK = 1;

const NLMSG_HDRLEN = 16;
const IFINFOMSG_LEN = 16;
const IFADDRMSG_LEN = 8;
const RTMSG_LEN = 12;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const RTA_DST = 1;
const RTA_OIF = 4;
/** net/if.h: interface is administratively up. */
export const IFF_UP = 0x1;
const AF_INET = 2;
const AF_INET6 = 10;
const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RTN_UNICAST = 1;

/** How long a request may wait for the kernel's answer. */
const REQUEST_TIMEOUT_MS = 5000;

const align4 = (n: number): number => (n + 3) & ~3;

/** One rtattr: type and payload. */
export interface Attr {
  type: number;
  data: Uint8Array;
}

export function u32Attr(type: number, value: number): Attr {
  const data = new Uint8Array(4);
  new DataView(data.buffer).setUint32(0, value, true);
  return { type, data };
}

/** nlmsghdr + fixed body + attributes, as one datagram. */
export function buildMessage(type: number, flags: number, seq: number, body: Uint8Array, attrs: readonly Attr[] = []): Uint8Array {
  let len = NLMSG_HDRLEN + align4(body.length);
  for (const a of attrs) len += align4(4 + a.data.length);
  const msg = new Uint8Array(len);
  const dv = new DataView(msg.buffer);
  dv.setUint32(0, len, true);
  dv.setUint16(4, type, true);
  dv.setUint16(6, flags, true);
  dv.setUint32(8, seq, true);
  dv.setUint32(12, 0, true); // port id: 0 lets the kernel fill in ours
  msg.set(body, NLMSG_HDRLEN);
  let at = NLMSG_HDRLEN + align4(body.length);
  for (const a of attrs) {
    dv.setUint16(at, 4 + a.data.length, true);
    dv.setUint16(at + 2, a.type, true);
    msg.set(a.data, at + 4);
    at += align4(4 + a.data.length);
  }
  return msg;
}

/** One parsed netlink message; `body` excludes the 16-byte header. */
export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  body: Uint8Array;
}

/** Splits a received datagram into messages; stops at a malformed length. */
export function parseMessages(data: Uint8Array): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  while (at + NLMSG_HDRLEN <= data.length) {
    const len = dv.getUint32(at, true);
    if (len < NLMSG_HDRLEN || at + len > data.length) break;
    out.push({
      type: dv.getUint16(at + 4, true),
      flags: dv.getUint16(at + 6, true),
      seq: dv.getUint32(at + 8, true),
      body: data.subarray(at + NLMSG_HDRLEN, at + len),
    });
    at += align4(len);
  }
  return out;
}

/** Attributes following a fixed header of `offset` bytes. */
export function parseAttrs(body: Uint8Array, offset: number): Map<number, Uint8Array> {
  const attrs = new Map<number, Uint8Array>();
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let at = offset;
  while (at + 4 <= body.length) {
    const len = dv.getUint16(at, true);
    if (len < 4 || at + len > body.length) break;
    attrs.set(dv.getUint16(at + 2, true) & 0x3fff, body.subarray(at + 4, at + len)); // minus NLA_F_NESTED/BYTEORDER
    at += align4(len);
  }
  return attrs;
}

/** struct ifinfomsg + the attributes vectun reads. */
export interface LinkInfo {
  index: number;
  flags: number;
  name?: string;
  mtu?: number;
}

export function parseLink(body: Uint8Array): LinkInfo | undefined {
  if (body.length < IFINFOMSG_LEN) return undefined;
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const info: LinkInfo = { index: dv.getInt32(4, true), flags: dv.getUint32(8, true) };
  const attrs = parseAttrs(body, IFINFOMSG_LEN);
  const mtu = attrs.get(IFLA_MTU);
  if (mtu !== undefined && mtu.length >= 4) info.mtu = new DataView(mtu.buffer, mtu.byteOffset, 4).getUint32(0, true);
  const name = attrs.get(IFLA_IFNAME);
  if (name !== undefined) info.name = Buffer.from(name).toString('utf8').replace(/\0.*$/s, '');
  return info;
}

function ifinfomsg(index: number, flags = 0, change = 0): Uint8Array {
  const b = new Uint8Array(IFINFOMSG_LEN);
  const dv = new DataView(b.buffer);
  b[0] = 0; // AF_UNSPEC
  dv.setInt32(4, index, true);
  dv.setUint32(8, flags, true);
  dv.setUint32(12, change, true);
  return b;
}

/** An address with prefix length, e.g. `198.18.0.1/24` or `2001:2::1/64`. */
export interface Cidr {
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
}

/** @throws VectunError `ERR_INVALID_ARG` naming `option`. */
export function parseCidr(text: string, option: string): Cidr {
  const bad = (why: string): VectunError => new VectunError('ERR_INVALID_ARG', `${option} must be an address/prefix (${why}): ${JSON.stringify(text)}`);
  if (typeof text !== 'string') throw bad('not a string');
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  // A zone (fe80::1%eth0) names a link; an address on a link has none to give.
  const bytes = parseIPv4(addr) ?? parseIPv6(addr);
  if (bytes === undefined) throw bad(addr.includes('%') ? 'a zone has no place here' : 'not an IPv4 or IPv6 address');
  const family: 4 | 6 = bytes.length === 4 ? 4 : 6;
  const max = family === 4 ? 32 : 128;
  const prefix = slash < 0 ? max : Number(text.slice(slash + 1));
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (slash >= 0 && !/^\d+$/.test(text.slice(slash + 1)))) {
    throw bad(`prefix must be 0..${max}`);
  }
  return { family, bytes, prefix };
}

/** Zeroes host bits, as the kernel requires for a route's destination. */
function networkOf(c: Cidr): Uint8Array {
  const out = Uint8Array.from(c.bytes);
  for (let bit = c.prefix; bit < out.length * 8; bit++) out[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return out;
}

/** RTM_NEWLINK setting the MTU of `index`. */
export function setMtuMessage(seq: number, index: number, mtu: number): Uint8Array {
  return buildMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, ifinfomsg(index), [u32Attr(IFLA_MTU, mtu)]);
}

/** RTM_NEWLINK changing only IFF_UP. */
export function setUpMessage(seq: number, index: number, up: boolean): Uint8Array {
  return buildMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, ifinfomsg(index, up ? IFF_UP : 0, IFF_UP));
}

/** RTM_GETLINK for one interface (answered with one RTM_NEWLINK). */
export function getLinkMessage(seq: number, index: number): Uint8Array {
  return buildMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq, ifinfomsg(index));
}

/** RTM_GETLINK by IFLA_IFNAME (index 0), e.g. to find a device's index in the namespace it was moved to. */
export function getLinkByNameMessage(seq: number, name: string): Uint8Array {
  return buildMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq, ifinfomsg(0), [
    { type: IFLA_IFNAME, data: Buffer.from(`${name}\0`, 'utf8') },
  ]);
}

/** RTM_NEWADDR: IFA_LOCAL (v4) / IFA_ADDRESS on `index`. */
export function addAddressMessage(seq: number, index: number, c: Cidr): Uint8Array {
  const body = new Uint8Array(IFADDRMSG_LEN);
  body[0] = c.family === 4 ? AF_INET : AF_INET6;
  body[1] = c.prefix;
  body[3] = RT_SCOPE_UNIVERSE;
  new DataView(body.buffer).setUint32(4, index, true);
  const attrs = [{ type: IFA_ADDRESS, data: c.bytes }];
  if (c.family === 4) attrs.unshift({ type: IFA_LOCAL, data: c.bytes });
  return buildMessage(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body, attrs);
}

/** RTM_NEWROUTE: `c` reached directly through `index` (like `ip route add c dev X`). */
export function addRouteMessage(seq: number, index: number, c: Cidr): Uint8Array {
  const body = new Uint8Array(RTMSG_LEN);
  body[0] = c.family === 4 ? AF_INET : AF_INET6;
  body[1] = c.prefix;
  body[4] = RT_TABLE_MAIN;
  body[5] = RTPROT_BOOT;
  // No gateway: the destination is on the link (IPv6 routes are always universe).
  body[6] = c.family === 4 ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  body[7] = RTN_UNICAST;
  return buildMessage(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body, [
    { type: RTA_DST, data: networkOf(c) },
    u32Attr(RTA_OIF, index),
  ]);
}

interface Pending {
  replies: NetlinkMessage[];
  resolve(replies: NetlinkMessage[]): void;
  reject(err: VectunError): void;
  timer: NodeJS.Timeout;
  what: string;
}

/**
 * One NETLINK_ROUTE socket: requests matched to answers by sequence number,
 * and (when bound to groups) multicast events handed to `onEvent`.
 */
export class NetlinkSocket {
  readonly #binding: NativeBinding;
  readonly #fd: number;
  readonly #poller: PollHandle;
  readonly #buffer = new Uint8Array(65536);
  readonly #pending = new Map<number, Pending>();
  readonly #onEvent: ((m: NetlinkMessage) => void) | undefined;
  #seq = Math.floor(Math.random() * 0x7fffffff);
  #closed = false;

  /**
   * Opens the socket in the caller's network namespace, or in the one
   * `netnsFd` refers to (a socket stays in the namespace it was created in).
   * @throws VectunError when the socket cannot be opened.
   */
  constructor(binding: NativeBinding, groups: number, onEvent?: (m: NetlinkMessage) => void, netnsFd = -1) {
    this.#binding = binding;
    this.#onEvent = onEvent;
    const fd = netnsFd < 0 ? binding.nlOpen(groups) : binding.nlOpen(groups, netnsFd);
    if (fd < 0) throw syscallError(fd, 'socket', 'AF_NETLINK');
    const poller = binding.pollCreate(fd, () => this.#drain());
    if (typeof poller === 'number') {
      binding.close(fd);
      throw syscallError(poller, 'uv_poll_init', 'netlink');
    }
    this.#fd = fd;
    this.#poller = poller;
    if (onEvent !== undefined) {
      // Events alone must not keep the process alive; pending requests do (#arm).
      binding.pollRef(poller, false);
      binding.pollSet(poller, POLL_READABLE);
    }
  }

  /** Sends `build(seq)` and resolves with the replies before the kernel's ACK. */
  request(what: string, build: (seq: number) => Uint8Array): Promise<NetlinkMessage[]> {
    if (this.#closed) return Promise.reject(new VectunError('ERR_TUN_CLOSED', `${what}: netlink socket closed`));
    const seq = (this.#seq = (this.#seq + 1) >>> 0 || 1);
    return new Promise<NetlinkMessage[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(seq);
        this.#arm();
        reject(new VectunError('ERR_NETLINK', `${what}: no answer from the kernel within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.#pending.set(seq, { replies: [], resolve, reject, timer, what });
      const sent = this.#binding.nlSend(this.#fd, build(seq));
      if (sent < 0) {
        clearTimeout(timer);
        this.#pending.delete(seq);
        reject(syscallError(sent, 'sendto', `netlink ${what}`));
        return;
      }
      this.#arm();
    });
  }

  #arm(): void {
    if (this.#closed) return;
    this.#binding.pollRef(this.#poller, this.#pending.size > 0);
    this.#binding.pollSet(this.#poller, this.#pending.size > 0 || this.#onEvent !== undefined ? POLL_READABLE : 0);
  }

  #drain(): void {
    for (let guard = 0; guard < 1024 && !this.#closed; guard++) {
      const n = this.#binding.nlRecv(this.#fd, this.#buffer);
      if (n === -EAGAIN) break;
      if (n < 0) continue; // ENOBUFS: events were lost; later ones still count
      for (const m of parseMessages(this.#buffer.subarray(0, n))) this.#dispatch(m);
    }
    this.#arm();
  }

  #dispatch(m: NetlinkMessage): void {
    const p = this.#pending.get(m.seq);
    if (p === undefined) {
      if (m.type !== NLMSG_ERROR && m.type !== NLMSG_DONE) this.#onEvent?.(m);
      return;
    }
    if (m.type === NLMSG_ERROR) {
      this.#pending.delete(m.seq);
      clearTimeout(p.timer);
      const error = m.body.length >= 4 ? new DataView(m.body.buffer, m.body.byteOffset, 4).getInt32(0, true) : 0;
      if (error === 0) p.resolve(p.replies);
      else p.reject(new VectunError('ERR_NETLINK', `${p.what} failed: ${errnoName(-error)}`, { errno: -error, syscall: 'netlink' }));
    } else if (m.type === NLMSG_DONE) {
      this.#pending.delete(m.seq);
      clearTimeout(p.timer);
      p.resolve(p.replies);
    } else {
      // Replies copy out of the receive buffer, which the next recv reuses.
      p.replies.push({ ...m, body: Uint8Array.from(m.body) });
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#binding.pollClose(this.#poller);
    this.#binding.close(this.#fd);
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new VectunError('ERR_TUN_CLOSED', `${p.what}: closed before the kernel answered`));
    }
    this.#pending.clear();
  }
}
