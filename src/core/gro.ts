/**
 * GRO coalescing, the write side of the offload core (spec sec. 5 and 6:
 * WR-2, GRO-C1..C3, GRO-T1..T6, GRO-U1..U4, GRO-S1, GRO-IP1, GRO-L1..L5,
 * GRO-A1..A6, GRO-O1, SG-1; vectun differences D-1, D-2, D-6, D-9).
 *
 * A batch of plain IP packets becomes an ordered list of write vectors
 * `[vnet header | head packet | payload fragment ...]` (SG-1): one writev
 * each. Fragments are `subarray` views on the caller's packets; no payload
 * byte is copied.
 *
 * Mutation (PIT-2, GRO-A4): the header bytes of head packets are rewritten in
 * the caller's buffers: IP length fields, the IPv4 header checksum, the
 * transport checksum (made partial), the UDP length, and the TCP PSH bit
 * (GRO-T6 append, D-2 prepend). Payload bytes are never written.
 * {@link Coalescer.uncoalesced} restores them.
 *
 * Malformed packets never throw: they are non-candidates (GRO-C2) or no-ops
 * (GRO-T1, GRO-U1) and pass through unchanged with an all-zero header.
 * @module
 */
import { checksumSum, pseudoHeaderSumFor, writeIPv4HeaderChecksum } from './checksum.js';
import { FlowTable } from './flows.js';
import { VNET_HDR_LEN } from './virtio.js';
import { VectunError } from '../errors.js';

/** Linux UIO_MAXIOV: entries per write vector, header included (GRO-L2). */
export const GRO_MAX_VECTOR_ENTRIES = 1024;
/** Largest coalesced IP packet (GRO-L1). */
export const GRO_MAX_PACKET = 65535;

/** Switches of a {@link Coalescer} (DEV-6). */
export interface CoalescerOptions {
  /** TCP GRO; default true. */
  tcp?: boolean;
  /** UDP GRO (needs TUN_F_USO4/6, DEV-3); default false. */
  udp?: boolean;
}

/** Per-call options of {@link Coalescer.coalesce}. */
export interface CoalesceCallOptions {
  /**
   * Skips CK-4 for packets whose transport checksum the caller KNOWS verifies
   * (GRO-T4/GRO-U3 would pass): `true` for every packet, or a flag per input
   * index (1 = verified; other values and missing indices are validated). Meant for
   * packets this library's own split produced (RD-9) and nobody modified
   * since, e.g. the bridge forwarding a `Tun.read` batch. A wrong claim lets a
   * packet with a bad checksum merge, and the kernel then computes a fresh,
   * valid checksum over it: only claim what you know. Default: validate all.
   */
  checksumsVerified?: boolean | Uint8Array;
}

/** The write vectors of one batch (SG-1), in output order (GRO-O1). */
export interface WriteList {
  /** One vector per writev: `[vnet header, head packet, fragment, ...]`. */
  writes: Uint8Array[][];
  /** Input packets carried by each write (1 = written as is), D-6. */
  packetCounts: number[];
}

/** Cumulative counters of a {@link Coalescer}. */
export interface CoalescerStats {
  /** Packets passed to `coalesce`. */
  packets: number;
  /** Write vectors produced. */
  writes: number;
  /** Writes carrying more than one packet (GRO-A2/A3 headers). */
  coalescedWrites: number;
  /** Packets inside those writes (heads included). */
  coalescedPackets: number;
  /** Transport checksum validations that failed (GRO-T4, GRO-U3). */
  checksumFailures: number;
}

// Item kinds (per write).
const NOOP = 0;
const TCP = 1;
const UDP = 2;
// Item flag bits.
const F_PSH = 1; // item.psh (GRO-S1, GRO-T6)
const F_HEAD_VALID = 2; // head checksum already verified (a cache; CK-4 is pure)
const F_CSUM_INVALID = 4; // UDP csumKnownInvalid (GRO-U3)
// GRO-T5 results.
const UNAVAILABLE = 0;
const APPEND = 1;
const PREPEND = 2;

const TCP_FLAGS_ACK = 0x10;
const TCP_FLAGS_ACK_PSH = 0x18;
const TCP_PSH = 0x08;
// Head bytes saved for uncoalesced(): IP header up to and including the IPv4
// checksum (covers the IPv6 payload length), and the transport header up to
// and including the TCP checksum (UDP: its 8 bytes).
const SAVE_IP = 12;
const SAVE_TH = 18;
const SAVE = SAVE_IP + SAVE_TH;
/** vnet header buffers are allocated in blocks of this many. */
const HEADER_BLOCK = 128;
// Item slots (see Coalescer#items).
const STRIDE = 12;
const I_KIND = 0;
const I_FLAGS = 1;
const I_IPH = 2;
const I_THLEN = 3;
const I_HEAD = 4; // input index of the head packet
const I_LAST = 5; // input index of the last packet in vector order
const I_COUNT = 6; // packets in the write
const I_OLDER = 7; // next older item of the same flow, -1 = none
const I_SEQ = 8; // TCP sequence number of the head, as int32
const I_PAYLOAD = 9; // item.payloadLen
const I_GSO = 10; // item.gsoSize

/**
 * GRO-IP1: may p join an item headed by h? Both are candidates of one flow,
 * hence of one IP version, and longer than 9 bytes.
 */
function ipHeadersCompatible(p: Uint8Array, h: Uint8Array, v6: boolean): boolean {
  if (v6) {
    // Version + traffic class; the flow label is ignored; hop limit.
    return p[0] === h[0] && p[1]! >> 4 === h[1]! >> 4 && p[7] === h[7];
  }
  // TOS; reserved/DF/MF bits; TTL. IP ID and checksum are ignored.
  return p[1] === h[1] && p[6]! >> 5 === h[6]! >> 5 && p[8] === h[8];
}

/**
 * The IP-layer checks GRO-T1 and GRO-U1 share: at most 65535 bytes, the IP
 * length field consistent with the packet (IPv4 total length, IPv6 payload
 * length), and for IPv4 neither MF nor a fragment offset.
 */
function ipLayerMergeable(p: Uint8Array, len: number, iph: number): boolean {
  if (len > GRO_MAX_PACKET) return false;
  if (iph === 40) return u16(p, 4) === len - 40;
  // MF (0x20) or a fragment offset (low 5 bits of byte 6, byte 7).
  return u16(p, 2) === len && (p[6]! & 0x3f) === 0 && p[7] === 0;
}

function u16(p: Uint8Array, at: number): number {
  return (p[at]! << 8) | p[at + 1]!;
}

function setU16(p: Uint8Array, at: number, v: number): void {
  p[at] = v >>> 8;
  p[at + 1] = v & 0xff;
}

function setU16LE(p: Uint8Array, at: number, v: number): void {
  p[at] = v & 0xff;
  p[at + 1] = v >>> 8;
}

/** Builds a coalescer whose output owns fresh arrays and headers (for {@link coalesce}). */
let freshCoalescer: (options: CoalescerOptions) => Coalescer;

/**
 * Coalesces batches of packets into scatter-gather write lists (WR-2).
 *
 * Reuses its flow tables, per-item arrays and vnet header buffers across
 * calls: a {@link WriteList} (its arrays and header buffers) is valid until the
 * next `coalesce` call on the same instance, and the instance keeps a
 * reference to the last batch until then (for {@link Coalescer.uncoalesced}).
 * Not reentrant.
 */
export class Coalescer {
  /** TCP GRO switch (DEV-6); read at each `coalesce` call. */
  tcp: boolean;
  /** UDP GRO switch (DEV-6, DEV-3 step 3); read at each `coalesce` call. */
  udp: boolean;
  /** Cumulative counters. */
  readonly stats: CoalescerStats = {
    packets: 0,
    writes: 0,
    coalescedWrites: 0,
    coalescedPackets: 0,
    checksumFailures: 0,
  };

  // Fresh mode (used by coalesce()): output arrays and headers are new per
  // call and no reference to the caller's packets is kept.
  #freshMode = false;
  readonly #tcpFlows = new FlowTable(true);
  readonly #udpFlows = new FlowTable(false);
  #packets: readonly Uint8Array[] = [];
  // CK-4 skips of the current call (CoalesceCallOptions.checksumsVerified).
  #verifiedAll = false;
  #verified: Uint8Array | undefined;
  #writeCount = 0;
  #cap = 0;

  // Per write (= per item; GRO-S1), indexed by output position (GRO-O1):
  // STRIDE int32 slots at w * STRIDE (one array keeps the hot loop to one
  // bounds-checked base instead of a dozen typed arrays).
  #items = new Int32Array(0);
  #saved = new Uint8Array(0);
  #restored = new Uint8Array(0);
  #dirty = new Uint8Array(0); // header buffer holds a GRO-A2/A3 header
  #headers: Uint8Array[] = [];
  // Per input packet: next packet of the same write, in vector order.
  #next = new Int32Array(0);
  // Per input packet: 1 when we set its PSH bit (GRO-T6 append, D-2), for
  // uncoalesced(); `#pshSetOn` lists them so the marks are cleared cheaply.
  #pshMark = new Uint8Array(0);
  #pshSetOn: number[] = [];
  #list: WriteList = { writes: [], packetCounts: [] };

  constructor(options?: CoalescerOptions) {
    this.tcp = options?.tcp ?? true;
    this.udp = options?.udp ?? false;
  }

  static {
    freshCoalescer = (options) => {
      const c = new Coalescer(options);
      c.#freshMode = true;
      return c;
    };
  }

  /**
   * Runs GRO over one batch (sec. 5) and returns its write vectors in output
   * order. Every packet appears in exactly one write. Head packets are
   * rewritten in place (see the module notes); fragments are views.
   * `options.checksumsVerified` skips CK-4 where the caller vouches for it;
   * for packets whose checksums do verify, the output is the same either way.
   */
  coalesce(packets: readonly Uint8Array[], options?: CoalesceCallOptions): WriteList {
    const n = packets.length;
    this.#prepare(n);
    this.#packets = packets;
    const verified = options?.checksumsVerified;
    this.#verifiedAll = verified === true;
    this.#verified = verified instanceof Uint8Array ? verified : undefined;
    const tcpOn = this.tcp;
    const udpOn = this.udp;
    for (let i = 0; i < n; i++) {
      const p = packets[i]!;
      const len = p.length;
      // GRO-C2 (first match wins); D-9: an empty packet is a non-candidate.
      if (len >= 28) {
        const version = p[0]! >> 4;
        if (version === 4) {
          if ((p[0]! & 0x0f) === 5) {
            const proto = p[9];
            if (proto === 6) {
              if (len >= 40 && tcpOn) {
                this.#tcpPacket(p, i, 20);
                continue;
              }
            } else if (proto === 17 && udpOn) {
              this.#udpPacket(p, i, 20);
              continue;
            }
          }
        } else if (version === 6) {
          const next = p[6];
          if (next === 6) {
            if (len >= 60 && tcpOn) {
              this.#tcpPacket(p, i, 40);
              continue;
            }
          } else if (next === 17 && len >= 48 && udpOn) {
            this.#udpPacket(p, i, 40);
            continue;
          }
        }
      }
      this.#noop(i);
    }
    this.#verified = undefined; // keep no reference to the caller's flags
    return this.#account();
  }

  /**
   * Restores the head of write `write` of the last batch to its original
   * bytes and returns that write's original packets in vector order, for
   * resending them one by one (EINVAL fallback, style rule 3). Packets whose
   * PSH bit GRO set are restored too. Idempotent. Valid until the next
   * `coalesce` call.
   * @throws VectunError `ERR_INVALID_ARG` for an index outside the last batch.
   */
  uncoalesced(write: number): Uint8Array[] {
    if (!Number.isInteger(write) || write < 0 || write >= this.#writeCount || this.#freshMode) {
      throw new VectunError('ERR_INVALID_ARG', `write index ${write} is not in the last batch`);
    }
    const packets = this.#packets;
    const items = this.#items;
    const base = write * STRIDE;
    const head = items[base + I_HEAD]!;
    if (items[base + I_COUNT]! > 1 && this.#restored[write] === 0) {
      this.#restored[write] = 1;
      const h = packets[head]!;
      const th = items[base + I_IPH]!;
      const saved = this.#saved;
      const at = write * SAVE;
      for (let k = 0; k < SAVE_IP; k++) h[k] = saved[at + k]!;
      const thSave = items[base + I_KIND] === TCP ? SAVE_TH : 8;
      for (let k = 0; k < thSave; k++) h[th + k] = saved[at + SAVE_IP + k]!;
      // The saved bytes were taken after GRO set PSH: clear what we set.
      for (let i = head; i !== -1; i = this.#next[i]!) {
        if (this.#pshMark[i] !== 0) packets[i]![th + 13] = packets[i]![th + 13]! & ~TCP_PSH;
      }
    }
    const out: Uint8Array[] = [];
    for (let i = head; i !== -1; i = this.#next[i]!) out.push(packets[i]!);
    return out;
  }

  #prepare(n: number): void {
    if (n > this.#cap) {
      const cap = Math.max(n, 128, this.#cap * 2);
      this.#cap = cap;
      this.#items = new Int32Array(cap * STRIDE);
      this.#next = new Int32Array(cap);
      this.#pshMark = new Uint8Array(cap);
      this.#saved = new Uint8Array(cap * SAVE);
      this.#restored = new Uint8Array(cap);
      const dirty = new Uint8Array(cap);
      dirty.set(this.#dirty);
      this.#dirty = dirty;
    }
    this.#writeCount = 0;
    const set = this.#pshSetOn;
    for (let k = 0; k < set.length; k++) this.#pshMark[set[k]!] = 0;
    set.length = 0;
    this.#tcpFlows.reset(n);
    this.#udpFlows.reset(n);
  }

  /** GRO-C3: own write at the arrival position, all-zero header. */
  #noop(i: number): void {
    const base = this.#writeCount++ * STRIDE;
    const items = this.#items;
    items[base + I_KIND] = NOOP;
    items[base + I_HEAD] = i;
    items[base + I_LAST] = i;
    items[base + I_COUNT] = 1;
    this.#next[i] = -1;
  }

  /** GRO-S1: a new item for p, newest of its flow; its write is created now. */
  #newItem(
    flows: FlowTable,
    flow: number,
    kind: number,
    i: number,
    iph: number,
    thLen: number,
    seq: number,
    flags: number,
    gso: number,
  ): void {
    const w = this.#writeCount++;
    const base = w * STRIDE;
    const items = this.#items;
    items[base + I_KIND] = kind;
    items[base + I_FLAGS] = flags;
    items[base + I_IPH] = iph;
    items[base + I_THLEN] = thLen;
    items[base + I_HEAD] = i;
    items[base + I_LAST] = i;
    items[base + I_COUNT] = 1;
    items[base + I_OLDER] = flows.newest[flow]!;
    items[base + I_SEQ] = seq;
    items[base + I_PAYLOAD] = gso;
    items[base + I_GSO] = gso;
    this.#next[i] = -1;
    flows.newest[flow] = w;
  }

  /**
   * CK-4 with the flow's cached pseudo-header base (addresses + protocol):
   * the transport checksum verifies over p[iph:]. `i` is p's input index.
   */
  #checksumValid(p: Uint8Array, i: number, iph: number, pseudoBase: number): boolean {
    // The caller vouched for it (CoalesceCallOptions): CK-4 would pass.
    if (this.#verifiedAll || this.#verified?.[i] === 1) return true;
    let initial = pseudoBase + (p.length - iph);
    initial = (initial & 0xffff) + (initial >>> 16);
    initial = (initial & 0xffff) + (initial >>> 16);
    if (checksumSum(p, iph, p.length, initial) === 0xffff) return true;
    this.stats.checksumFailures++;
    return false;
  }

  /** GRO-T1..T6 for a TCP candidate; `iph` is 20 or 40. */
  #tcpPacket(p: Uint8Array, i: number, iph: number): void {
    const len = p.length;
    // GRO-T1: any failure makes p a no-op.
    if (!ipLayerMergeable(p, len, iph)) return this.#noop(i);
    const thLen = (p[iph + 12]! >> 4) * 4;
    if (thLen < 20 || len < iph + thLen) return this.#noop(i);
    const tcpFlags = p[iph + 13];
    if (tcpFlags !== TCP_FLAGS_ACK && tcpFlags !== TCP_FLAGS_ACK_PSH) return this.#noop(i);
    const gso = len - iph - thLen;
    if (gso === 0) return this.#noop(i);
    // GRO-T2 (seq as int32: all sequence arithmetic is mod 2^32 via | 0).
    const seq = (p[iph + 4]! << 24) | (p[iph + 5]! << 16) | (p[iph + 6]! << 8) | p[iph + 7]!;
    const psh = tcpFlags === TCP_FLAGS_ACK_PSH;
    const flows = this.#tcpFlows;
    const flow = flows.lookup(p, iph);
    const pseudoBase = flows.pseudoBase[flow]!;
    const items = this.#items;
    // GRO-T4: newest to oldest. `newer` tracks the link to rewrite on removal.
    let newer = -1;
    let w = flows.newest[flow]!;
    while (w !== -1) {
      const base = w * STRIDE;
      const older = items[base + I_OLDER]!;
      const can = this.#tcpCanCoalesce(p, iph, thLen, seq, psh, gso, base);
      if (can !== UNAVAILABLE) {
        // GRO-T6: the head is validated only while nothing was merged.
        if (items[base + I_COUNT] === 1 && (items[base + I_FLAGS]! & F_HEAD_VALID) === 0) {
          const head = items[base + I_HEAD]!;
          if (!this.#checksumValid(this.#packets[head]!, head, iph, pseudoBase)) {
            // GRO-T4: drop the item from the table; its write stays (GRO-A6).
            if (newer === -1) flows.newest[flow] = older;
            else items[newer * STRIDE + I_OLDER] = older;
            w = older;
            continue;
          }
          items[base + I_FLAGS] = items[base + I_FLAGS]! | F_HEAD_VALID;
        }
        // GRO-T4: p invalid => no-op, not added to the table.
        if (!this.#checksumValid(p, i, iph, pseudoBase)) return this.#noop(i);
        if (can === PREPEND) {
          // GRO-T6 prepend: p becomes the head; the old head's payload the first fragment.
          items[base + I_SEQ] = seq;
          this.#next[i] = items[base + I_HEAD]!;
          items[base + I_HEAD] = i;
          if ((items[base + I_FLAGS]! & F_PSH) !== 0) {
            // D-2: the new head keeps the PSH of the item (the reference drops it, PIT-5).
            p[iph + 13] = p[iph + 13]! | TCP_PSH;
            this.#markPsh(i);
          }
          items[base + I_GSO] = gso; // max(item.gsoSize, p.gsoSize): GRO-T5.6 ensures p's is not smaller
        } else {
          // GRO-T6 append: p's payload becomes the last fragment.
          this.#next[items[base + I_LAST]!] = i;
          this.#next[i] = -1;
          items[base + I_LAST] = i;
          if (psh) {
            items[base + I_FLAGS] = items[base + I_FLAGS]! | F_PSH;
            const head = items[base + I_HEAD]!;
            const h = this.#packets[head]!;
            h[iph + 13] = h[iph + 13]! | TCP_PSH; // GRO-T6: OR-ed into the head, in place
            this.#markPsh(head);
          }
          // gsoSize unchanged: GRO-T5.5 ensures p's is not larger.
        }
        items[base + I_PAYLOAD] = items[base + I_PAYLOAD]! + gso;
        items[base + I_COUNT] = items[base + I_COUNT]! + 1;
        return;
      }
      newer = w;
      w = older;
    }
    this.#newItem(flows, flow, TCP, i, iph, thLen, seq, psh ? F_PSH : 0, gso);
  }

  /** GRO-T5 against the item at `base`, checks in spec order. */
  #tcpCanCoalesce(
    p: Uint8Array,
    iph: number,
    thLen: number,
    seq: number,
    psh: boolean,
    gso: number,
    base: number,
  ): number {
    const items = this.#items;
    const count = items[base + I_COUNT]!;
    // GRO-T5.1 / GRO-L2: entries = header + packets.
    if (count + 1 >= GRO_MAX_VECTOR_ENTRIES) return UNAVAILABLE;
    // GRO-T5.2: equal header length and identical option bytes.
    if (thLen !== items[base + I_THLEN]) return UNAVAILABLE;
    const h = this.#packets[items[base + I_HEAD]!]!;
    if (thLen > 20) {
      const end = iph + thLen;
      for (let k = iph + 20; k < end; k++) if (p[k] !== h[k]) return UNAVAILABLE;
    }
    // GRO-T5.3.
    if (!ipHeadersCompatible(p, h, iph === 40)) return UNAVAILABLE;
    // GRO-T5.4 / GRO-L1.
    const payloadLen = items[base + I_PAYLOAD]!;
    if (iph + thLen + payloadLen + gso > GRO_MAX_PACKET) return UNAVAILABLE;
    const itemSeq = items[base + I_SEQ]!;
    const itemGso = items[base + I_GSO]!;
    // GRO-T5.5: append (sequence arithmetic mod 2^32).
    if (seq === ((itemSeq + payloadLen) | 0)) {
      if ((items[base + I_FLAGS]! & F_PSH) !== 0) return UNAVAILABLE;
      if (payloadLen % itemGso !== 0) return UNAVAILABLE; // a short segment ended the item
      if (gso > itemGso) return UNAVAILABLE;
      return APPEND;
    }
    // GRO-T5.6: prepend.
    if (((seq + gso) | 0) === itemSeq) {
      if (psh) return UNAVAILABLE;
      if (gso < itemGso) return UNAVAILABLE;
      if (gso > itemGso && count > 1) return UNAVAILABLE;
      return PREPEND;
    }
    return UNAVAILABLE; // GRO-T5.7
  }

  #markPsh(i: number): void {
    if (this.#pshMark[i] === 0) {
      this.#pshMark[i] = 1;
      this.#pshSetOn.push(i);
    }
  }

  /** GRO-U1..U4 for a UDP candidate; `iph` is 20 or 40. */
  #udpPacket(p: Uint8Array, i: number, iph: number): void {
    const len = p.length;
    // GRO-U1 (the UDP length field itself is never checked).
    if (!ipLayerMergeable(p, len, iph)) return this.#noop(i);
    const gso = len - iph - 8;
    if (gso <= 0) return this.#noop(i);
    const flows = this.#udpFlows;
    const flow = flows.lookup(p, iph);
    const w = flows.newest[flow]!;
    const pseudoBase = flows.pseudoBase[flow]!;
    // GRO-U2: only the newest item is considered (keeps datagram order).
    if (w !== -1) {
      const items = this.#items;
      const base = w * STRIDE;
      const count = items[base + I_COUNT]!;
      const payloadLen = items[base + I_PAYLOAD]!;
      const itemGso = items[base + I_GSO]!;
      const h = this.#packets[items[base + I_HEAD]!]!;
      if (
        count + 1 < GRO_MAX_VECTOR_ENTRIES &&
        ipHeadersCompatible(p, h, iph === 40) &&
        payloadLen % itemGso === 0 &&
        gso <= itemGso &&
        iph + 8 + payloadLen + gso <= GRO_MAX_PACKET
      ) {
        // GRO-U3.
        const flags = items[base + I_FLAGS]!;
        if (count === 1 && (flags & F_HEAD_VALID) === 0) {
          if ((flags & F_CSUM_INVALID) !== 0 || !this.#checksumValid(h, items[base + I_HEAD]!, iph, pseudoBase)) {
            // Item invalid: p starts a new item; the old one stays, never revisited.
            return this.#newItem(flows, flow, UDP, i, iph, 8, 0, 0, gso);
          }
          items[base + I_FLAGS] = flags | F_HEAD_VALID;
        }
        if (!this.#checksumValid(p, i, iph, pseudoBase)) {
          return this.#newItem(flows, flow, UDP, i, iph, 8, 0, F_CSUM_INVALID, gso);
        }
        this.#next[items[base + I_LAST]!] = i;
        this.#next[i] = -1;
        items[base + I_LAST] = i;
        items[base + I_PAYLOAD] = payloadLen + gso; // gsoSize never changes (GRO-U3)
        items[base + I_COUNT] = count + 1;
        return;
      }
    }
    // GRO-U2 (first item of the flow) or GRO-U4 (cannot coalesce).
    this.#newItem(flows, flow, UDP, i, iph, 8, 0, 0, gso);
  }

  /**
   * The 10-byte header buffer of write `w` (SG-1), reused across calls; zeroed
   * when `zero` (D-1, GRO-A6) and it held a GRO-A2/A3 header. Buffers are
   * views on shared off-heap blocks, so the addon can pass them to writev
   * without V8 moving them first.
   */
  #header(w: number, zero: boolean): Uint8Array {
    let hdr = this.#headers[w];
    if (hdr === undefined) {
      const block = HEADER_BLOCK * Math.floor(w / HEADER_BLOCK);
      const buffer = new ArrayBuffer(HEADER_BLOCK * VNET_HDR_LEN);
      for (let k = 0; k < HEADER_BLOCK; k++) this.#headers[block + k] = new Uint8Array(buffer, k * VNET_HDR_LEN, VNET_HDR_LEN);
      hdr = this.#headers[w]!;
    } else if (zero && this.#dirty[w] !== 0) {
      hdr.fill(0);
      this.#dirty[w] = 0;
    }
    return hdr;
  }

  /** GRO-A1..A6 ("accounting") and SG-1 vectors, in creation order (GRO-O1). */
  #account(): WriteList {
    const fresh = this.#freshMode;
    const list: WriteList = fresh ? { writes: [], packetCounts: [] } : this.#list;
    const writes = list.writes;
    const counts = list.packetCounts;
    writes.length = 0;
    counts.length = 0;
    const packets = this.#packets;
    const writeCount = this.#writeCount;
    let coalescedWrites = 0;
    let coalescedPackets = 0;
    // Fresh mode: one off-heap block for all headers of this call, zeroed by
    // allocation.
    const freshBlock = fresh ? new ArrayBuffer(writeCount * VNET_HDR_LEN) : undefined;
    const items = this.#items;
    const next = this.#next;
    for (let w = 0; w < writeCount; w++) {
      const base = w * STRIDE;
      const count = items[base + I_COUNT]!;
      const headIndex = items[base + I_HEAD]!;
      const head = packets[headIndex]!;
      const hdr =
        freshBlock !== undefined ? new Uint8Array(freshBlock, w * VNET_HDR_LEN, VNET_HDR_LEN) : this.#header(w, count === 1);
      if (count === 1) {
        // GRO-A1, GRO-A6: zero header, packet untouched. A new array per
        // write: cheaper in V8 than truncating a reused one.
        writes.push([hdr, head]);
      } else {
        coalescedWrites++;
        coalescedPackets += count;
        this.#rewriteHead(w, base, head, hdr);
        const hdrLen = items[base + I_IPH]! + items[base + I_THLEN]!;
        const vector = new Array<Uint8Array>(count + 1);
        vector[0] = hdr;
        vector[1] = head;
        let k = 2;
        for (let i = next[headIndex]!; i !== -1; i = next[i]!) {
          const p = packets[i]!;
          // subarray: the constructor form new Uint8Array(p.buffer, p.byteOffset + ...)
          // was no faster here (bench/forwarder.js), its getters cost what it saves.
          vector[k++] = p.subarray(hdrLen, p.length);
        }
        writes.push(vector);
      }
      counts.push(count);
    }
    const stats = this.stats;
    stats.packets += packets.length;
    stats.writes += writeCount;
    stats.coalescedWrites += coalescedWrites;
    stats.coalescedPackets += coalescedPackets;
    if (fresh) {
      // Keep no reference to the caller's packets.
      this.#packets = [];
    }
    return list;
  }

  /** GRO-A2 (TCP) / GRO-A3 (UDP): rewrite the head in place and fill its header. */
  #rewriteHead(w: number, base: number, h: Uint8Array, hdr: Uint8Array): void {
    const items = this.#items;
    const iph = items[base + I_IPH]!;
    const tcp = items[base + I_KIND] === TCP;
    const thLen = items[base + I_THLEN]!;
    const payloadLen = items[base + I_PAYLOAD]!;
    const total = iph + thLen + payloadLen;
    if (!this.#freshMode) {
      this.#restored[w] = 0;
      const saved = this.#saved;
      const at = w * SAVE;
      for (let k = 0; k < SAVE_IP; k++) saved[at + k] = h[k]!;
      const thSave = tcp ? SAVE_TH : 8;
      for (let k = 0; k < thSave; k++) saved[at + SAVE_IP + k] = h[iph + k]!;
      this.#dirty[w] = 1;
    }
    if (iph === 20) {
      setU16(h, 2, total);
      writeIPv4HeaderChecksum(h, 20); // CK-5
    } else {
      setU16(h, 4, total - 40);
    }
    const proto = tcp ? 6 : 17;
    if (!tcp) setU16(h, iph + 4, 8 + payloadLen); // GRO-A3: UDP length
    // Partial checksum: folded pseudo-header sum, not inverted (CK-3).
    const csumAt = iph + (tcp ? 16 : 6);
    setU16(h, csumAt, pseudoHeaderSumFor(h, proto, total - iph));
    hdr[0] = 1; // NEEDS_CSUM
    hdr[1] = tcp ? (iph === 20 ? 1 : 4) : 5; // TCPV4, TCPV6, UDP_L4
    setU16LE(hdr, 2, iph + thLen);
    setU16LE(hdr, 4, items[base + I_GSO]!);
    setU16LE(hdr, 6, iph);
    setU16LE(hdr, 8, tcp ? 16 : 6);
  }
}

const shared = { tcp: freshCoalescer({ tcp: true, udp: false }), udp: freshCoalescer({ tcp: true, udp: true }) };

/**
 * Coalesces `packets` into write vectors, one per writev, in write order
 * (GRO-O1): the one-shot form. For a stream of batches, {@link Coalescer} is
 * the fast form: it recycles its write lists and header buffers (valid until
 * its next call) and can skip checksums the caller vouches for. Here every
 * call returns new arrays and header buffers that stay valid while held. Concatenating a vector gives the exact frame for the TUN:
 * `[10-byte virtio header, head packet, payload fragment, ...]` (SG-1).
 * Every input packet is carried exactly once; fragments are views on the
 * input (no payload copy); head packets are rewritten in place (GRO-A4,
 * PIT-2). `udp` (default false) allows UDP GRO. Never throws for malformed
 * packets: they pass through with an all-zero header.
 */
export function coalesce(packets: readonly Uint8Array[], options?: { udp?: boolean }): Uint8Array[][] {
  return (options?.udp === true ? shared.udp : shared.tcp).coalesce(packets).writes;
}
