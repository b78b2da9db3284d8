/**
 * Handshake load control, as wireguard-go: an under-load detector fed with
 * the handshake queue length, and a per-source-address token bucket
 * (20 handshakes/s, burst 5) applied to handshake messages that carry a
 * valid mac2 while under load (whitepaper §5.3). Pure: the clock is injected.
 * @module
 */
import { UNDER_LOAD_AFTER_TIME } from './constants.js';

/** Handshake messages per second a source may send under load (wireguard-go packetsPerSecond). */
export const HANDSHAKES_PER_SECOND = 20;
/** Burst allowance (wireguard-go packetsBurstable). */
export const HANDSHAKES_BURSTABLE = 5;
/** Entries unused for this long are dropped (wireguard-go garbageCollectTime, ms). */
export const RATE_LIMIT_GC_TIME = 1_000;

/** Token cost of one message, in ms of accumulated credit. */
const PACKET_COST = 1000 / HANDSHAKES_PER_SECOND;
const MAX_TOKENS = PACKET_COST * HANDSHAKES_BURSTABLE;

interface Bucket {
  tokens: number;
  lastTime: number;
}

/** Per-source token bucket for handshake messages under load. */
export class HandshakeRateLimiter {
  private readonly table = new Map<string, Bucket>();
  private lastSweep: number;

  /** @param now monotonic clock in ms; default `performance.now()`. */
  constructor(private readonly now: () => number = () => performance.now()) {
    this.lastSweep = now();
  }

  /** Sources currently tracked. */
  get size(): number {
    return this.table.size;
  }

  /**
   * True if one more handshake message from `source` (the source address in
   * any stable text form; wireguard-go keys by IP without port) is allowed.
   */
  allow(source: string): boolean {
    const now = this.now();
    if (now - this.lastSweep > RATE_LIMIT_GC_TIME) this.sweep(now);
    const entry = this.table.get(source);
    if (entry === undefined) {
      this.table.set(source, { tokens: MAX_TOKENS - PACKET_COST, lastTime: now });
      return true;
    }
    entry.tokens = Math.min(MAX_TOKENS, entry.tokens + (now - entry.lastTime));
    entry.lastTime = now;
    if (entry.tokens > PACKET_COST) {
      entry.tokens -= PACKET_COST;
      return true;
    }
    return false;
  }

  /** Drops entries idle for more than RATE_LIMIT_GC_TIME. */
  sweep(now: number = this.now()): void {
    this.lastSweep = now;
    for (const [key, e] of this.table) if (now - e.lastTime > RATE_LIMIT_GC_TIME) this.table.delete(key);
  }
}

/**
 * wireguard-go's IsUnderLoad: under load while the handshake queue holds at
 * least `threshold` messages, and for UNDER_LOAD_AFTER_TIME after that.
 */
export class UnderLoadDetector {
  private underLoadUntil = -Infinity;

  /**
   * @param threshold queued handshakes that mean load (wireguard-go: queue size / 8 = 128)
   * @param now monotonic clock in ms
   */
  constructor(
    readonly threshold: number = 128,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** True if the device is (or recently was) under load, given the current handshake queue length. */
  isUnderLoad(queuedHandshakes: number): boolean {
    const now = this.now();
    if (queuedHandshakes >= this.threshold) {
      this.underLoadUntil = now + UNDER_LOAD_AFTER_TIME;
      return true;
    }
    return this.underLoadUntil > now;
  }
}
