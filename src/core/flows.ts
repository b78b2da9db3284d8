/**
 * Flow table for GRO coalescing (spec VOC-6, GRO-T3, GRO-U2).
 *
 * Maps a packet's flow key to a small integer flow id without building string
 * keys: the key fields are hashed into a 32-bit number and, on a hash match,
 * compared byte by byte against the first packet seen for that flow. Open
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

function mix(h: number, w: number): number {
  h = Math.imul(h ^ w, 0xcc9e2d51);
  h = (h << 15) | (h >>> 17);
  return Math.imul(h, 0x1b873593);
}

/**
 * Hash of the flow key of `p`. `iph` is 20 (IPv4) or 40 (IPv6); `tcp` adds
 * the acknowledgment number (GRO-T2).
 */
function flowHash(p: Uint8Array, iph: number, tcp: boolean): number {
  let h = iph; // the version is implied by the header length of a candidate
  if (iph === 20) {
    h = mix(h, word(p, 12));
    h = mix(h, word(p, 16));
  } else {
    for (let i = 8; i < 40; i += 4) h = mix(h, word(p, i));
  }
  h = mix(h, word(p, iph));
  if (tcp) h = mix(h, word(p, iph + 8));
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h | 0;
}

function sameKey(a: Uint8Array, b: Uint8Array, iph: number, tcp: boolean): boolean {
  if (a[0]! >> 4 !== b[0]! >> 4) return false;
  const addrStart = iph === 20 ? 12 : 8;
  for (let i = addrStart; i < iph; i++) if (a[i] !== b[i]) return false;
  // Ports, then the ack number for TCP (GRO-T2; ack differs => other flow, GRO-T2/TS-25).
  for (let i = iph; i < iph + 4; i++) if (a[i] !== b[i]) return false;
  if (tcp) for (let i = iph + 8; i < iph + 12; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * One protocol's flows within one batch. Each flow records the id of its
 * newest item; the items themselves (and their older-item links) live in the
 * coalescer's per-write arrays.
 */
export class FlowTable {
  /** Newest item (write index) of each flow, -1 when the flow has none. */
  newest = new Int32Array(0);

  readonly #tcp: boolean;
  #slots = new Int32Array(0);
  #slotGen = new Uint32Array(0);
  #gen = 0;
  #mask = 0;
  #hash = new Int32Array(0);
  #rep: Uint8Array[] = [];
  #count = 0;

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
      this.newest = new Int32Array(cap);
    }
    if (++this.#gen > 0xfffffff0) {
      this.#slotGen.fill(0);
      this.#gen = 1;
    }
    this.#count = 0;
    this.#rep.length = 0;
  }

  /** Drops references to the caller's packets. */
  release(): void {
    this.#rep.length = 0;
    this.#count = 0;
    this.#gen++;
  }

  /**
   * The flow id of `p`, creating the flow (with no items) when it is new.
   * `iph` is 20 or 40. At most `maxFlows` (see {@link reset}) flows may be
   * created per batch.
   */
  lookup(p: Uint8Array, iph: number): number {
    const tcp = this.#tcp;
    const h = flowHash(p, iph, tcp);
    const slots = this.#slots;
    const slotGen = this.#slotGen;
    const gen = this.#gen;
    const mask = this.#mask;
    let s = h & mask;
    for (;;) {
      if (slotGen[s] !== gen) break;
      const id = slots[s]!;
      if (this.#hash[id] === h && sameKey(this.#rep[id]!, p, iph, tcp)) return id;
      s = (s + 1) & mask;
    }
    const id = this.#count++;
    slots[s] = id;
    slotGen[s] = gen;
    this.#hash[id] = h;
    this.#rep[id] = p;
    this.newest[id] = -1;
    return id;
  }
}
