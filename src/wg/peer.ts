/**
 * A WireGuard peer as the device sees it: configuration, endpoint (with
 * roaming), keypairs with their transport keys, the timers of whitepaper §6
 * wired as wireguard-go's timers.go does, packets staged while a handshake is
 * pending, and counters.
 *
 * Timers: wg-proto's pure PeerTimers keeps the deadlines; the peer arms one
 * host timer for the earliest and re-arms only when a deadline moves before
 * it, so the per-batch events (data sent, data received, authenticated
 * packet sent) cost a few number comparisons, not a Node timer each.
 * @module
 */
import { Handshake, type NoiseClock } from './noise.js';
import { CookieGenerator } from './cookie.js';
import { Keypair, Keypairs } from './keypairs.js';
import type { DerivedKeypair } from './noise.js';
import type { UdpEndpoint } from '../udp/address.js';
import type { TransportCipher, TransportKey } from './aead.js';
import { PeerTimers } from './timers.js';

/** Packets queued per peer while its handshake is pending (wireguard-go QueueStagedSize). */
export const MAX_STAGED_PACKETS = 1024;

/**
 * The clocks and timers the device runs on (ms). The system one uses
 * `performance.now()`, `Date.now()` and `setTimeout`; tests drive a manual one.
 */
export interface WgClock extends NoiseClock {
  /** Calls `fn` after `ms`; the handle goes to {@link clearTimer}. */
  setTimer(fn: () => void, ms: number): unknown;
  /** Cancels a timer of {@link setTimer}. */
  clearTimer(handle: unknown): void;
}

/** The real clocks; timers do not keep the process alive (the device's I/O does). */
export const systemClock: WgClock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** A keypair with its transport keys set up once, and its peer. */
export class PeerKeypair extends Keypair {
  /** Key for sealing (T_send). */
  readonly sendTransport: TransportKey;
  /** Key for opening (T_recv). */
  readonly receiveTransport: TransportKey;
  /** The peer this keypair belongs to. */
  readonly peer: Peer;

  /** Sets up both transport keys of a handshake's result. */
  constructor(keys: DerivedKeypair, cipher: TransportCipher, peer: Peer) {
    super(keys);
    this.sendTransport = cipher.key(keys.sendKey);
    this.receiveTransport = cipher.key(keys.receiveKey);
    this.peer = peer;
  }

  /** Erases the raw keys and the transport keys. */
  override zero(): void {
    super.zero();
    this.sendTransport.destroy();
    this.receiveTransport.destroy();
  }
}

/** What a peer's timers do when they fire (the device implements them). */
export interface PeerActions {
  /** Send a handshake initiation (`retry`: a retransmission, keeps the attempt count). */
  sendInitiation(peer: Peer, retry: boolean): void;
  /** Send a keepalive (or the staged packets, if any). */
  sendKeepalive(peer: Peer): void;
  /** Erase every keypair and the handshake in progress (REJECT_AFTER_TIME * 3 without a new session). */
  zeroKeyMaterial(peer: Peer): void;
}

/** Counters of one peer (cumulative). */
export interface PeerCounters {
  /** Transport message bytes received and authenticated (header and tag included, as wireguard-go). */
  rxBytes: number;
  /** Transport message bytes sent. */
  txBytes: number;
  /** Data packets received and written to the TUN. */
  rxPackets: number;
  /** Data packets sent. */
  txPackets: number;
  /** Keepalives received (authenticated, empty). */
  keepalivesReceived: number;
  /** Keepalives sent. */
  keepalivesSent: number;
  /** Handshake initiations sent (retransmissions included). */
  initiationsSent: number;
  /** Handshakes completed (either side). */
  handshakes: number;
  /** Staged packets dropped because the queue was full (oldest first, as wireguard-go). */
  stagedDropped: number;
  /** Staged packets dropped because the handshake gave up (REKEY_ATTEMPT_TIME). */
  stagedExpired: number;
}

/** One configured peer. */
export class Peer {
  /** The peer's static public key. */
  readonly publicKey: Uint8Array;
  /** Hex of the public key (the device's map key). */
  readonly id: string;
  /** Noise handshake state (wg-proto). */
  readonly handshake: Handshake;
  /** mac1/mac2 for messages we send it, and its cookie replies. */
  readonly cookies: CookieGenerator;
  /** current / previous / next keypairs. */
  readonly keypairs: Keypairs;
  /** Where to send; `null` until configured or learnt from an authenticated packet (roaming). */
  endpoint: UdpEndpoint | null = null;
  /** The preshared key as configured (`null`: none). */
  presharedKey: Uint8Array | null = null;
  /** Wall-clock ms of the last completed handshake; 0 = never. */
  lastHandshakeWall = 0;
  /** Our index of the handshake in progress (0: none registered). */
  handshakeIndex = 0;
  /** The timer rules of §6 (wg-proto), driven by one host timer. */
  readonly timers: PeerTimers;
  /** Packets (copies) waiting for a keypair; at most {@link MAX_STAGED_PACKETS}. */
  readonly staged: Uint8Array[] = [];
  /** Cumulative counters. */
  readonly counters: PeerCounters = {
    rxBytes: 0, txBytes: 0, rxPackets: 0, txPackets: 0, keepalivesReceived: 0, keepalivesSent: 0,
    initiationsSent: 0, handshakes: 0, stagedDropped: 0, stagedExpired: 0,
  };
  /** Removed from the device: timers stopped, nothing is sent. */
  removed = false;

  // Send-path scratch: this batch's packets for the peer (reused, `batchCount` valid).
  /** @internal */
  batch: Uint8Array[] = [];
  /** @internal */
  batchCount = 0;
  /** @internal Longest packet in {@link batch}. */
  batchMax = 0;

  readonly #clock: WgClock;
  readonly #actions: PeerActions;
  #armed: unknown = undefined;
  #armedAt = Infinity;

  /**
   * @param handshake the peer's handshake state (wg-proto)
   * @param onRetire called for every keypair leaving the set (the device frees its index)
   */
  constructor(publicKey: Uint8Array, handshake: Handshake, clock: WgClock, actions: PeerActions, onRetire: (k: Keypair) => void) {
    this.publicKey = Uint8Array.from(publicKey);
    this.id = Buffer.from(publicKey).toString('hex');
    this.handshake = handshake;
    this.cookies = new CookieGenerator(publicKey, { now: () => clock.now() });
    this.keypairs = new Keypairs(onRetire);
    this.#clock = clock;
    this.#actions = actions;
    this.timers = new PeerTimers({ now: () => clock.now() });
  }

  /** Seconds between keepalives when idle; 0 = off. */
  get persistentKeepalive(): number {
    return this.timers.persistentKeepalive;
  }
  set persistentKeepalive(seconds: number) {
    this.timers.persistentKeepalive = seconds;
  }

  /** The keypair to send with now, or null (none, expired, or out of counters). */
  sendingKeypair(now: number): PeerKeypair | null {
    const k = this.keypairs.current as PeerKeypair | null;
    return k !== null && k.canSend(now) ? k : null;
  }

  /**
   * Queues a copy of `packet` for when a keypair exists; the oldest goes when
   * the queue is full (wireguard-go drops the oldest too).
   */
  stage(packet: Uint8Array): void {
    if (this.staged.length >= MAX_STAGED_PACKETS) {
      this.staged.shift();
      this.counters.stagedDropped++;
    }
    this.staged.push(Uint8Array.from(packet));
  }

  // ---------------------------------------------------------------- timers (wg-proto PeerTimers, one host timer)

  /** Data was sent: expect an answer within KEEPALIVE_TIMEOUT + REKEY_TIMEOUT, else handshake anew (§6.5). */
  timersDataSent(): void {
    this.timers.dataSent();
    this.#schedule();
  }

  /** Data was received: answer with a keepalive if nothing is sent within KEEPALIVE_TIMEOUT (§6.5). */
  timersDataReceived(): void {
    this.timers.dataReceived();
    this.#schedule();
  }

  /** Any authenticated packet (data, keepalive, handshake) was sent: no keepalive needed. */
  timersAnyAuthenticatedPacketSent(): void {
    this.timers.anyAuthenticatedPacketSent();
  }

  /** Any authenticated packet was received: the peer is alive, no new handshake for silence. */
  timersAnyAuthenticatedPacketReceived(): void {
    this.timers.anyAuthenticatedPacketReceived();
  }

  /** An initiation was sent: retransmit after REKEY_TIMEOUT + jitter (§6.4). */
  timersHandshakeInitiated(): void {
    this.timers.handshakeInitiated();
    this.#schedule();
  }

  /** A handshake completed (response consumed, or a responder's keypair confirmed). */
  timersHandshakeComplete(): void {
    this.timers.handshakeComplete();
    this.lastHandshakeWall = this.#clock.wallNow();
    this.counters.handshakes++;
  }

  /** A session was derived: erase everything after REJECT_AFTER_TIME * 3 without a new one. */
  timersSessionDerived(): void {
    this.timers.sessionDerived();
    this.#schedule();
  }

  /** Any authenticated packet went either way: restart the persistent keepalive interval. */
  timersAnyAuthenticatedPacketTraversal(): void {
    if (this.timers.persistentKeepalive === 0) return;
    this.timers.anyAuthenticatedPacketTraversal();
    this.#schedule();
  }

  /** Stops every timer (peer removed or device closed). */
  stopTimers(): void {
    this.timers.stop();
    if (this.#armed !== undefined) this.#clock.clearTimer(this.#armed);
    this.#armed = undefined;
    this.#armedAt = Infinity;
  }

  /** Arms the host timer when the earliest deadline moved before the armed one (a later one fires early and re-arms). */
  #schedule(): void {
    const at = this.timers.nextDeadline();
    if (at < this.#armedAt) this.#arm(at);
  }

  #arm(at: number): void {
    if (this.#armed !== undefined) this.#clock.clearTimer(this.#armed);
    this.#armedAt = at;
    this.#armed = this.#clock.setTimer(() => this.#fire(), Math.max(0, at - this.#clock.now()));
  }

  #fire(): void {
    this.#armed = undefined;
    this.#armedAt = Infinity;
    if (this.removed) return;
    const a = this.#actions;
    for (const action of this.timers.expire()) {
      if (this.removed) return;
      switch (action) {
        case 'retransmit-handshake':
          a.sendInitiation(this, true);
          break;
        case 'give-up':
          // REKEY_ATTEMPT_TIME passed (§6.4): drop what waited for the handshake.
          this.counters.stagedExpired += this.staged.length;
          this.staged.length = 0;
          break;
        case 'new-handshake':
          a.sendInitiation(this, false);
          break;
        case 'send-keepalive':
        case 'persistent-keepalive':
          a.sendKeepalive(this);
          break;
        case 'zero-key-material':
          a.zeroKeyMaterial(this);
          break;
      }
    }
    this.#schedule();
  }
}
