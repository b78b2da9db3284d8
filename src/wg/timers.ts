/**
 * The per-peer timer rules of WireGuard (whitepaper §6.2-§6.5), as
 * wireguard-go's timers.go (after the kernel's timers.c), written as a pure
 * state machine with an injected clock: the device reports events, asks for
 * {@link PeerTimers.nextDeadline} (to arm one `setTimeout`), and at that time
 * calls {@link PeerTimers.expire}, which returns the actions to perform.
 *
 * Timers (all in ms of the injected monotonic clock):
 * - retransmitHandshake: REKEY_TIMEOUT + jitter after an initiation is sent;
 *   retried up to MAX_TIMER_HANDSHAKES times (REKEY_ATTEMPT_TIME), then the
 *   device gives up and key material is zeroed 3 × REJECT_AFTER_TIME later.
 * - sendKeepalive: KEEPALIVE_TIMEOUT after data is received with nothing sent.
 * - newHandshake: KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter after data is
 *   sent with nothing received.
 * - zeroKeyMaterial: 3 × REJECT_AFTER_TIME after a session is derived.
 * - persistentKeepalive: the configured interval after any authenticated packet.
 * Plus the rekey rules of the send path (in `Keypair.needsRekeyOnSend`) and
 * of the receive path ({@link PeerTimers.keepKeyFreshReceiving}), and the
 * REKEY_TIMEOUT gap between initiations ({@link PeerTimers.mayInitiate}).
 * @module
 */
import { KEEPALIVE_TIMEOUT, MAX_TIMER_HANDSHAKES, REJECT_AFTER_TIME, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX } from './constants.js';

/** What the device must do when timers expire. */
export type TimerAction =
  /** Send a handshake initiation as a retry (wireguard-go also clears the endpoint's source address first). */
  | 'retransmit-handshake'
  /** The handshake did not complete after MAX_TIMER_HANDSHAKES retries: drop the packets staged for this peer. */
  | 'give-up'
  /** Send a keepalive (a transport message with empty content), because data came in and nothing went out. */
  | 'send-keepalive'
  /** Send a new handshake initiation (not a retry): we sent data and heard nothing back. */
  | 'new-handshake'
  /** Forget all keypairs, the handshake in progress and staged packets. */
  | 'zero-key-material'
  /** Send a keepalive for the persistent-keepalive interval. */
  | 'persistent-keepalive';

/** The five timers. */
export type TimerName = 'retransmitHandshake' | 'sendKeepalive' | 'newHandshake' | 'zeroKeyMaterial' | 'persistentKeepalive';

const TIMER_NAMES: readonly TimerName[] = ['retransmitHandshake', 'sendKeepalive', 'newHandshake', 'zeroKeyMaterial', 'persistentKeepalive'];

/** Options of {@link PeerTimers}. */
export interface PeerTimersOptions {
  /** Monotonic clock in ms; default `performance.now()`. */
  now?: () => number;
  /** Jitter in ms added to REKEY_TIMEOUT: an integer in [0, REKEY_TIMEOUT_JITTER_MAX); default uniform random. */
  jitter?: () => number;
  /** Persistent keepalive interval in seconds; 0: off. */
  persistentKeepalive?: number;
}

/** One peer's timers and the counters the rules keep. */
export class PeerTimers {
  /** Retries of the current handshake so far. */
  handshakeAttempts = 0;
  /** A keepalive is due again after the one pending (data kept arriving). */
  needAnotherKeepalive = false;
  /** The receive path already asked for the last-minute rekey of the current keypair. */
  sentLastMinuteHandshake = false;
  /** Monotonic time the last initiation was sent; -Infinity: never. */
  lastSentHandshake = -Infinity;
  /** Monotonic time of the last completed handshake; `null`: never. */
  lastHandshakeAt: number | null = null;
  /** Persistent keepalive interval in seconds; 0: off. */
  persistentKeepalive: number;

  private readonly deadlines: Record<TimerName, number> = {
    retransmitHandshake: Infinity,
    sendKeepalive: Infinity,
    newHandshake: Infinity,
    zeroKeyMaterial: Infinity,
    persistentKeepalive: Infinity,
  };
  private active = true;
  private readonly now: () => number;
  private readonly jitter: () => number;

  constructor(options: PeerTimersOptions = {}) {
    this.now = options.now ?? (() => performance.now());
    this.jitter = options.jitter ?? (() => Math.floor(Math.random() * REKEY_TIMEOUT_JITTER_MAX));
    this.persistentKeepalive = options.persistentKeepalive ?? 0;
  }

  /** True while events arm timers (peer running and device up: wireguard-go timersActive). */
  get isActive(): boolean {
    return this.active;
  }

  /** Starts the timers (device up): counters reset, events arm timers again. */
  start(): void {
    this.active = true;
    this.handshakeAttempts = 0;
    this.sentLastMinuteHandshake = false;
    this.needAnotherKeepalive = false;
  }

  /** Stops every timer (device down, peer removed); events are ignored until {@link start}. */
  stop(): void {
    this.active = false;
    for (const t of TIMER_NAMES) this.deadlines[t] = Infinity;
  }

  /** Deadline of one timer, or Infinity if it is not pending. */
  deadline(timer: TimerName): number {
    return this.deadlines[timer];
  }

  /** True if the timer is pending. */
  isPending(timer: TimerName): boolean {
    return this.deadlines[timer] !== Infinity;
  }

  /** The earliest pending deadline (ms, monotonic), or Infinity if none: arm one timeout for it. */
  nextDeadline(): number {
    let d = Infinity;
    for (const t of TIMER_NAMES) if (this.deadlines[t] < d) d = this.deadlines[t];
    return d;
  }

  private mod(timer: TimerName, delay: number): void {
    if (this.active) this.deadlines[timer] = this.now() + delay;
  }

  private del(timer: TimerName): void {
    this.deadlines[timer] = Infinity;
  }

  private jitteredRekeyTimeout(): number {
    const j = Math.floor(this.jitter());
    return REKEY_TIMEOUT + Math.min(Math.max(j, 0), REKEY_TIMEOUT_JITTER_MAX - 1);
  }

  /** After an authenticated data packet is sent: expect an answer (newHandshake), unless already waiting. */
  dataSent(): void {
    if (this.active && !this.isPending('newHandshake')) this.mod('newHandshake', KEEPALIVE_TIMEOUT + this.jitteredRekeyTimeout());
  }

  /** After an authenticated data packet is received: owe a keepalive unless we send first. */
  dataReceived(): void {
    if (!this.active) return;
    if (!this.isPending('sendKeepalive')) this.mod('sendKeepalive', KEEPALIVE_TIMEOUT);
    else this.needAnotherKeepalive = true;
  }

  /** After any authenticated packet (keepalive, data, handshake) is sent: no keepalive owed. */
  anyAuthenticatedPacketSent(): void {
    this.del('sendKeepalive');
  }

  /** After any authenticated packet is received: the peer is alive. */
  anyAuthenticatedPacketReceived(): void {
    this.del('newHandshake');
  }

  /** After a handshake initiation is sent: retransmit unless answered. */
  handshakeInitiated(): void {
    this.mod('retransmitHandshake', this.jitteredRekeyTimeout());
  }

  /** After a response is consumed, or the first data with a responder's new keypair arrived. */
  handshakeComplete(): void {
    this.del('retransmitHandshake');
    this.handshakeAttempts = 0;
    this.sentLastMinuteHandshake = false;
    this.lastHandshakeAt = this.now();
  }

  /** After a keypair is derived (response created or consumed): zero everything if no new one comes. */
  sessionDerived(): void {
    this.mod('zeroKeyMaterial', REJECT_AFTER_TIME * 3);
  }

  /** Before an authenticated packet is sent or after one is received: restart the persistent keepalive. */
  anyAuthenticatedPacketTraversal(): void {
    if (this.persistentKeepalive > 0) this.mod('persistentKeepalive', this.persistentKeepalive * 1000);
  }

  /**
   * The guard of wireguard-go's SendHandshakeInitiation: false if an
   * initiation was sent less than REKEY_TIMEOUT ago; otherwise records the
   * send time and returns true. A non-retry resets the attempt count.
   */
  mayInitiate(isRetry: boolean): boolean {
    if (!isRetry) this.handshakeAttempts = 0;
    const now = this.now();
    if (now - this.lastSentHandshake < REKEY_TIMEOUT) return false;
    this.lastSentHandshake = now;
    return true;
  }

  /**
   * The receive path's rekey rule (wireguard-go keepKeyFreshReceiving): true,
   * once per keypair, if we initiated the current keypair and it is older than
   * REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT: send an initiation now.
   */
  keepKeyFreshReceiving(current: { isInitiator: boolean; createdAt: number } | null): boolean {
    if (this.sentLastMinuteHandshake || current === null || !current.isInitiator) return false;
    if (this.now() - current.createdAt <= REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT) return false;
    this.sentLastMinuteHandshake = true;
    return true;
  }

  /** Fires every timer whose deadline has passed, in deadline order, and returns the actions for the device. */
  expire(): TimerAction[] {
    const now = this.now();
    const due = TIMER_NAMES.filter((t) => this.deadlines[t] <= now).sort((a, b) => this.deadlines[a] - this.deadlines[b]);
    const actions: TimerAction[] = [];
    for (const t of due) {
      if (this.deadlines[t] > now) continue; // re-armed by an earlier handler
      this.del(t);
      switch (t) {
        case 'retransmitHandshake':
          if (this.handshakeAttempts > MAX_TIMER_HANDSHAKES) {
            this.del('sendKeepalive');
            actions.push('give-up');
            if (!this.isPending('zeroKeyMaterial')) this.mod('zeroKeyMaterial', REJECT_AFTER_TIME * 3);
          } else {
            this.handshakeAttempts++;
            actions.push('retransmit-handshake');
          }
          break;
        case 'sendKeepalive':
          actions.push('send-keepalive');
          if (this.needAnotherKeepalive) {
            this.needAnotherKeepalive = false;
            this.mod('sendKeepalive', KEEPALIVE_TIMEOUT);
          }
          break;
        case 'newHandshake':
          actions.push('new-handshake');
          break;
        case 'zeroKeyMaterial':
          actions.push('zero-key-material');
          break;
        case 'persistentKeepalive':
          if (this.persistentKeepalive > 0) actions.push('persistent-keepalive');
          break;
      }
    }
    return actions;
  }
}
