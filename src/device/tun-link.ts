/**
 * Link control and link events of a {@link Tun} over rtnetlink: MTU, up/down,
 * addresses and routes; `'mtu'`, `'up'`, `'down'`, `'moved'` and `'removed'`.
 * @module
 */
import { readdirSync, statSync } from 'node:fs';
import { VectunError } from '../errors.js';
import { rejectPending, updatePoll } from '../io/event-loop.js';
import { EBADFD, syscallError, type NativeBinding } from './native.js';
import {
  IFF_UP, NetlinkSocket, RTMGRP_LINK, RTM_DELLINK, RTM_NEWLINK, addAddressMessage, addRouteMessage,
  getLinkByNameMessage, getLinkMessage, parseCidr, parseLink, setMtuMessage, setUpMessage, type LinkInfo, type NetlinkMessage,
} from './rtnetlink.js';
import { checkOpen, kState, type TunHost } from './tun-state.js';
import { invalid, optionalInt } from '../options.js';

/** Where `ip netns add` binds named namespaces. */
const NETNS_RUN_DIR = '/run/netns';

/** The netlink sockets of a new Tun and the link as the kernel reports it. */
export interface LinkSockets {
  /** Bound to link events (RTMGRP_LINK). */
  events: NetlinkSocket;
  /** Requests (set MTU, up/down, addresses, routes). */
  control: NetlinkSocket;
  ifindex: number;
  mtu: number;
  up: boolean;
}

/**
 * Opens the event and control sockets in the namespace the device `fd` is
 * in, finds its ifindex there and asks for its MTU and flags (RTM_GETLINK).
 * Usually that is the caller's namespace; a queue adopted by `Tun.fromFd` may
 * belong to a device moved elsewhere (TUNGETDEVNETNS says; without it, the
 * caller's namespace is assumed). Closes what it opened on failure.
 */
export async function openLinkSockets(b: NativeBinding, fd: number, name: string, onEvent: (m: NetlinkMessage) => void): Promise<LinkSockets> {
  const ns = b.tunNetns(fd);
  const elsewhere = typeof ns === 'object' && !isCallersNamespace(ns);
  let events: NetlinkSocket | undefined;
  let control: NetlinkSocket | undefined;
  try {
    try {
      events = new NetlinkSocket(b, RTMGRP_LINK, onEvent, elsewhere ? ns.fd : -1);
      control = new NetlinkSocket(b, 0, undefined, elsewhere ? ns.fd : -1);
    } finally {
      if (typeof ns === 'object') b.close(ns.fd);
    }
    let link: LinkInfo | undefined;
    if (elsewhere) {
      const replies = await control.request(`find ${name} in its namespace`, (seq) => getLinkByNameMessage(seq, name));
      link = replies.map((m) => parseLink(m.body)).find((l) => l?.name === name);
      if (link === undefined) throw new VectunError('ERR_NETLINK', `${name}: no RTM_NEWLINK answer in the device's namespace`);
    } else {
      const ifindex = b.ifIndex(name);
      if (ifindex < 0) throw syscallError(ifindex, 'if_nametoindex', name);
      const replies = await control.request('RTM_GETLINK', (seq) => getLinkMessage(seq, ifindex));
      link = replies.map((m) => parseLink(m.body)).find((l) => l?.index === ifindex) ?? { index: ifindex, flags: 0 };
    }
    return { events, control, ifindex: link.index, mtu: link.mtu ?? 1500, up: (link.flags & IFF_UP) !== 0 };
  } catch (err) {
    events?.close();
    control?.close();
    throw err;
  }
}

/** Whether the namespace `ns` (dev/inode from tunNetns) is the calling thread's; assumed so when /proc cannot tell. */
function isCallersNamespace(ns: { dev: number; inode: number }): boolean {
  try {
    const own = statSync('/proc/thread-self/ns/net');
    return own.ino === ns.inode && own.dev === ns.dev;
  } catch {
    return true;
  }
}

/** Where a device was moved to: the argument of the `'moved'` event. */
export interface TunMove {
  /**
   * Whether link control and link events followed the device (TUNGETDEVNETNS,
   * Linux 5.2+, CAP_NET_ADMIN in the target namespace). When false, link
   * control rejects with `ERR_TUN_REMOVED` and `mtu`/`isUp` stop updating;
   * reads and writes go on either way.
   */
  followed: boolean;
  /** Inode of the namespace the device is in now (what `ip netns identify` compares); undefined when not followed. */
  netnsInode: number | undefined;
  /** That namespace's name under /run/netns (`ip netns add NAME`), if it has one. */
  netns: string | undefined;
  /** Interface name there (`ip link set ... netns X name Y` renames). */
  name: string;
  /** Interface index there (0 when not followed). */
  ifindex: number;
}

/** An RTM_NEWLINK/RTM_DELLINK for our ifindex: MTU and up/down changes, a move or a deletion. */
export function onLinkEvent(tun: TunHost, m: NetlinkMessage): void {
  const s = tun[kState];
  if (s.closed || s.linkLost !== undefined || s.removed !== undefined) return;
  if (m.type !== RTM_NEWLINK && m.type !== RTM_DELLINK) return;
  if (s.following !== undefined) {
    // The ifindex in the new namespace is not known yet (followMove replays these).
    s.heldEvents.push({ ...m, body: Uint8Array.from(m.body) });
    return;
  }
  const link = parseLink(m.body);
  if (link === undefined || link.index !== s.ifindex) return;
  if (m.type === RTM_DELLINK) {
    // Moved to another namespace: our descriptor is still attached (TUNGETIFF works).
    if (typeof s.binding.tunGetIff(s.fd) === 'object') followMove(tun);
    else markRemoved(tun, new VectunError('ERR_TUN_REMOVED', `${s.name} was deleted`, { errno: EBADFD, syscall: 'read' }));
    return;
  }
  applyLink(tun, link);
}

function applyLink(tun: TunHost, link: LinkInfo): void {
  const s = tun[kState];
  if (link.mtu !== undefined && link.mtu !== s.mtu) {
    s.mtu = link.mtu;
    tun.emit('mtu', link.mtu);
  }
  const up = (link.flags & IFF_UP) !== 0;
  if (up !== s.up) {
    s.up = up;
    tun.emit(up ? 'up' : 'down');
  }
}

/**
 * The device left the namespace our sockets live in: open new ones where it
 * is now (TUNGETDEVNETNS gives that namespace; a socket belongs to the
 * namespace it was created in), look the device up there by name, then emit
 * `'moved'` and whatever changed. Link control waits meanwhile.
 */
function followMove(tun: TunHost): void {
  const s = tun[kState];
  const b = s.binding;
  s.events?.close();
  s.control?.close();
  s.events = undefined;
  s.control = undefined;
  const ns = b.tunNetns(s.fd);
  if (typeof ns === 'number') {
    loseLink(tun, syscallError(ns, 'ioctl', 'TUNGETDEVNETNS'));
    return;
  }
  let events: NetlinkSocket | undefined;
  let control: NetlinkSocket;
  try {
    events = new NetlinkSocket(b, RTMGRP_LINK, (m) => onLinkEvent(tun, m), ns.fd);
    control = new NetlinkSocket(b, 0, undefined, ns.fd);
  } catch (err) {
    events?.close();
    loseLink(tun, err instanceof VectunError ? err : new VectunError('ERR_NETLINK', String(err), { cause: err }));
    return;
  } finally {
    b.close(ns.fd);
  }
  s.events = events;
  s.control = control;
  s.heldEvents = [];
  const follow = async (): Promise<{ name: string; link: LinkInfo }> => {
    const iff = b.tunGetIff(s.fd);
    if (typeof iff === 'number') throw syscallError(iff, 'ioctl', 'TUNGETIFF');
    const replies = await control.request(`find ${iff.name} in its new namespace`, (seq) => getLinkByNameMessage(seq, iff.name));
    const link = replies.map((m) => parseLink(m.body)).find((l) => l?.name === iff.name);
    if (link === undefined) throw new VectunError('ERR_NETLINK', `${iff.name}: no RTM_NEWLINK answer in its new namespace`);
    return { name: iff.name, link };
  };
  s.following = follow().then(
    ({ name, link }) => {
      s.following = undefined;
      if (s.closed || s.removed !== undefined) return;
      s.name = name;
      s.ifindex = link.index;
      const held = s.heldEvents;
      s.heldEvents = [];
      // Listeners run outside this chain: an exception of theirs is not a failed move
      // (and no I/O callback runs before the next tick, so nothing is missed).
      process.nextTick(() => announceMove(tun, link, ns, held));
    },
    (err: unknown) => {
      s.following = undefined;
      if (s.closed || s.removed !== undefined) return;
      // Deleted right after the move (the lookup found nothing), or the lookup failed.
      if (typeof b.tunGetIff(s.fd) !== 'object') markRemoved(tun, new VectunError('ERR_TUN_REMOVED', `${s.name} was deleted`, { errno: EBADFD, syscall: 'read' }));
      else loseLink(tun, err instanceof VectunError ? err : new VectunError('ERR_NETLINK', String(err), { cause: err }));
    },
  );
}

/** `'moved'`, then what differs in the new namespace. */
function announceMove(tun: TunHost, link: LinkInfo, ns: { dev: number; inode: number }, held: readonly NetlinkMessage[]): void {
  const s = tun[kState];
  if (s.closed || s.removed !== undefined) return;
  const move: TunMove = { followed: true, netnsInode: ns.inode, netns: namespaceName(ns.dev, ns.inode), name: s.name, ifindex: link.index };
  tun.emit('moved', move);
  // Events sent after our socket subscribed are at least as new as the answer; without any, the answer is the state.
  const ours = held.filter((m) => parseLink(m.body)?.index === link.index);
  if (ours.length === 0) applyLink(tun, link);
  for (const m of ours) onLinkEvent(tun, m);
}

/** Moved where we cannot follow (kernel before 5.2, no CAP_NET_ADMIN there): I/O goes on, link control stops. */
function loseLink(tun: TunHost, cause: VectunError): void {
  const s = tun[kState];
  if (s.closed || s.removed !== undefined) return;
  s.events?.close();
  s.control?.close();
  s.events = undefined;
  s.control = undefined;
  s.linkLost = new VectunError('ERR_TUN_REMOVED', `${s.name} was moved to another network namespace that link control cannot follow (${cause.message})`, {
    cause, ...(cause.errno === undefined ? {} : { errno: cause.errno }), ...(cause.syscall === undefined ? {} : { syscall: cause.syscall }),
  });
  const move: TunMove = { followed: false, netnsInode: undefined, netns: undefined, name: s.name, ifindex: 0 };
  tun.emit('moved', move);
}

/** The /run/netns entry (`ip netns` name) bound to the namespace with this dev/inode. */
function namespaceName(dev: number, inode: number): string | undefined {
  let names: string[];
  try {
    names = readdirSync(NETNS_RUN_DIR);
  } catch {
    return undefined;
  }
  for (const n of names) {
    try {
      const st = statSync(`${NETNS_RUN_DIR}/${n}`);
      if (st.ino === inode && st.dev === dev) return n;
    } catch {
      // removed meanwhile, or not a namespace
    }
  }
  return undefined;
}

/** The device is gone: pending and later I/O fail with `ERR_TUN_REMOVED`; `'removed'` once. */
export function markRemoved(tun: TunHost, cause: VectunError): void {
  const s = tun[kState];
  if (s.removed !== undefined) return;
  s.removed = new VectunError('ERR_TUN_REMOVED', `${s.name} was deleted`, { errno: cause.errno ?? EBADFD, syscall: cause.syscall ?? 'read', cause });
  rejectPending(s, s.removed);
  updatePoll(s);
  tun.emit('removed');
}

/** The request socket in the device's namespace (after a move has been followed). */
async function control(tun: TunHost, what: string): Promise<NetlinkSocket> {
  let s = checkOpen(tun, what);
  if (s.following !== undefined) {
    await s.following;
    s = checkOpen(tun, what);
  }
  if (s.removed !== undefined) throw s.removed;
  if (s.linkLost !== undefined) throw new VectunError('ERR_TUN_REMOVED', `${what}: ${s.linkLost.message}`, { cause: s.linkLost });
  // Only undefined before any move: the namespace the device was opened in is the caller's.
  return (s.control ??= new NetlinkSocket(s.binding, 0));
}

/** RTM_NEWLINK IFLA_MTU; emits `'mtu'`. */
export async function setMtu(tun: TunHost, mtu: number): Promise<void> {
  optionalInt(mtu, 'mtu', 68, 65535);
  if (mtu === undefined) throw invalid('mtu is required');
  const s = tun[kState];
  await (await control(tun, 'setMtu')).request('set MTU', (seq) => setMtuMessage(seq, s.ifindex, mtu));
  if (s.mtu !== mtu && !s.closed) {
    s.mtu = mtu;
    tun.emit('mtu', mtu);
  }
}

/** RTM_NEWLINK IFF_UP; emits `'up'` / `'down'`. */
export async function setUp(tun: TunHost, up: boolean): Promise<void> {
  if (typeof up !== 'boolean') throw invalid('up must be a boolean');
  const s = tun[kState];
  await (await control(tun, 'setUp')).request(up ? 'set link up' : 'set link down', (seq) => setUpMessage(seq, s.ifindex, up));
  if (s.up !== up && !s.closed) {
    s.up = up;
    tun.emit(up ? 'up' : 'down');
  }
}

/** RTM_NEWADDR. */
export async function addAddress(tun: TunHost, cidr: string): Promise<void> {
  const c = parseCidr(cidr, 'cidr');
  const s = tun[kState];
  await (await control(tun, 'addAddress')).request(`add address ${cidr}`, (seq) => addAddressMessage(seq, s.ifindex, c));
}

/** RTM_NEWROUTE, no gateway. */
export async function addRoute(tun: TunHost, cidr: string): Promise<void> {
  const c = parseCidr(cidr, 'cidr');
  const s = tun[kState];
  await (await control(tun, 'addRoute')).request(`add route ${cidr}`, (seq) => addRouteMessage(seq, s.ifindex, c));
}
