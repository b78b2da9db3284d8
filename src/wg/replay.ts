/**
 * The sliding-window replay filter for transport counters (whitepaper §5.4.6,
 * RFC 6479), with the same window as wireguard-go's replay package: a ring
 * of 128 blocks of 64 bits, of which 127 blocks (8128 counters) behind the
 * greatest accepted counter are remembered. Counters at or above
 * REJECT_AFTER_MESSAGES are always rejected.
 *
 * Counters are 64-bit; the check takes them as two 32-bit halves (as read
 * from the packet) so the per-packet path allocates nothing and needs no
 * bigint. Call it only for packets that authenticated.
 * @module
 */
import { REJECT_AFTER_MESSAGES_HI, REJECT_AFTER_MESSAGES_LO } from './constants.js';

const BLOCK_BITS_LOG = 6;
const RING_BLOCKS = 128;
const BLOCK_MASK = RING_BLOCKS - 1;
/** Counters this far behind the greatest accepted one are still checked exactly (wireguard-go windowSize). */
export const REPLAY_WINDOW_SIZE = (RING_BLOCKS - 1) * 64;
const TWO_POW_32 = 4294967296;
const TWO_POW_26 = 67108864;

/** One keypair's replay window. */
export class ReplayFilter {
  /** Two 32-bit words per 64-bit block. */
  private readonly ring = new Uint32Array(RING_BLOCKS * 2);
  private lastHigh = 0;
  private lastLow = 0;

  /** Empties the filter (a fresh keypair). */
  reset(): void {
    this.lastHigh = 0;
    this.lastLow = 0;
    this.ring.fill(0);
  }

  /**
   * Accepts a counter once: true if it is new (and marks it seen), false if
   * it was seen, is too old for the window, or is >= REJECT_AFTER_MESSAGES.
   * @param low low 32 bits of the counter (unsigned)
   * @param high high 32 bits of the counter (unsigned)
   */
  check(low: number, high: number): boolean {
    low >>>= 0;
    high >>>= 0;
    if (high === REJECT_AFTER_MESSAGES_HI && low >= REJECT_AFTER_MESSAGES_LO) return false;
    // The difference is exact while the high halves differ by < 2^21; beyond
    // that only its sign and "far more than the window" matter.
    const ahead = (high - this.lastHigh) * TWO_POW_32 + (low - this.lastLow);
    if (ahead > 0) {
      const lastBlock = this.lastLow >>> BLOCK_BITS_LOG;
      let blocks = (high - this.lastHigh) * TWO_POW_26 + ((low >>> BLOCK_BITS_LOG) - lastBlock);
      if (blocks > RING_BLOCKS) blocks = RING_BLOCKS;
      for (let i = 1; i <= blocks; i++) {
        const b = ((lastBlock + i) & BLOCK_MASK) << 1;
        this.ring[b] = 0;
        this.ring[b + 1] = 0;
      }
      this.lastHigh = high;
      this.lastLow = low;
    } else if (-ahead > REPLAY_WINDOW_SIZE) {
      return false;
    }
    const word = ((((low >>> BLOCK_BITS_LOG) & BLOCK_MASK) << 1) | ((low >>> 5) & 1));
    const bit = 1 << (low & 31);
    const old = this.ring[word]!;
    if ((old & bit) !== 0) return false;
    this.ring[word] = old | bit;
    return true;
  }

  /** {@link check} for a counter as a number (exact below 2^53) or bigint. */
  checkCounter(counter: number | bigint): boolean {
    const c = BigInt(counter);
    if (c < 0n || c >= 1n << 64n) return false;
    return this.check(Number(c & 0xffffffffn), Number(c >> 32n));
  }

  /** {@link check} for the little-endian 64-bit counter at `offset` of a packet (offset 8 of a transport message). */
  checkAt(packet: Uint8Array, offset: number): boolean {
    const low = (packet[offset]! | (packet[offset + 1]! << 8) | (packet[offset + 2]! << 16) | (packet[offset + 3]! << 24)) >>> 0;
    const high = (packet[offset + 4]! | (packet[offset + 5]! << 8) | (packet[offset + 6]! << 16) | (packet[offset + 7]! << 24)) >>> 0;
    return this.check(low, high);
  }
}
