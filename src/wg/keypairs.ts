/**
 * Transport keypairs (whitepaper §5.4.5, §6.1-§6.3): a keypair's counters
 * and expiry, the per-peer rotation of current / previous / next keypairs,
 * and the index table that maps our 32-bit receiver indices to handshakes
 * and keypairs.
 *
 * Rotation follows wireguard-go (BeginSymmetricSession, ReceivedWithKeypair):
 * the initiator uses a new keypair at once; the responder keeps it as
 * `next` until the first transport message from the peer arrives with it
 * (key confirmation), because the initiator cannot know the handshake
 * completed before that.
 * @module
 */
import { VectunError } from '../errors.js';
import { REJECT_AFTER_TIME, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME, REJECT_AFTER_MESSAGES } from './constants.js';
import { secureRandomBytes, type RandomBytes } from './crypto.js';
import type { DerivedKeypair, Handshake } from './noise.js';
import { ReplayFilter } from './replay.js';

/** REJECT_AFTER_MESSAGES as a number bound for the send counter (which is exact below 2^53). */
const REJECT_AFTER_MESSAGES_NUMBER = Number(REJECT_AFTER_MESSAGES);

/** One session's keys, counters and replay window. */
export class Keypair {
  /** ChaCha20-Poly1305 key for sending. */
  readonly sendKey: Uint8Array;
  /** ChaCha20-Poly1305 key for receiving. */
  readonly receiveKey: Uint8Array;
  /** Our index (receiver field of incoming transport messages). */
  readonly localIndex: number;
  /** The peer's index (receiver field of outgoing transport messages). */
  readonly remoteIndex: number;
  /** True if we initiated the handshake. */
  readonly isInitiator: boolean;
  /** Monotonic time of creation (ms). */
  readonly createdAt: number;
  /**
   * The next send counter (nonce). A number: exact below 2^53, which at
   * 10^8 packets/s takes 2.8 years, far beyond REJECT_AFTER_TIME.
   */
  sendCounter = 0;
  /** The receive replay window (reset for a new keypair). */
  readonly replay = new ReplayFilter();

  /** A keypair from the keys a handshake derived. */
  constructor(keys: DerivedKeypair) {
    this.sendKey = keys.sendKey;
    this.receiveKey = keys.receiveKey;
    this.localIndex = keys.localIndex;
    this.remoteIndex = keys.remoteIndex;
    this.isInitiator = keys.isInitiator;
    this.createdAt = keys.createdAt;
  }

  /**
   * Takes the next send counter, or returns -1 (and takes nothing) once
   * REJECT_AFTER_MESSAGES counters are used (§6.1).
   */
  nextSendCounter(): number {
    if (this.sendCounter >= REJECT_AFTER_MESSAGES_NUMBER) return -1;
    return this.sendCounter++;
  }

  /** Reserves `count` consecutive send counters for a batch; returns the first, or -1 if they would pass the limit. */
  reserveSendCounters(count: number): number {
    if (this.sendCounter + count > REJECT_AFTER_MESSAGES_NUMBER) return -1;
    const first = this.sendCounter;
    this.sendCounter += count;
    return first;
  }

  /** True if this keypair may still send at `now` (wireguard-go send path: age < REJECT_AFTER_TIME and counters left). */
  canSend(now: number): boolean {
    return this.sendCounter < REJECT_AFTER_MESSAGES_NUMBER && now - this.createdAt < REJECT_AFTER_TIME;
  }

  /** True if messages for this keypair may still be accepted at `now` (age not past REJECT_AFTER_TIME). */
  canReceive(now: number): boolean {
    return now - this.createdAt <= REJECT_AFTER_TIME;
  }

  /**
   * The send-side rekey rule (§6.2, wireguard-go keepKeyFreshSending): more
   * than REKEY_AFTER_MESSAGES sent, or we are the initiator and the keypair
   * is older than REKEY_AFTER_TIME.
   */
  needsRekeyOnSend(now: number): boolean {
    return this.sendCounter > REKEY_AFTER_MESSAGES || (this.isInitiator && now - this.createdAt > REKEY_AFTER_TIME);
  }

  /** Overwrites the keys (the keypair is dropped). */
  zero(): void {
    this.sendKey.fill(0);
    this.receiveKey.fill(0);
  }
}

/** A peer's keypairs: `current` sends; `previous` and `next` may still receive. */
export class Keypairs {
  /** The keypair used to send. */
  current: Keypair | null = null;
  /** The keypair before `current`, kept for messages still in flight. */
  previous: Keypair | null = null;
  /** A responder's new keypair awaiting confirmation by the first message received with it. */
  next: Keypair | null = null;

  /** @param onRetire called for every keypair that leaves the set (e.g. to drop its index from the table). */
  constructor(private readonly onRetire: (keypair: Keypair) => void = () => {}) {}

  private retire(k: Keypair | null): void {
    if (k !== null) {
      k.zero();
      this.onRetire(k);
    }
  }

  /** Installs a new keypair from a completed handshake (wireguard-go BeginSymmetricSession's rotation). */
  install(keypair: Keypair): void {
    const { previous, next, current } = this;
    if (keypair.isInitiator) {
      if (next !== null) {
        // The unconfirmed next one is still better than the current for in-flight messages.
        this.next = null;
        this.previous = next;
        this.retire(current);
      } else {
        this.previous = current;
      }
      this.retire(previous);
      this.current = keypair;
    } else {
      this.next = keypair;
      this.retire(next);
      this.previous = null;
      this.retire(previous);
    }
  }

  /**
   * Called for every authenticated transport message: if it came with `next`,
   * that keypair is confirmed and becomes current. True if it rotated (the
   * device then calls the timers' handshakeComplete and sends staged packets).
   */
  receivedWith(keypair: Keypair): boolean {
    if (this.next === null || this.next !== keypair) return false;
    this.retire(this.previous);
    this.previous = this.current;
    this.current = keypair;
    this.next = null;
    return true;
  }

  /** The keypair among current/previous/next with this local index, or null. */
  byLocalIndex(index: number): Keypair | null {
    for (const k of [this.current, this.previous, this.next]) if (k !== null && k.localIndex === index) return k;
    return null;
  }

  /** Retires all keypairs (key change, peer removal, zero-key-material timer). */
  clear(): void {
    const { previous, current, next } = this;
    this.previous = this.current = this.next = null;
    this.retire(previous);
    this.retire(current);
    this.retire(next);
  }
}

/** What an index of the table points to. */
export interface IndexEntry<P> {
  /** The peer owning the index. */
  peer: P;
  /** Set while the index names a handshake in progress. */
  handshake: Handshake | null;
  /** Set once the handshake became a keypair. */
  keypair: Keypair | null;
}

/** Attempts at a fresh random index before giving up (never reached short of ~2^32 entries). */
const INDEX_ATTEMPTS = 64;

/** Our receiver indices → handshakes and keypairs (wireguard-go IndexTable), with random unique 32-bit indices. */
export class IndexTable<P> {
  private readonly table = new Map<number, IndexEntry<P>>();

  /** @param random source of the 4 random bytes of an index; default the CSPRNG. */
  constructor(private readonly random: RandomBytes = secureRandomBytes) {}

  /** Number of indices in use. */
  get size(): number {
    return this.table.size;
  }

  /**
   * A new random index for `handshake` of `peer`.
   * @throws VectunError `ERR_WG_INDEX_TABLE_FULL` if no free index is found.
   */
  allocateForHandshake(peer: P, handshake: Handshake): number {
    for (let i = 0; i < INDEX_ATTEMPTS; i++) {
      const b = this.random(4);
      const index = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
      if (this.table.has(index)) continue;
      this.table.set(index, { peer, handshake, keypair: null });
      return index;
    }
    throw new VectunError('ERR_WG_INDEX_TABLE_FULL', 'no free 32-bit index found');
  }

  /** Points the index of a completed handshake at its keypair (wireguard-go SwapIndexForKeypair). False if the index is gone. */
  swapForKeypair(index: number, keypair: Keypair): boolean {
    const e = this.table.get(index);
    if (e === undefined) return false;
    this.table.set(index, { peer: e.peer, handshake: null, keypair });
    return true;
  }

  /** The entry of an index, or undefined. */
  lookup(index: number): IndexEntry<P> | undefined {
    return this.table.get(index >>> 0);
  }

  /** Frees an index (no-op if it is not in use). */
  delete(index: number): void {
    this.table.delete(index >>> 0);
  }

  /** Frees every index of `peer` (peer removal). */
  deletePeer(peer: P): void {
    for (const [index, e] of this.table) if (e.peer === peer) this.table.delete(index);
  }
}
