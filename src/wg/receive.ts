/**
 * The receive path (whitepaper §5.4.6, §2; wireguard-go receive.go with
 * offloads): one `UdpSocket.read` batch (GRO receives already split into
 * datagram views) is classified by message type; transport messages (type 4)
 * take the fast path: the keypair is found by receiver index, the whole batch
 * is opened in one native call into a plaintext arena, then per message the
 * replay window is checked (only after the tag verified, so forged packets
 * cannot move it), padding is stripped by the inner IP length, the inner
 * source is checked against the peer's AllowedIPs (cryptokey routing, §2),
 * an IPv6 UDP checksum a sender left at 0 is repaired (else the kernel would
 * drop the packet), and the packets go to `Tun.write` as one batch, which
 * coalesces them (GRO) and writes one `writev` per super-packet. Handshake
 * messages (types 1-3) are copied to the device's handshake queue.
 *
 * A message that fails any check is dropped and counted by reason, and
 * touches no session state: keypairs, replay windows, endpoints and timers
 * change only for messages that authenticated.
 * @module
 */
import { Arena } from '../core/arena.js';
import { repairZeroUdp6Checksum } from '../core/checksum.js';
import {
  AEAD_BAD_LENGTH, AEAD_BAD_TAG, AEAD_COUNTER_RANGE, AEAD_KEY_DESTROYED, AEAD_NO_KEY, TRANSPORT_OVERHEAD,
  type TransportCipher, type TransportKey,
} from './aead.js';
import type { AllowedIps } from './allowed-ips.js';
import type { IndexTable } from './keypairs.js';
import type { Peer, PeerKeypair } from './peer.js';
import type { UdpEndpoint } from '../udp/address.js';
import { SlotViews } from './views.js';

/** What the receive path drops, by reason (cumulative; documented in docs/wg-crypto.md). */
export interface ReceiveDrops {
  /** Not a WireGuard message: unknown type, non-zero reserved bytes, or too short for a transport message. */
  malformed: number;
  /** A transport message whose receiver index names no current keypair. */
  unknownIndex: number;
  /** The keypair is older than REJECT_AFTER_TIME (§6.1). */
  expiredKeypair: number;
  /** The Poly1305 tag did not verify (forged, corrupted, or another key). */
  authFailed: number;
  /** Authenticated, but the counter was seen before or is behind the window (§5.4.6). */
  replayed: number;
  /** Authenticated, but its counter is at or above 2^53 (a counter no sender reaches; see docs/wg-crypto.md). */
  counterRange: number;
  /** Authenticated, but the plaintext is not an IPv4/IPv6 packet that fits it. */
  innerMalformed: number;
  /** Authenticated, but the inner source address is not in the sending peer's AllowedIPs (§2). */
  sourceNotAllowed: number;
  /** The TUN refused the packet (the Tun's stats say why). */
  tunWriteFailed: number;
}

/** The TUN side the receive path needs (a `Tun` fits). */
export interface ReceiveTunnel {
  /** Writes plain IP packets, coalescing them (GRO). */
  write(packets: readonly Uint8Array[]): Promise<{ failures: readonly unknown[] }>;
}

/** What the receive path needs from its device. */
export interface ReceiveHost {
  /** The cryptokey routing table (source check). */
  readonly routes: AllowedIps<Peer>;
  /** Bumped on every routing change. */
  readonly routesVersion: number;
  /** Our receiver indices. */
  readonly indices: IndexTable<Peer>;
  /** The transport AEAD. */
  readonly cipher: TransportCipher;
  /** Where decrypted packets go. */
  readonly tunnel: ReceiveTunnel;
  /** Monotonic ms. */
  now(): number;
  /** A handshake message (a view valid during the call only) from `source`. */
  handshakeMessage(message: Uint8Array, source: UdpEndpoint): void;
  /** The first message with a responder's new keypair arrived: it is current now (§5.4.5 key confirmation). */
  keypairConfirmed(peer: Peer): void;
  /** An authenticated message arrived with `keypair` (receive-side rekey check, §6.2). */
  receivedWith(peer: Peer, keypair: PeerKeypair): void;
}

const TWO_32 = 4294967296;

/** The receive path of one device. */
export class ReceivePath {
  /** Drop counters. */
  readonly drops: ReceiveDrops = {
    malformed: 0, unknownIndex: 0, expiredKeypair: 0, authFailed: 0, replayed: 0, counterRange: 0,
    innerMalformed: 0, sourceNotAllowed: 0, tunWriteFailed: 0,
  };
  /** Data packets handed to the TUN. */
  packets = 0;
  /** Keepalives received. */
  keepalives = 0;
  /** Handshake messages passed on. */
  handshakeMessages = 0;
  /**
   * IPv6 UDP packets whose sender left a computed checksum of 0 (wireguard-go
   * does, about 1 in 65,536), written with 0xFFFF so the kernel does not drop
   * them (see `repairZeroUdp6Checksum`).
   */
  udp6ChecksumsRepaired = 0;

  readonly #host: ReceiveHost;
  // Per-batch arrays, reused: transport messages, their keys/keypairs/sources.
  #messages: Uint8Array[] = [];
  #keys: (TransportKey | null)[] = [];
  #keypairs: (PeerKeypair | null)[] = [];
  #sources: (UdpEndpoint | null)[] = [];
  #lengths = new Int32Array(new ArrayBuffer(4 * 1024));
  #counters = new Float64Array(new ArrayBuffer(8 * 1024));
  /** Decrypted packets: an Arena, so GRO's checksum runs where they are. */
  #plain: Uint8Array = new Arena(4 << 20).bytes;
  #views = new SlotViews(this.#plain.buffer);
  #out: Uint8Array[] = [];
  #lastSrc = -1;
  #lastSrcPeer: Peer | null = null;
  #lastVersion = -1;

  constructor(host: ReceiveHost) {
    this.#host = host;
  }

  /**
   * Handles one UDP batch; resolves when the TUN write settled (the
   * plaintext arena is reused by the next call).
   */
  process(datagrams: readonly Uint8Array[], sources: readonly UdpEndpoint[]): Promise<unknown> {
    const host = this.#host;
    const drops = this.drops;
    const now = host.now();
    const messages = this.#messages;
    const keys = this.#keys;
    const keypairs = this.#keypairs;
    const srcs = this.#sources;
    let m = 0;
    let maxLength = 0;
    let lastIndex = -1;
    let lastKeypair: PeerKeypair | null = null;
    for (let i = 0; i < datagrams.length; i++) {
      const d = datagrams[i]!;
      const type = d.length >= 4 ? d[0]! : 0;
      if (d.length < 4 || (d[1]! | d[2]! | d[3]!) !== 0) {
        drops.malformed++;
        continue;
      }
      if (type !== 4) {
        if (type >= 1 && type <= 3) {
          this.handshakeMessages++;
          host.handshakeMessage(d, sources[i]!);
        } else drops.malformed++;
        continue;
      }
      if (d.length < TRANSPORT_OVERHEAD) {
        drops.malformed++;
        continue;
      }
      const index = (d[4]! | (d[5]! << 8) | (d[6]! << 16) | (d[7]! << 24)) >>> 0;
      let kp: PeerKeypair | null;
      if (index === lastIndex) kp = lastKeypair;
      else {
        const entry = host.indices.lookup(index);
        kp = (entry?.keypair ?? null) as PeerKeypair | null;
        if (kp !== null && !kp.canReceive(now)) kp = null;
        lastIndex = index;
        lastKeypair = kp;
      }
      if (kp === null) {
        if (host.indices.lookup(index)?.keypair != null) drops.expiredKeypair++;
        else drops.unknownIndex++;
        continue;
      }
      messages[m] = d;
      keys[m] = kp.receiveTransport;
      keypairs[m] = kp;
      srcs[m] = sources[i]!;
      m++;
      if (d.length > maxLength) maxLength = d.length;
    }
    if (m === 0) return Promise.resolve();
    const stride = (maxLength - TRANSPORT_OVERHEAD + 15) & ~15;
    this.#reserve(m, stride);
    const lengths = this.#lengths;
    const counters = this.#counters;
    host.cipher.open(keys, messages, m, this.#plain, stride, lengths, counters);
    return this.#deliver(m, stride);
  }

  #deliver(m: number, stride: number): Promise<unknown> {
    const host = this.#host;
    const drops = this.drops;
    const routes = host.routes;
    if (this.#lastVersion !== host.routesVersion) {
      this.#lastVersion = host.routesVersion;
      this.#lastSrc = -1;
      this.#lastSrcPeer = null;
    }
    const lengths = this.#lengths;
    const counters = this.#counters;
    const plain = this.#plain;
    const out = this.#out;
    let n = 0;
    let prevKeypair: PeerKeypair | null = null;
    let prevSource: UdpEndpoint | null = null;
    let dataPeer: Peer | null = null;
    let dataRun = 0;
    for (let j = 0; j < m; j++) {
      const len = lengths[j]!;
      const kp = this.#keypairs[j]!;
      const message = this.#messages[j]!;
      // Drop references into the UDP arena as we go.
      this.#messages[j] = plain;
      this.#keys[j] = null;
      this.#keypairs[j] = null;
      if (len < 0) {
        if (len === AEAD_BAD_TAG || len === AEAD_BAD_LENGTH) drops.authFailed++;
        else if (len === AEAD_COUNTER_RANGE) drops.counterRange++;
        else if (len === AEAD_KEY_DESTROYED || len === AEAD_NO_KEY) drops.unknownIndex++;
        else drops.authFailed++;
        continue;
      }
      const counter = counters[j]!;
      const low = counter >>> 0;
      if (!kp.replay.check(low, (counter - low) / TWO_32)) {
        drops.replayed++;
        continue;
      }
      // Authenticated and fresh: from here on the message may change session state.
      const peer = kp.peer;
      const source = this.#sources[j]!;
      if (kp !== prevKeypair || source !== prevSource) {
        prevKeypair = kp;
        prevSource = source;
        if (peer.keypairs.receivedWith(kp)) host.keypairConfirmed(peer);
        // Roaming (§2): the endpoint follows the latest authenticated packet.
        if (peer.endpoint !== source && (peer.endpoint === null || peer.endpoint.key !== source.key)) peer.endpoint = source;
        peer.timersAnyAuthenticatedPacketReceived();
        peer.timersAnyAuthenticatedPacketTraversal();
        host.receivedWith(peer, kp);
      }
      peer.counters.rxBytes += message.length;
      if (len === 0) {
        peer.counters.keepalivesReceived++;
        this.keepalives++;
        continue;
      }
      const off = j * stride;
      const version = plain[off]! >> 4;
      let total: number;
      let allowed: Peer | null;
      if (version === 4) {
        total = len >= 20 ? (plain[off + 2]! << 8) | plain[off + 3]! : 0;
        if (total < 20 || total > len) {
          drops.innerMalformed++;
          continue;
        }
        const src = ((plain[off + 12]! << 24) | (plain[off + 13]! << 16) | (plain[off + 14]! << 8) | plain[off + 15]!) >>> 0;
        if (src === this.#lastSrc) allowed = this.#lastSrcPeer;
        else {
          allowed = routes.lookupBytes(plain, off + 12, 4);
          this.#lastSrc = src;
          this.#lastSrcPeer = allowed;
        }
      } else if (version === 6) {
        total = len >= 40 ? 40 + ((plain[off + 4]! << 8) | plain[off + 5]!) : 0;
        if (total < 40 || total > len) {
          drops.innerMalformed++;
          continue;
        }
        allowed = routes.lookupBytes(plain, off + 8, 16);
      } else {
        drops.innerMalformed++;
        continue;
      }
      if (allowed !== peer) {
        drops.sourceNotAllowed++;
        continue;
      }
      peer.counters.rxPackets++;
      // timersDataReceived per packet as wireguard-go, but only the first two
      // of a peer's run matter (the second sets needAnotherKeepalive).
      if (peer !== dataPeer) {
        dataPeer = peer;
        dataRun = 0;
      }
      if (dataRun++ < 2) peer.timersDataReceived();
      const packet = this.#views.get(j, off, total);
      if (version === 6 && repairZeroUdp6Checksum(packet)) this.udp6ChecksumsRepaired++;
      out[n++] = packet;
    }
    out.length = n;
    for (let j = 0; j < m; j++) this.#sources[j] = null;
    if (n === 0) return Promise.resolve();
    this.packets += n;
    return host.tunnel.write(out).then(
      (r) => {
        if (r.failures.length > 0) drops.tunWriteFailed += r.failures.length;
      },
      () => {
        drops.tunWriteFailed += n;
      },
    );
  }

  #reserve(m: number, stride: number): void {
    if (this.#lengths.length < m) {
      const n = Math.max(m, 2 * this.#lengths.length);
      this.#lengths = new Int32Array(new ArrayBuffer(4 * n));
      this.#counters = new Float64Array(new ArrayBuffer(8 * n));
    }
    if (this.#plain.length < m * stride) {
      this.#plain = new Arena(Math.max(m * stride, 2 * this.#plain.length)).bytes;
      this.#views.rebase(this.#plain.buffer);
    }
  }

}
