/**
 * The private state of one {@link Tun} and the small checks every part of it
 * uses (open check, option validation). The other `tun-*.ts` files are
 * functions over this state: `tun-open.ts` (open + offload negotiation),
 * `tun-read.ts` (read path), `tun-write.ts` (write path + EINVAL fallback),
 * `tun-link.ts` (link control + events), `tun-stats.ts` (counters); readers,
 * event mode, readiness and close are `src/io/event-loop.ts`, shared with
 * UdpSocket; `tun.ts` is the public class that wires them.
 * @module
 */
import type { EventEmitter } from 'node:events';
import { VectunError } from '../errors.js';
import type { Coalescer } from '../core/gro.js';
import { closedErrorOf, type IoState } from '../io/event-loop.js';
import type { NativeBinding } from './native.js';
import type { NetlinkMessage, NetlinkSocket } from './rtnetlink.js';
import type { TunOffload } from './tun-open.js';
import type { TunStats } from './tun-stats.js';


/**
 * Everything a Tun knows; one object under {@link kState}, as dgram.Socket
 * keeps its handle state. The event-loop part (poller, readers, event mode,
 * the writable wait, closing, signal) is {@link IoState}'s.
 */
export interface TunState extends IoState<Uint8Array[]> {
  binding: NativeBinding;
  fd: number;
  /** Queue fds (index 0 = fd); null once handed out. */
  queueFds: (number | null)[];
  name: string;
  ifindex: number;
  mtu: number;
  up: boolean;
  offload: TunOffload;
  batchSize: number;
  removed: VectunError | undefined;
  /** Why link control rejects: moved to a namespace the netlink sockets could not follow. */
  linkLost: VectunError | undefined;
  /** Re-opening the netlink sockets in the namespace the device was moved to; link control waits. */
  following: Promise<void> | undefined;
  /** Link events that arrived while following, replayed once the ifindex there is known. */
  heldEvents: NetlinkMessage[];
  /** Netlink sockets in the device's current namespace (link events; requests). */
  events: NetlinkSocket | undefined;
  control: NetlinkSocket | undefined;
  // read side
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
  coalescer: Coalescer | undefined;
  gro: { tcp: boolean; udp: boolean };
  warned: { tcp: boolean; udp: boolean };
  stats: TunStats;
}

/** The key of a Tun's state. */
export const kState = Symbol('vectun.tun');

/** What the parts see of a Tun: its state and its events. */
export interface TunHost extends EventEmitter {
  readonly [kState]: TunState;
}

/** Consecutive EINTRs after which a read or write gives up (a signal storm, not progress). */
export const MAX_EINTR = 1000;

export const closedError = closedErrorOf('ERR_TUN_CLOSED', 'the TUN device');

/** The state of an open Tun; `ERR_TUN_CLOSED` naming `what` otherwise. */
export function checkOpen(tun: TunHost, what: string): TunState {
  const s = tun[kState];
  if (s.closed) throw closedError(what);
  return s;
}
