/**
 * Cryptokey routing (whitepaper §2): the AllowedIPs table mapping IPv4 and
 * IPv6 prefixes to peers. A path-compressed binary trie per family, keyed by
 * the address as big-endian 32-bit words; the lookup by a packet's
 * destination (send path) or source (the receive path's check, §2) reads
 * the address straight from the packet bytes and allocates nothing.
 *
 * Semantics as wireguard-go's AllowedIPs: inserting a prefix that exists
 * moves it to the new peer; prefixes are stored with host bits masked;
 * a peer's entries are listed in canonical form (`198.18.0.0/24`,
 * `2001:2::/48`), in insertion order.
 * @module
 */
import { VectunError } from '../errors.js';
import { parseCidr } from '../device/rtnetlink.js';
import { formatIPv4, formatIPv6 } from '../net/ip.js';

class TrieNode<P> {
  /** Masked key as big-endian words (1 for IPv4, 4 for IPv6). */
  readonly key: Uint32Array;
  readonly cidr: number;
  peer: P | null;
  zero: TrieNode<P> | null = null;
  one: TrieNode<P> | null = null;
  parent: TrieNode<P> | null = null;

  /** The key words as plain numbers too: the lookup loop reads these (faster than typed-array loads). */
  readonly k0: number;
  readonly k1: number;
  readonly k2: number;
  readonly k3: number;

  constructor(key: Uint32Array, cidr: number, peer: P | null) {
    this.key = key;
    this.cidr = cidr;
    this.peer = peer;
    this.k0 = key[0]!;
    this.k1 = key.length > 1 ? key[1]! : 0;
    this.k2 = key.length > 1 ? key[2]! : 0;
    this.k3 = key.length > 1 ? key[3]! : 0;
  }
}

function bitAt(words: ArrayLike<number>, bit: number): number {
  return (words[bit >>> 5]! >>> (31 - (bit & 31))) & 1;
}

/** Length of the common prefix of two keys, up to `max` bits. */
function commonBits(a: ArrayLike<number>, b: ArrayLike<number>, max: number): number {
  const words = (max + 31) >>> 5;
  for (let i = 0; i < words; i++) {
    const x = (a[i]! ^ b[i]!) >>> 0;
    if (x !== 0) return Math.min(max, i * 32 + Math.clz32(x));
  }
  return max;
}

/** True if the first `cidr` bits of the node's key equal those of the address words. */
function matches6<P>(n: TrieNode<P>, cidr: number, w0: number, w1: number, w2: number, w3: number): boolean {
  if (cidr >= 32) {
    if (n.k0 !== w0) return false;
    if (cidr >= 64) {
      if (n.k1 !== w1) return false;
      if (cidr >= 96) {
        if (n.k2 !== w2) return false;
        return cidr === 128 || ((n.k3 ^ w3) >>> (128 - cidr)) === 0;
      }
      return cidr === 64 || ((n.k2 ^ w2) >>> (96 - cidr)) === 0;
    }
    return cidr === 32 || ((n.k1 ^ w1) >>> (64 - cidr)) === 0;
  }
  return cidr === 0 || ((n.k0 ^ w0) >>> (32 - cidr)) === 0;
}

function readBE32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

function maskedKey(bytes: Uint8Array, cidr: number): Uint32Array {
  const words = new Uint32Array(bytes.length / 4);
  for (let i = 0; i < words.length; i++) {
    words[i] = ((bytes[4 * i]! << 24) | (bytes[4 * i + 1]! << 16) | (bytes[4 * i + 2]! << 8) | bytes[4 * i + 3]!) >>> 0;
  }
  for (let i = 0; i < words.length; i++) {
    const keep = Math.max(0, Math.min(32, cidr - i * 32));
    words[i] = keep === 0 ? 0 : keep === 32 ? words[i]! : (words[i]! & ((0xffffffff << (32 - keep)) >>> 0)) >>> 0;
  }
  return words;
}

function formatKey(key: Uint32Array, cidr: number): string {
  const bytes = wordsToBytes(key);
  // IPv4-mapped addresses print their IPv4 tail, as Go's netip does.
  const text = key.length === 1 ? formatIPv4(bytes) : formatIPv6(bytes, { mappedAsDottedQuad: true });
  return `${text}/${cidr}`;
}

/** A parsed, masked prefix. */
export interface AllowedIp {
  /** 4 or 6. */
  family: 4 | 6;
  /** The network address, host bits zero (4 or 16 bytes). */
  address: Uint8Array;
  /** Prefix length. */
  cidr: number;
}

/**
 * Parses a CIDR (`198.18.0.1/24`, `2001:2::/48`; no prefix: a host route)
 * and masks its host bits.
 * @throws VectunError `ERR_INVALID_ARG`.
 */
export function parseAllowedIp(text: string): AllowedIp {
  const c = parseCidr(text, 'allowed IP');
  return { family: c.family, address: wordsToBytes(maskedKey(c.bytes, c.prefix)), cidr: c.prefix };
}

/** The canonical text of a prefix, host bits masked (as `wg show` prints it). @throws VectunError `ERR_INVALID_ARG`. */
export function canonicalCidr(text: string): string {
  const c = parseCidr(text, 'allowed IP');
  return formatKey(maskedKey(c.bytes, c.prefix), c.prefix);
}

/** The AllowedIPs table: prefixes of both families → peers. */
export class AllowedIps<P> {
  private root4: TrieNode<P> | null = null;
  private root6: TrieNode<P> | null = null;
  private readonly byPeer = new Map<P, Set<TrieNode<P>>>();

  /** Inserts (or moves to `peer`) the prefix `cidr`. @throws VectunError `ERR_INVALID_ARG` for a bad CIDR. */
  insert(cidr: string, peer: P): void {
    const c = parseCidr(cidr, 'allowed IP');
    this.insertBytes(c.bytes, c.prefix, peer);
  }

  /** {@link insert} with the address as 4 or 16 bytes. */
  insertBytes(address: Uint8Array, cidr: number, peer: P): void {
    const max = address.length * 8;
    if ((address.length !== 4 && address.length !== 16) || !Number.isInteger(cidr) || cidr < 0 || cidr > max) {
      throw new VectunError('ERR_INVALID_ARG', `allowed IP needs 4 or 16 address bytes and a prefix of 0..${max}`);
    }
    const key = maskedKey(address, cidr);
    const v4 = address.length === 4;
    const root = v4 ? this.root4 : this.root6;
    if (root === null) {
      const n = this.attach(new TrieNode(key, cidr, peer));
      if (v4) this.root4 = n;
      else this.root6 = n;
      return;
    }
    let node: TrieNode<P> = root;
    for (;;) {
      const common = Math.min(commonBits(node.key, key, max), node.cidr, cidr);
      if (common === node.cidr && common === cidr) {
        this.setPeer(node, peer);
        return;
      }
      if (common === node.cidr) {
        // node is a prefix of the new one: descend.
        const bit = bitAt(key, node.cidr);
        const child: TrieNode<P> | null = bit === 0 ? node.zero : node.one;
        if (child === null) {
          const n = this.attach(new TrieNode(key, cidr, peer));
          n.parent = node;
          if (bit === 0) node.zero = n;
          else node.one = n;
          return;
        }
        node = child;
        continue;
      }
      if (common === cidr) {
        // The new prefix contains node: it goes above it.
        const n = this.attach(new TrieNode(key, cidr, peer));
        this.replace(node, n, v4);
        this.setChild(n, bitAt(node.key, cidr), node);
        return;
      }
      // They diverge below both: a branch node without peer.
      const branch = new TrieNode<P>(maskedKey(wordsToBytes(key), common), common, null);
      const n = this.attach(new TrieNode(key, cidr, peer));
      this.replace(node, branch, v4);
      this.setChild(branch, bitAt(node.key, common), node);
      this.setChild(branch, bitAt(key, common), n);
      return;
    }
  }

  /** Removes `cidr` if it belongs to `peer` (UAPI `allowed_ip=-...`). True if removed. @throws VectunError `ERR_INVALID_ARG`. */
  remove(cidr: string, peer: P): boolean {
    const c = parseCidr(cidr, 'allowed IP');
    const key = maskedKey(c.bytes, c.prefix);
    const set = this.byPeer.get(peer);
    if (set === undefined) return false;
    for (const n of set) {
      if (n.cidr === c.prefix && n.key.length === key.length && commonBits(n.key, key, key.length * 32) === key.length * 32) {
        this.detach(n);
        return true;
      }
    }
    return false;
  }

  /** Removes every prefix of `peer`. */
  removeByPeer(peer: P): void {
    const set = this.byPeer.get(peer);
    if (set === undefined) return;
    for (const n of [...set]) this.detach(n);
    this.byPeer.delete(peer);
  }

  /** The peer's prefixes in canonical CIDR form, in insertion order. */
  entriesForPeer(peer: P): string[] {
    const set = this.byPeer.get(peer);
    return set === undefined ? [] : [...set].map((n) => formatKey(n.key, n.cidr));
  }

  /** Number of prefixes in the table. */
  get size(): number {
    let n = 0;
    for (const s of this.byPeer.values()) n += s.size;
    return n;
  }

  /** Longest-prefix match for an address given as 4 or 16 bytes starting at `offset` of `bytes`; `null` if none. */
  lookupBytes(bytes: Uint8Array, offset: number, length: 4 | 16): P | null {
    if (offset < 0 || offset + length > bytes.length) return null;
    const a0 = readBE32(bytes, offset);
    if (length === 4) return this.lookup4(a0);
    return this.lookup6(a0, readBE32(bytes, offset + 4), readBE32(bytes, offset + 8), readBE32(bytes, offset + 12));
  }

  /** Longest-prefix match for an IPv4 address as an unsigned 32-bit number. */
  lookup4(address: number): P | null {
    let node = this.root4;
    let best: P | null = null;
    while (node !== null) {
      const c = node.cidr;
      // A shift by 32 is a shift by 0 in JavaScript: cidr 0 matches everything.
      if (c !== 0 && ((node.k0 ^ address) >>> (32 - c)) !== 0) break;
      if (node.peer !== null) best = node.peer;
      if (c === 32) break;
      node = ((address >>> (31 - c)) & 1) === 0 ? node.zero : node.one;
    }
    return best;
  }

  /** Longest-prefix match for an IPv6 address as four big-endian 32-bit words. */
  lookup6(w0: number, w1: number, w2: number, w3: number): P | null {
    let node = this.root6;
    let best: P | null = null;
    while (node !== null) {
      const c = node.cidr;
      if (!matches6(node, c, w0, w1, w2, w3)) break;
      if (node.peer !== null) best = node.peer;
      if (c === 128) break;
      const word = c < 64 ? (c < 32 ? w0 : w1) : c < 96 ? w2 : w3;
      node = ((word >>> (31 - (c & 31))) & 1) === 0 ? node.zero : node.one;
    }
    return best;
  }

  /** The peer for an IP packet's destination (send path); `null` for no match or a packet too short for its version. */
  lookupDestination(packet: Uint8Array, offset = 0): P | null {
    const version = packet[offset]! >>> 4;
    if (version === 4) return packet.length - offset >= 20 ? this.lookupBytes(packet, offset + 16, 4) : null;
    if (version === 6) return packet.length - offset >= 40 ? this.lookupBytes(packet, offset + 24, 16) : null;
    return null;
  }

  /** The peer for an IP packet's source (the receive check, §2); `null` for no match or a packet too short. */
  lookupSource(packet: Uint8Array, offset = 0): P | null {
    const version = packet[offset]! >>> 4;
    if (version === 4) return packet.length - offset >= 20 ? this.lookupBytes(packet, offset + 12, 4) : null;
    if (version === 6) return packet.length - offset >= 40 ? this.lookupBytes(packet, offset + 8, 16) : null;
    return null;
  }

  /** Empties the table. */
  clear(): void {
    this.root4 = this.root6 = null;
    this.byPeer.clear();
  }

  private attach(n: TrieNode<P>): TrieNode<P> {
    if (n.peer !== null) this.addToPeer(n, n.peer);
    return n;
  }

  private addToPeer(n: TrieNode<P>, peer: P): void {
    let set = this.byPeer.get(peer);
    if (set === undefined) this.byPeer.set(peer, (set = new Set()));
    set.add(n);
  }

  /** Re-inserting a prefix moves it to the end of its peer's list, even for the same peer (wireguard-go). */
  private setPeer(n: TrieNode<P>, peer: P): void {
    if (n.peer !== null) {
      const set = this.byPeer.get(n.peer);
      set?.delete(n);
      if (set !== undefined && set.size === 0 && n.peer !== peer) this.byPeer.delete(n.peer);
    }
    n.peer = peer;
    this.addToPeer(n, peer);
  }

  private setChild(parent: TrieNode<P>, bit: number, child: TrieNode<P>): void {
    if (bit === 0) parent.zero = child;
    else parent.one = child;
    child.parent = parent;
  }

  /** Puts `replacement` where `old` hangs (its parent's slot or the root). */
  private replace(old: TrieNode<P>, replacement: TrieNode<P> | null, v4: boolean): void {
    const parent = old.parent;
    if (replacement !== null) replacement.parent = parent;
    if (parent === null) {
      if (v4) this.root4 = replacement;
      else this.root6 = replacement;
    } else if (parent.zero === old) parent.zero = replacement;
    else parent.one = replacement;
    old.parent = null;
  }

  /** Clears a node's peer and removes nodes that no longer route or branch. */
  private detach(n: TrieNode<P>): void {
    if (n.peer !== null) {
      const set = this.byPeer.get(n.peer);
      set?.delete(n);
      if (set !== undefined && set.size === 0) this.byPeer.delete(n.peer);
    }
    n.peer = null;
    const v4 = n.key.length === 1;
    let node: TrieNode<P> | null = n;
    while (node !== null && node.peer === null) {
      const parent: TrieNode<P> | null = node.parent;
      if (node.zero !== null && node.one !== null) break;
      this.replace(node, node.zero ?? node.one, v4);
      node = parent;
    }
  }
}

function wordsToBytes(words: Uint32Array): Uint8Array {
  const out = new Uint8Array(words.length * 4);
  words.forEach((w, i) => {
    out[4 * i] = w >>> 24;
    out[4 * i + 1] = (w >>> 16) & 0xff;
    out[4 * i + 2] = (w >>> 8) & 0xff;
    out[4 * i + 3] = w & 0xff;
  });
  return out;
}
