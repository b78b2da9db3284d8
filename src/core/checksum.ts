/**
 * Internet checksum primitives (spec sec. 1.1: CK-1 .. CK-5).
 *
 * All sums are 16-bit one's-complement values in the big-endian domain,
 * folded and NOT inverted; callers invert when they store a full checksum.
 *
 * Speed: long runs go to the WebAssembly SIMD loop (checksum.wat). A packet
 * inside an {@link Arena} is summed in place; any other packet is first copied
 * into a scratch arena, which is still several times faster than the best
 * JavaScript loop for more than a few dozen bytes. Short runs (headers) are
 * summed in JavaScript, where a call would cost more.
 *
 * Per-call cost on Node 20 (1468-byte packet, micro-benchmark on an EPYC): the
 * WebAssembly loop ~30 ns, the JS-to-WebAssembly call ~8 ns, and the
 * `view.buffer` and `view.byteOffset` getters ~18 and ~12 ns: V8 11 does not
 * inline them, so a view-based API cannot go below ~60 ns. {@link Arena.sum}
 * takes absolute offsets and skips both getters.
 * @module
 */
import { Arena, arenaOf, type WasmSum } from './arena.js';

/** Below this many bytes JavaScript beats a copy plus a WebAssembly call. */
const SHORT_RUN = 64;
/** Scratch space for packets outside any arena: one maximal frame. */
const SCRATCH_BYTES = 65536 + 64;

let scratch: Arena | undefined;
// Two-entry cache of arena buffers: consecutive sums nearly always hit the
// buffer of the previous call, and the device alternates between two arenas
// (read frames, split output). Holds the last two arenas alive, which are
// long-lived anyway.
let lastBuffer: ArrayBufferLike | undefined;
let lastSum: WasmSum | undefined;
let prevBuffer: ArrayBufferLike | undefined;
let prevSum: WasmSum | undefined;

/** Folds a 32-bit-or-wider sum to 16 bits with end-around carry. */
export function fold(sum: number): number {
  sum = (sum & 0xffff) + Math.floor(sum / 65536);
  sum = (sum & 0xffff) + (sum >>> 16);
  return (sum & 0xffff) + (sum >>> 16);
}

function sumShort(data: Uint8Array, start: number, end: number, initial: number): number {
  let s = initial;
  const last = end - 1;
  let i = start;
  for (; i < last; i += 2) s += (data[i]! << 8) | data[i + 1]!;
  if (i < end) s += data[i]! << 8;
  return fold(s);
}

/**
 * CK-1: one's-complement sum of `data[start:end]` as big-endian words, plus
 * `initial`, folded to 16 bits, not inverted.
 *
 * Hot path (called once per packet in GRO batches): a view on the arena of
 * the previous call costs one `.buffer` comparison on top of the WebAssembly
 * call (the arena before that, two). Code that knows its arena and offsets
 * can call {@link Arena.sum} directly and skip even that.
 */
export function checksumSum(data: Uint8Array, start: number, end: number, initial: number): number {
  const buffer = data.buffer;
  if (buffer === lastBuffer) return lastSum!(data.byteOffset + start, end - start, initial);
  return checksumSumSlow(data, buffer, start, end, initial);
}

function checksumSumSlow(
  data: Uint8Array,
  buffer: ArrayBufferLike,
  start: number,
  end: number,
  initial: number,
): number {
  const n = end - start;
  if (buffer === prevBuffer) {
    const s = prevSum!;
    prevBuffer = lastBuffer;
    prevSum = lastSum;
    lastBuffer = buffer;
    lastSum = s;
    return s(data.byteOffset + start, n, initial);
  }
  // Arena memory is whole 64 KiB WebAssembly pages: a packet's own buffer
  // (the usual plain Uint8Array) skips the WeakMap lookup.
  const bufferLength = buffer.byteLength;
  const arena = bufferLength >= 65536 && (bufferLength & 0xffff) === 0 ? arenaOf(buffer) : undefined;
  if (arena !== undefined) {
    prevBuffer = lastBuffer;
    prevSum = lastSum;
    lastBuffer = buffer;
    lastSum = arena.sum;
    return arena.sum(data.byteOffset + start, n, initial);
  }
  if (n < SHORT_RUN) return sumShort(data, start, end, initial);
  scratch ??= new Arena(SCRATCH_BYTES);
  const bytes = scratch.bytes;
  // Copying the whole view avoids allocating a sub-view per call (~25 ns);
  // worth it when the run is most of the view, as for transport checksums.
  if (data.length <= SCRATCH_BYTES && data.length - n <= 256) {
    bytes.set(data);
    return scratch.sum(start, n, initial);
  }
  let s = initial;
  // Chunks keep odd offsets word-aligned: every chunk but the last is even.
  for (let at = start; at < end; at += SCRATCH_BYTES) {
    const len = Math.min(SCRATCH_BYTES, end - at);
    bytes.set(new Uint8Array(buffer, data.byteOffset + at, len));
    s = scratch.sum(0, len, s);
  }
  return s;
}

/** CK-1 over a whole view. */
export function sum(data: Uint8Array, initial = 0): number {
  return checksumSum(data, 0, data.length, initial);
}

/**
 * CK-2: pseudo-header sum for `proto` (6 TCP, 17 UDP) over the addresses at
 * `addrStart` (IPv4: 12, IPv6: 8) of length `addrLen` (8 or 32 bytes: source
 * then destination), and the transport length `len`.
 */
export function pseudoHeaderSum(
  packet: Uint8Array,
  addrStart: number,
  addrLen: number,
  proto: number,
  len: number,
): number {
  let s = proto + len;
  const end = addrStart + addrLen;
  for (let i = addrStart; i < end; i += 2) s += (packet[i]! << 8) | packet[i + 1]!;
  return fold(s);
}

/** CK-2 for an IP packet of either version, addresses read from the packet itself. */
export function pseudoHeaderSumFor(packet: Uint8Array, proto: number, len: number): number {
  return packet[0]! >> 4 === 4
    ? pseudoHeaderSum(packet, 12, 8, proto, len)
    : pseudoHeaderSum(packet, 8, 32, proto, len);
}

/**
 * CK-4: does the transport checksum of `packet` verify over
 * `packet[iphLen:]` with the pseudo-header for `proto`?
 */
export function transportChecksumValid(packet: Uint8Array, iphLen: number, proto: number): boolean {
  const len = packet.length - iphLen;
  const s = checksumSum(packet, iphLen, packet.length, pseudoHeaderSumFor(packet, proto, len));
  return (~s & 0xffff) === 0;
}

/**
 * Repairs an IPv6 UDP checksum that a sender's completion left at 0x0000.
 *
 * A completed checksum of 0 must be sent as 0xFFFF (RFC 768: 0 means "no
 * checksum"); a sender that stores it as is (wireguard-go's completion of
 * NEEDS_CSUM packets does, about 1 UDP packet in 65,536) makes a packet that
 * IPv6 receivers must drop (RFC 8200 sec. 8.1; Linux counts it in
 * Udp6InCsumErrors). When `packet` is IPv6 with UDP as next header, its
 * checksum field is 0 and its bytes verify (CK-4) as they would with 0xFFFF,
 * the field becomes 0xFFFF, the same value in ones' complement, and the
 * result is true. Any other packet is left alone: false. A genuinely
 * unchecksummed datagram does not verify, except by chance, and then 0xFFFF
 * is its correct checksum.
 */
export function repairZeroUdp6Checksum(packet: Uint8Array): boolean {
  if (packet.length < 48 || packet[0]! >> 4 !== 6 || packet[6] !== 17 || packet[46] !== 0 || packet[47] !== 0) return false;
  if (40 + ((packet[4]! << 8) | packet[5]!) !== packet.length || !transportChecksumValid(packet, 40, 17)) return false;
  packet[46] = 0xff;
  packet[47] = 0xff;
  return true;
}

/** CK-5: store the IPv4 header checksum of `packet[0:iphLen]`. */
export function writeIPv4HeaderChecksum(packet: Uint8Array, iphLen = 20): void {
  packet[10] = 0;
  packet[11] = 0;
  const c = ~sumShort(packet, 0, iphLen, 0) & 0xffff;
  packet[10] = c >> 8;
  packet[11] = c & 0xff;
}
