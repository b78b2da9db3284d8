/**
 * In-memory stand-ins for a WgDevice's TUN and UDP sides, and a manual
 * clock, so device behaviour (handshakes, data both ways, replay, roaming,
 * timers) is testable without root, sockets or waiting: packets written to a
 * MemoryTunnel are recorded, datagrams sent on a MemorySocket land in the
 * queue of the socket bound to the destination, and a test may watch, drop,
 * tamper with or inject datagrams on the way. Addresses are from
 * 198.18.0.0/15 only (nothing leaves the process anyway).
 */
import { VectunError } from '../../src/errors.js';
import { UdpEndpoint } from '../../src/udp/address.js';
import type { UdpBatch } from '../../src/udp/socket.js';
import type { WgSocket, WgSocketFactory, WgTunnel } from '../../src/wg/device.js';
import type { WgClock } from '../../src/wg/peer.js';

interface Waiter<T> {
  resolve(v: T): void;
  reject(e: unknown): void;
}

/** A TUN side: `inject` what the kernel would hand over, `written` what the device wrote. */
export class MemoryTunnel implements WgTunnel {
  mtu: number;
  readonly written: Uint8Array[] = [];
  #queue: Uint8Array[][] = [];
  #waiter: Waiter<Uint8Array[]> | undefined;
  closed = false;

  constructor(mtu = 1420) {
    this.mtu = mtu;
  }

  /** Queues one read batch (copied). */
  inject(packets: readonly Uint8Array[]): void {
    const batch = packets.map((p) => Uint8Array.from(p));
    if (this.#waiter !== undefined) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w.resolve(batch);
    } else this.#queue.push(batch);
  }

  read(): Promise<Uint8Array[]> {
    if (this.closed) return Promise.reject(new VectunError('ERR_TUN_CLOSED', 'closed'));
    const b = this.#queue.shift();
    if (b !== undefined) return Promise.resolve(b);
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  async write(packets: readonly Uint8Array[]): Promise<{ failures: readonly unknown[] }> {
    if (this.closed) throw new VectunError('ERR_TUN_CLOSED', 'closed');
    for (const p of packets) this.written.push(Uint8Array.from(p));
    return { failures: [] };
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.reject(new VectunError('ERR_TUN_CLOSED', 'closed'));
  }
}

/** One datagram on the wire. */
export interface WireDatagram {
  data: Uint8Array;
  from: UdpEndpoint;
  to: UdpEndpoint;
}

/**
 * The network between memory sockets. `filter` sees every datagram: return
 * it (possibly changed) to deliver, or null to drop. `log` keeps copies.
 */
export class MemoryNetwork {
  readonly sockets = new Map<string, MemorySocket>();
  readonly log: WireDatagram[] = [];
  filter: ((d: WireDatagram) => WireDatagram | null) | undefined;
  #nextPort = 40000;

  /** A socket factory binding on `address` (like `UdpSocket.open({ port })`). */
  factory(address: string): WgSocketFactory & { opened: MemorySocket[] } {
    const opened: MemorySocket[] = [];
    const f = async (port: number, fwmark: number): Promise<WgSocket> => {
      const p = port === 0 ? this.#nextPort++ : port;
      const local = UdpEndpoint.of(address, p);
      if (this.sockets.has(local.key)) {
        throw new VectunError('ERR_UDP_SYSCALL', `bind (${local.toString()}) failed: EADDRINUSE`, { errno: 98, syscall: 'bind' });
      }
      const s = new MemorySocket(this, local, fwmark);
      this.sockets.set(local.key, s);
      opened.push(s);
      return s;
    };
    return Object.assign(f, { opened });
  }

  /** Delivers (through the filter) a datagram. */
  deliver(d: WireDatagram): void {
    const f = this.filter === undefined ? d : this.filter(d);
    if (f === null) return;
    this.log.push({ data: Uint8Array.from(f.data), from: f.from, to: f.to });
    this.sockets.get(f.to.key)?.enqueue(Uint8Array.from(f.data), f.from);
  }

  /** Datagrams of the log with this message type (first byte). */
  ofType(type: number): WireDatagram[] {
    return this.log.filter((d) => d.data[0] === type);
  }
}

/** A UDP side on a MemoryNetwork. */
export class MemorySocket implements WgSocket {
  readonly localAddress: UdpEndpoint;
  readonly fwmark: number;
  closed = false;
  /** What the kernel would report as SO_RXQ_OVFL drops; tests set it. */
  readonly stats = { receiveDrops: 0 };
  #net: MemoryNetwork;
  #queue: { data: Uint8Array; from: UdpEndpoint }[] = [];
  #waiter: Waiter<UdpBatch> | undefined;

  constructor(net: MemoryNetwork, local: UdpEndpoint, fwmark: number) {
    this.#net = net;
    this.localAddress = local;
    this.fwmark = fwmark;
  }

  enqueue(data: Uint8Array, from: UdpEndpoint): void {
    if (this.closed) return;
    this.#queue.push({ data, from });
    if (this.#waiter !== undefined) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w.resolve(this.#take());
    }
  }

  #take(): UdpBatch {
    const items = this.#queue.splice(0, 64);
    return { datagrams: items.map((i) => i.data), sources: items.map((i) => i.from) };
  }

  read(): Promise<UdpBatch> {
    if (this.closed) return Promise.reject(new VectunError('ERR_UDP_CLOSED', 'closed'));
    if (this.#queue.length > 0) return Promise.resolve(this.#take());
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  async send(datagrams: readonly Uint8Array[], destination: UdpEndpoint): Promise<{ failures: readonly unknown[] }> {
    if (this.closed) throw new VectunError('ERR_UDP_CLOSED', 'closed');
    // Copy now: the device reuses its output buffers once the promise settles.
    const copies = datagrams.map((d) => Uint8Array.from(d));
    queueMicrotask(() => {
      for (const data of copies) this.#net.deliver({ data, from: this.localAddress, to: destination });
    });
    return { failures: [] };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.#net.sockets.delete(this.localAddress.key);
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.reject(new VectunError('ERR_UDP_CLOSED', 'closed'));
  }
}

/** A clock the test moves: `advance(ms)` runs the timers that fall due, in order. */
export class ManualClock implements WgClock {
  time = 1_000_000;
  wall = 1_700_000_000_000;
  #timers: { at: number; fn: () => void; id: number }[] = [];
  #nextId = 1;

  now(): number {
    return this.time;
  }
  wallNow(): number {
    return this.wall + (this.time - 1_000_000);
  }
  setTimer(fn: () => void, ms: number): unknown {
    const t = { at: this.time + ms, fn, id: this.#nextId++ };
    this.#timers.push(t);
    return t.id;
  }
  clearTimer(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }
  /** Timers armed and not yet fired. */
  get pending(): number {
    return this.#timers.length;
  }
  /** Moves time forward by `ms`, firing due timers (and letting the event loop settle after each). */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.#timers[0];
      if (next === undefined || next.at > end) break;
      this.#timers.shift();
      this.time = Math.max(this.time, next.at);
      next.fn();
      await settle();
    }
    this.time = end;
    await settle();
  }
}

/** Lets microtasks and a few event-loop turns run (handshake queue, sends, writes). */
export async function settle(turns = 8): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((r) => setImmediate(r));
}
