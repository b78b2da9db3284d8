/**
 * Flow table for GRO coalescing (spec VOC-6, GRO-T3, GRO-U2).
 *
 * Maps a packet's flow key to a small integer flow id without building string
 * keys: the key fields are read as 32-bit words, hashed into a number and,
 * on a hash match, compared word by word with the stored key. Open
 * addressing with linear probing; slots carry a generation stamp, so emptying
 * the table between batches (WR-2) costs one increment instead of a clear.
 *
 * Key (VOC-6): IP version, source and destination address, source and
 * destination port, and for TCP the acknowledgment number. Callers pass only
 * GRO candidates, whose IP header length is fixed (IPv4 IHL 5, IPv6 without
 * extension headers, GRO-C2), so the transport header starts at 20 or 40.
 * @module
 */

/** Smallest table: covers a full batch of 128 flows at load ≤ 0.5 (GRO-L3). */
const MIN_SLOTS = 256;

function word(p: Uint8Array, i: number): number {
  return (p[i]! << 24) | (p[i + 1]! << 16) | (p[i + 2]! << 8) | p[i + 3]!;
}

/** Key words per flow: IPv6 addresses (8) + ports + ack. */
const KEY_WORDS = 10;

/**
 * One protocol's flows within one batch. Each flow records the id of its
 * newest item; the items themselves (and their older-item links) live in the
 * coalescer's per-write arrays.
 */
export class FlowTable {
  /** Newest item (write index) of each flow, -1 when the flow has none. */
  newest = new Int32Array(0);
  /**
   * Per flow: the pseudo-header sum (CK-2) without the length, i.e. both
   * addresses plus the protocol number, unfolded. Every packet of a flow
   * shares it, so checksum validation (CK-4) only adds its own length.
   */
  pseudoBase = new Int32Array(0);

  readonly #tcp: boolean;
  #slots = new Int32Array(0);
  #slotGen = new Uint32Array(0);
  #gen = 0;
  #mask = 0;
  #hash = new Int32Array(0);
  // Key words of each flow (KEY_WORDS per flow) and how many are used; the
  // word count also tells IPv4 from IPv6 (VOC-6: the version is in the key).
  #keys = new Int32Array(0);
  #keyLen = new Uint8Array(0);
  readonly #scratch = new Int32Array(KEY_WORDS);
  #count = 0;
  /** The flow of the previous lookup, -1 = none this batch: runs of one flow skip the hash. */
  #last = -1;

  /** @param tcp whether the key includes the TCP acknowledgment number. */
  constructor(tcp: boolean) {
    this.#tcp = tcp;
  }

  /** Number of flows in the current batch. */
  get size(): number {
    return this.#count;
  }

  /** Empties the table (WR-2) and makes room for up to `maxFlows` flows. */
  reset(maxFlows: number): void {
    let slots = MIN_SLOTS;
    while (slots < maxFlows * 2) slots *= 2;
    if (slots > this.#slots.length) {
      this.#slots = new Int32Array(slots);
      this.#slotGen = new Uint32Array(slots);
      this.#mask = slots - 1;
      this.#gen = 0;
    }
    if (maxFlows > this.#hash.length) {
      const cap = Math.max(maxFlows, this.#hash.length * 2);
      this.#hash = new Int32Array(cap);
      this.#keys = new Int32Array(cap * KEY_WORDS);
      this.#keyLen = new Uint8Array(cap);
      this.newest = new Int32Array(cap);
      this.pseudoBase = new Int32Array(cap);
    }
    if (++this.#gen > 0xfffffff0) {
      this.#slotGen.fill(0);
      this.#gen = 1;
    }
    this.#count = 0;
    this.#last = -1;
  }

  /**
   * The flow id of `p`, creating the flow (with no items) when it is new.
   * `iph` is 20 or 40. At most `maxFlows` (see {@link reset}) flows may be
   * created per batch.
   */
  lookup(p: Uint8Array, iph: number): number {
    const kw = this.#scratch;
    // Key words: addresses, ports, ack (0 for UDP). 4 words for IPv4, 10 for
    // IPv6; the count also keeps the two versions apart (VOC-6).
    let n: number;
    let h: number;
    const last = this.#last;
    if (iph === 20) {
      n = 4;
      kw[0] = word(p, 12);
      kw[1] = word(p, 16);
      kw[2] = word(p, 20); // ports
      kw[3] = this.#tcp ? word(p, 28) : 0; // ack (GRO-T2; TS-25)
      if (last !== -1 && this.#keyLen[last] === 4) {
        // Split batches come as runs of one flow: same key as last time?
        const keys = this.#keys;
        const at = last * KEY_WORDS;
        if (keys[at] === kw[0] && keys[at + 1] === kw[1] && keys[at + 2] === kw[2] && keys[at + 3] === kw[3]) return last;
      }
      h = Math.imul(kw[0]!, 0x9e3779b1) ^ kw[1]!;
      h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) ^ kw[2]!;
      h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) ^ kw[3]!;
    } else {
      n = 10;
      h = 0x6a09e667;
      for (let k = 0; k < 8; k++) {
        kw[k] = word(p, 8 + 4 * k);
        h = Math.imul(h ^ (h >>> 15), 0x85ebca6b) ^ kw[k]!;
      }
      kw[8] = word(p, 40);
      kw[9] = this.#tcp ? word(p, 48) : 0;
      h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) ^ kw[8]!;
      h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) ^ kw[9]!;
    }
    // Final avalanche: the table index uses the low bits.
    h ^= h >>> 16;
    h = Math.imul(h, 0x7feb352d);
    h ^= h >>> 15;
    const slots = this.#slots;
    const slotGen = this.#slotGen;
    const gen = this.#gen;
    const mask = this.#mask;
    const keys = this.#keys;
    let s = h & mask;
    probe: for (;;) {
      if (slotGen[s] !== gen) break;
      const id = slots[s]!;
      if (this.#hash[id] === h && this.#keyLen[id] === n) {
        const at = id * KEY_WORDS;
        for (let k = 0; k < n; k++) {
          if (keys[at + k] !== kw[k]) {
            s = (s + 1) & mask;
            continue probe;
          }
        }
        this.#last = id;
        return id;
      }
      s = (s + 1) & mask;
    }
    const id = this.#count++;
    this.#last = id;
    slots[s] = id;
    slotGen[s] = gen;
    this.#hash[id] = h;
    this.#keyLen[id] = n;
    const at = id * KEY_WORDS;
    for (let k = 0; k < n; k++) keys[at + k] = kw[k]!;
    let pseudo = this.#tcp ? 6 : 17;
    const addrWords = n - 2;
    for (let k = 0; k < addrWords; k++) pseudo += (kw[k]! >>> 16) + (kw[k]! & 0xffff);
    this.pseudoBase[id] = pseudo;
    this.newest[id] = -1;
    return id;
  }
}
