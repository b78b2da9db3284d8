/**
 * Link control and link events of a {@link Tun} over rtnetlink: MTU, up/down,
 * addresses and routes; `'mtu'`, `'up'`, `'down'`, `'moved'` and `'removed'`.
 * @module
 */
import { VectunError } from '../errors.js';
import { EBADFD, type NativeBinding } from './native.js';
import {
  IFF_UP, NetlinkSocket, RTMGRP_LINK, RTM_DELLINK, RTM_NEWLINK, addAddressMessage, addRouteMessage,
  getLinkMessage, parseCidr, parseLink, setMtuMessage, setUpMessage, type NetlinkMessage,
} from './rtnetlink.js';
import { updatePoll } from './tun-poll.js';
import { checkOpen, invalid, kState, optionalInt, type TunHost } from './tun-state.js';

/** The netlink sockets of a new Tun and the link as the kernel reports it. */
export interface LinkSockets {
  /** Bound to link events (RTMGRP_LINK). */
  events: NetlinkSocket;
  /** Requests (set MTU, up/down, addresses, routes). */
  control: NetlinkSocket;
  mtu: number;
  up: boolean;
}

/**
 * Opens the event and control sockets and asks for the link's MTU and
 * flags (RTM_GETLINK). Closes what it opened on failure.
 */
export async function openLinkSockets(b: NativeBinding, ifindex: number, onEvent: (m: NetlinkMessage) => void): Promise<LinkSockets> {
  let events: NetlinkSocket | undefined;
  let control: NetlinkSocket | undefined;
  try {
    events = new NetlinkSocket(b, RTMGRP_LINK, onEvent);
    control = new NetlinkSocket(b, 0);
    const replies = await control.request('RTM_GETLINK', (seq) => getLinkMessage(seq, ifindex));
    const link = replies.map((m) => parseLink(m.body)).find((l) => l?.index === ifindex);
    return { events, control, mtu: link?.mtu ?? 1500, up: ((link?.flags ?? 0) & IFF_UP) !== 0 };
  } catch (err) {
    events?.close();
    control?.close();
    throw err;
  }
}

/** An RTM_NEWLINK/RTM_DELLINK for our ifindex: MTU and up/down changes, a move or a deletion. */
export function onLinkEvent(tun: TunHost, m: NetlinkMessage): void {
  const s = tun[kState];
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
      tun.emit('moved');
    } else {
      markRemoved(tun, new VectunError('ERR_TUN_REMOVED', `${s.name} was deleted`, { errno: EBADFD, syscall: 'read' }));
    }
    return;
  }
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

/** The device is gone: pending and later I/O fail with `ERR_TUN_REMOVED`; `'removed'` once. */
export function markRemoved(tun: TunHost, cause: VectunError): void {
  const s = tun[kState];
  if (s.removed !== undefined) return;
  s.removed = new VectunError('ERR_TUN_REMOVED', `${s.name} was deleted`, { errno: cause.errno ?? EBADFD, syscall: cause.syscall ?? 'read', cause });
  for (const r of s.readers.splice(0)) r.reject(s.removed);
  s.flowReader = undefined;
  s.flowing = false;
  const w = s.writable;
  s.writable = undefined;
  w?.reject(s.removed);
  updatePoll(tun);
  tun.emit('removed');
}

function control(tun: TunHost, what: string): NetlinkSocket {
  const s = checkOpen(tun, what);
  if (s.removed !== undefined) throw s.removed;
  if (s.moved) throw new VectunError('ERR_TUN_REMOVED', `${what}: ${s.name} was moved to another network namespace`);
  return (s.control ??= new NetlinkSocket(s.binding, 0));
}

/** RTM_NEWLINK IFLA_MTU; emits `'mtu'`. */
export async function setMtu(tun: TunHost, mtu: number): Promise<void> {
  optionalInt(mtu, 'mtu', 68, 65535);
  if (mtu === undefined) throw invalid('mtu is required');
  const s = tun[kState];
  await control(tun, 'setMtu').request('set MTU', (seq) => setMtuMessage(seq, s.ifindex, mtu));
  if (s.mtu !== mtu && !s.closed) {
    s.mtu = mtu;
    tun.emit('mtu', mtu);
  }
}

/** RTM_NEWLINK IFF_UP; emits `'up'` / `'down'`. */
export async function setUp(tun: TunHost, up: boolean): Promise<void> {
  if (typeof up !== 'boolean') throw invalid('up must be a boolean');
  const s = tun[kState];
  await control(tun, 'setUp').request(up ? 'set link up' : 'set link down', (seq) => setUpMessage(seq, s.ifindex, up));
  if (s.up !== up && !s.closed) {
    s.up = up;
    tun.emit(up ? 'up' : 'down');
  }
}

/** RTM_NEWADDR. */
export async function addAddress(tun: TunHost, cidr: string): Promise<void> {
  const c = parseCidr(cidr, 'cidr');
  const s = tun[kState];
  await control(tun, 'addAddress').request(`add address ${cidr}`, (seq) => addAddressMessage(seq, s.ifindex, c));
}

/** RTM_NEWROUTE, no gateway. */
export async function addRoute(tun: TunHost, cidr: string): Promise<void> {
  const c = parseCidr(cidr, 'cidr');
  const s = tun[kState];
  await control(tun, 'addRoute').request(`add route ${cidr}`, (seq) => addRouteMessage(seq, s.ifindex, c));
}
