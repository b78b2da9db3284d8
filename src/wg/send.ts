/**
 * The send path (whitepaper §5.4.6, wireguard-go send.go with offloads): a
 * batch of plain IP packets read from the TUN (super-packets already split
 * into MTU-sized packets by `Tun.read`) is routed by destination through the
 * AllowedIPs table, grouped per peer, sealed in one native call per peer into
 * an output area (each plaintext zero-padded to a multiple of 16, not beyond
 * the MTU), and handed to `UdpSocket.send` once per peer, which sends runs of
 * equal-size messages as UDP_SEGMENT (GSO) sends. In a bulk flow every full
 * segment pads to the same size, so the runs are the whole batch but its last
 * packet.
 *
 * Per packet the JavaScript work is a version check, a 4-byte destination
 * compare against the previous packet's (the route lookup runs only when the
 * destination changes) and two array stores; message views on the output
 * area are reused across batches when offset and length repeat. No object is
 * allocated per packet in the steady state.
 * @module
 */
import type { AllowedIps } from './allowed-ips.js';
import { TRANSPORT_OVERHEAD, paddedLength, type TransportCipher } from './aead.js';
import type { Peer, PeerKeypair } from './peer.js';
import type { UdpEndpoint } from '../udp/address.js';
import { SlotViews } from './views.js';
import type { WgIoResult } from './device.js';

/** What the send path drops, by reason (cumulative; documented in docs/wg-crypto.md). */
export interface SendDrops {
  /** Not an IPv4/IPv6 packet, or shorter than its IP header. */
  malformed: number;
  /** No peer's AllowedIPs cover the destination (wireguard-go drops these silently too). */
  noRoute: number;
  /** The peer has no endpoint yet (it must initiate first). */
  noEndpoint: number;
  /** Longer than the output slot (a packet above the TUN MTU and 65535 limits). */
  tooBig: number;
  /** The UDP socket refused the message (errors by code are in the socket's stats). */
  sendFailed: number;
  /** No UDP socket (device closing or rebinding). */
  noSocket: number;
}

/** The UDP side the send path needs (a `UdpSocket` fits). */
export interface SendSocket {
  /** Sends messages to one destination; resolves with per-datagram failures. */
  send(datagrams: readonly Uint8Array[], destination: UdpEndpoint): Promise<WgIoResult>;
}

/** What the send path needs from its device. */
export interface SendHost {
  /** The cryptokey routing table. */
  readonly routes: AllowedIps<Peer>;
  /** Bumped on every routing change (invalidates the last-destination cache). */
  readonly routesVersion: number;
  /** The transport AEAD. */
  readonly cipher: TransportCipher;
  /** The TUN MTU (padding bound). */
  readonly mtu: number;
  /** The current socket, or null. */
  readonly socket: SendSocket | null;
  /** Monotonic ms. */
  now(): number;
  /** Starts a handshake with the peer (rate-limited by the device). */
  initiate(peer: Peer): void;
}

const EMPTY = new Uint8Array(0);

/** The send path of one device. */
export class SendPath {
  /** Drop counters. */
  readonly drops: SendDrops = { malformed: 0, noRoute: 0, noEndpoint: 0, tooBig: 0, sendFailed: 0, noSocket: 0 };
  /** Messages handed to the socket. */
  messages = 0;
  /** Peer batches sealed (one native call and one socket send each). */
  batches = 0;

  readonly #host: SendHost;
  /** Peers with packets in this batch. */
  #active: Peer[] = [];
  #activeCount = 0;
  /** Output area for sealed messages; reallocated larger when a batch needs it (no sends are in flight then). */
  #out = new Uint8Array(new ArrayBuffer(1 << 20));
  #lengths = new Int32Array(new ArrayBuffer(4 * 1024));
  /** Message views by slot, reused while (offset, length) repeat. */
  #views = new SlotViews(this.#out.buffer);
  /** Datagram arrays, one per active peer of a batch, reused. */
  #lists: Uint8Array[][] = [];
  #pending: Promise<unknown>[] = [];
  // Last-destination cache (IPv4; IPv6 is looked up per packet).
  #lastDst = -1;
  #lastPeer: Peer | null = null;
  #lastVersion = -1;

  constructor(host: SendHost) {
    this.#host = host;
  }

  /**
   * Routes, seals and sends one TUN batch. The packets may be reused by the
   * caller once the returned promise settles (they are read during this call
   * only; sealed copies go out).
   */
  process(packets: readonly Uint8Array[]): Promise<unknown> {
    const host = this.#host;
    const routes = host.routes;
    if (this.#lastVersion !== host.routesVersion) {
      this.#lastVersion = host.routesVersion;
      this.#lastDst = -1;
      this.#lastPeer = null;
    }
    const drops = this.drops;
    const active = this.#active;
    let activeCount = 0;
    for (let i = 0; i < packets.length; i++) {
      const p = packets[i]!;
      const version = p.length > 0 ? p[0]! >> 4 : 0;
      let peer: Peer | null;
      if (version === 4 && p.length >= 20) {
        const dst = ((p[16]! << 24) | (p[17]! << 16) | (p[18]! << 8) | p[19]!) >>> 0;
        if (dst === this.#lastDst) peer = this.#lastPeer;
        else {
          peer = routes.lookupBytes(p, 16, 4);
          this.#lastDst = dst;
          this.#lastPeer = peer;
        }
      } else if (version === 6 && p.length >= 40) {
        peer = routes.lookupBytes(p, 24, 16);
      } else {
        drops.malformed++;
        continue;
      }
      if (peer === null) {
        drops.noRoute++;
        continue;
      }
      if (peer.batchCount === 0) {
        active[activeCount++] = peer;
        peer.batchMax = 0;
      }
      peer.batch[peer.batchCount++] = p;
      if (p.length > peer.batchMax) peer.batchMax = p.length;
    }
    this.#activeCount = activeCount;
    return this.#flush();
  }

  #flush(): Promise<unknown> {
    const host = this.#host;
    const now = host.now();
    const pending = this.#pending;
    pending.length = 0;
    // Output sizing for every active peer at once: no reallocation between peers.
    let need = 0;
    let slots = 0;
    for (let a = 0; a < this.#activeCount; a++) {
      const peer = this.#active[a]!;
      need += peer.batchCount * this.#stride(peer.batchMax);
      slots += peer.batchCount;
    }
    this.#reserve(need, slots);
    let used = 0;
    let slot = 0;
    for (let a = 0; a < this.#activeCount; a++) {
      const peer = this.#active[a]!;
      const count = peer.batchCount;
      peer.batchCount = 0;
      const keypair = peer.sendingKeypair(now);
      if (keypair === null || peer.staged.length > 0) {
        // No session (or older packets wait): keep order behind the staged ones.
        for (let i = 0; i < count; i++) peer.stage(peer.batch[i]!);
        this.#clearBatch(peer, count);
        if (keypair === null) host.initiate(peer);
        else this.sendStaged(peer);
        continue;
      }
      const stride = this.#stride(peer.batchMax);
      const sent = this.#seal(peer, keypair, peer.batch, count, stride, used, slot, a);
      this.#clearBatch(peer, count);
      used += count * stride;
      slot += count;
      if (sent > 0) peer.timersDataSent();
    }
    this.#activeCount = 0;
    if (pending.length === 0) return Promise.resolve();
    return pending.length === 1 ? pending[0]! : Promise.all(pending);
  }

  /** Seals `count` packets for `peer` at `used` of the output and sends them; returns messages sent. */
  #seal(peer: Peer, keypair: PeerKeypair, packets: readonly Uint8Array[], count: number, stride: number, used: number, slot: number, listIndex: number): number {
    const host = this.#host;
    const socket = host.socket;
    const endpoint = peer.endpoint;
    if (endpoint === null || socket === null) {
      if (endpoint === null) this.drops.noEndpoint += count;
      else this.drops.noSocket += count;
      return 0;
    }
    const counter = keypair.reserveSendCounters(count);
    if (counter < 0) {
      // REJECT_AFTER_MESSAGES reached: this keypair may not send any more (§6.1).
      for (let i = 0; i < count; i++) peer.stage(packets[i]!);
      host.initiate(peer);
      return 0;
    }
    const out = this.#out.subarray(used, used + count * stride);
    const lengths = this.#lengths;
    const r = host.cipher.seal(keypair.sendTransport, keypair.remoteIndex, counter, packets, count, host.mtu, out, stride, lengths);
    if (r < 0) {
      this.drops.tooBig += count;
      return 0;
    }
    const list = (this.#lists[listIndex] ??= []);
    let n = 0;
    let bytes = 0;
    const base = used;
    for (let i = 0; i < count; i++) {
      const len = lengths[i]!;
      if (len < 0) {
        this.drops.tooBig++;
        continue;
      }
      list[n++] = this.#views.get(slot + i, base + i * stride, len);
      bytes += len;
    }
    list.length = n;
    if (n === 0) return 0;
    this.messages += n;
    this.batches++;
    peer.counters.txBytes += bytes;
    peer.counters.txPackets += n;
    peer.timersAnyAuthenticatedPacketTraversal();
    peer.timersAnyAuthenticatedPacketSent();
    if (keypair.needsRekeyOnSend(host.now())) host.initiate(peer);
    this.#pending.push(socket.send(list, endpoint).then(
      (res) => {
        if (res.failures.length > 0) this.drops.sendFailed += res.failures.length;
      },
      () => {
        this.drops.sendFailed += n;
      },
    ));
    return n;
  }

  /**
   * Sends the peer's staged packets (a keepalive when asked and nothing is
   * staged) with its current keypair; without one, starts a handshake and
   * leaves them staged (wireguard-go SendStagedPackets). Uses its own output
   * buffer: it may run while a batch send is in flight.
   */
  sendStaged(peer: Peer, keepalive = false): void {
    const host = this.#host;
    if (keepalive && peer.staged.length === 0) peer.staged.push(EMPTY);
    if (peer.staged.length === 0) return;
    const keypair = peer.sendingKeypair(host.now());
    if (keypair === null) {
      host.initiate(peer);
      return;
    }
    const socket = host.socket;
    const endpoint = peer.endpoint;
    const packets = peer.staged.splice(0);
    if (endpoint === null || socket === null) {
      if (endpoint === null) this.drops.noEndpoint += packets.length;
      else this.drops.noSocket += packets.length;
      return;
    }
    let max = 0;
    for (const p of packets) max = Math.max(max, p.length);
    const stride = this.#stride(max);
    const counter = keypair.reserveSendCounters(packets.length);
    if (counter < 0) {
      peer.staged.push(...packets);
      host.initiate(peer);
      return;
    }
    const out = new Uint8Array(packets.length * stride);
    const lengths = new Int32Array(packets.length);
    const r = host.cipher.seal(keypair.sendTransport, keypair.remoteIndex, counter, packets, packets.length, host.mtu, out, stride, lengths);
    if (r < 0) {
      this.drops.tooBig += packets.length;
      return;
    }
    const list: Uint8Array[] = [];
    let data = 0;
    for (let i = 0; i < packets.length; i++) {
      const len = lengths[i]!;
      if (len < 0) {
        this.drops.tooBig++;
        continue;
      }
      list.push(out.subarray(i * stride, i * stride + len));
      peer.counters.txBytes += len;
      if (packets[i]!.length === 0) peer.counters.keepalivesSent++;
      else data++;
    }
    if (list.length === 0) return;
    peer.counters.txPackets += data;
    this.messages += list.length;
    peer.timersAnyAuthenticatedPacketTraversal();
    peer.timersAnyAuthenticatedPacketSent();
    if (data > 0) peer.timersDataSent();
    if (keypair.needsRekeyOnSend(host.now())) host.initiate(peer);
    socket.send(list, endpoint).then(
      (res) => {
        if (res.failures.length > 0) this.drops.sendFailed += res.failures.length;
      },
      () => {
        this.drops.sendFailed += list.length;
      },
    );
  }

  /** A keepalive: an empty transport message (§6.5), or the staged packets when there are some. */
  sendKeepalive(peer: Peer): void {
    this.sendStaged(peer, true);
  }

  #stride(maxLength: number): number {
    // Message size of the longest packet, rounded to 16 so slots stay aligned.
    return (paddedLength(maxLength, this.#host.mtu) + TRANSPORT_OVERHEAD + 15) & ~15;
  }

  #reserve(bytes: number, slots: number): void {
    if (this.#out.length < bytes) {
      this.#out = new Uint8Array(new ArrayBuffer(Math.max(bytes, 2 * this.#out.length)));
      this.#views.rebase(this.#out.buffer);
    }
    if (this.#lengths.length < slots) {
      const n = Math.max(slots, 2 * this.#lengths.length);
      this.#lengths = new Int32Array(new ArrayBuffer(4 * n));
    }
  }


  #clearBatch(peer: Peer, count: number): void {
    // Drop references to the TUN arena views (they die at the next read anyway).
    const b = peer.batch;
    for (let i = 0; i < count; i++) b[i] = EMPTY;
  }
}
