/**
 * Test packet builders: IPv4/IPv6 with TCP/UDP, valid checksums by default.
 * Addresses are the spec's test vectors (sec. 7) unless a test passes others.
 */
import { checksumSum, pseudoHeaderSumFor, writeIPv4HeaderChecksum } from '../../src/core/checksum.js';
import { VNET_HDR_LEN, encodeVirtioNetHeader, type VirtioNetHeader } from '../../src/core/virtio.js';

export const TCP_ACK = 0x10;
export const TCP_PSH = 0x08;
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

/** Spec test hosts: A, B, C (sec. 7). */
export const V4 = { A: [192, 0, 2, 1], B: [192, 0, 2, 2], C: [192, 0, 2, 3] } as const;
export const V6 = {
  A: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
  B: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
  C: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3],
} as const;

export interface PacketOptions {
  /** 4 or 6. */
  version: 4 | 6;
  proto: 'tcp' | 'udp';
  src: readonly number[];
  dst: readonly number[];
  srcPort?: number;
  dstPort?: number;
  /** Payload length (filled with a pattern derived from `seq`/`fill`) or bytes. */
  payload: number | Uint8Array;
  seq?: number;
  ack?: number;
  /** TCP flags byte; default ACK. */
  flags?: number;
  window?: number;
  /** TCP option bytes (length multiple of 4, ≤ 40). */
  options?: Uint8Array;
  ttl?: number;
  /** IPv4 TOS or IPv6 traffic class. */
  tos?: number;
  ipId?: number;
  /** IPv4 flags+fragment offset 16-bit field (default DF = 0x4000). */
  fragField?: number;
  flowLabel?: number;
  /** Byte used to fill a numeric payload; default derived from seq. */
  fill?: number;
}

/** Builds one packet with valid IP and transport checksums. */
export function buildPacket(o: PacketOptions): Uint8Array {
  const iphLen = o.version === 4 ? 20 : 40;
  const optLen = o.options?.length ?? 0;
  const thLen = o.proto === 'tcp' ? 20 + optLen : 8;
  const payload =
    typeof o.payload === 'number' ? patternPayload(o.payload, o.fill ?? ((o.seq ?? 0) & 0xff)) : o.payload;
  const total = iphLen + thLen + payload.length;
  const p = new Uint8Array(total);
  const dv = new DataView(p.buffer);
  const protoNum = o.proto === 'tcp' ? 6 : 17;
  if (o.version === 4) {
    p[0] = 0x45;
    p[1] = o.tos ?? 0;
    dv.setUint16(2, total);
    dv.setUint16(4, o.ipId ?? 0x1234);
    dv.setUint16(6, o.fragField ?? 0x4000);
    p[8] = o.ttl ?? 64;
    p[9] = protoNum;
    p.set(o.src, 12);
    p.set(o.dst, 16);
    writeIPv4HeaderChecksum(p);
  } else {
    const tc = o.tos ?? 0;
    const fl = o.flowLabel ?? 0;
    dv.setUint32(0, (6 << 28) | (tc << 20) | (fl & 0xfffff));
    dv.setUint16(4, total - 40);
    p[6] = protoNum;
    p[7] = o.ttl ?? 64;
    p.set(o.src, 8);
    p.set(o.dst, 24);
  }
  const th = iphLen;
  dv.setUint16(th, o.srcPort ?? 1);
  dv.setUint16(th + 2, o.dstPort ?? 1);
  if (o.proto === 'tcp') {
    dv.setUint32(th + 4, (o.seq ?? 1) >>> 0);
    dv.setUint32(th + 8, (o.ack ?? 1) >>> 0);
    p[th + 12] = (thLen / 4) << 4;
    p[th + 13] = o.flags ?? TCP_ACK;
    dv.setUint16(th + 14, o.window ?? 3000);
    if (o.options) p.set(o.options, th + 20);
  } else {
    dv.setUint16(th + 4, thLen + payload.length);
  }
  p.set(payload, th + thLen);
  fixTransportChecksum(p);
  return p;
}

/** Recomputes the transport checksum of a packet built by {@link buildPacket}. */
export function fixTransportChecksum(p: Uint8Array): void {
  const iphLen = p[0]! >> 4 === 4 ? (p[0]! & 0xf) * 4 : 40;
  const proto = p[0]! >> 4 === 4 ? p[9]! : p[6]!;
  const at = iphLen + (proto === 6 ? 16 : 6);
  p[at] = 0;
  p[at + 1] = 0;
  const len = p.length - iphLen;
  const c = ~checksumSum(p, iphLen, p.length, pseudoHeaderSumFor(p, proto, len)) & 0xffff;
  p[at] = c >> 8;
  p[at + 1] = c & 0xff;
}

/**
 * A UDP payload of `length` bytes (even, at least 2) for which the datagram
 * `src:srcPort -> dst:dstPort` has a computed checksum of 0x0000: the last
 * word takes the checksum of everything else, so the whole sums to 0xFFFF.
 * That is the 1-in-65,536 case a checksum completion must store as 0xFFFF
 * (D-4); the datagram echoed back (ends swapped) is the same case.
 */
export function zeroChecksumUdpPayload(
  version: 4 | 6,
  src: ArrayLike<number>,
  dst: ArrayLike<number>,
  srcPort: number,
  dstPort: number,
  length: number,
  seed = 1,
): Uint8Array {
  const payload = patternPayload(length, seed);
  payload[length - 2] = 0;
  payload[length - 1] = 0;
  const p = buildPacket({ version, proto: 'udp', src: Array.from(src), dst: Array.from(dst), srcPort, dstPort, payload });
  const at = (version === 4 ? 20 : 40) + 6;
  payload[length - 2] = p[at]!;
  payload[length - 1] = p[at + 1]!;
  return payload;
}

/** Deterministic payload bytes. */
export function patternPayload(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (seed + i * 31) & 0xff;
  return b;
}

/** `[vnet header | packet]` as one frame, as the kernel hands it to a read. */
export function frame(header: VirtioNetHeader, packet: Uint8Array): Uint8Array {
  const f = new Uint8Array(VNET_HDR_LEN + packet.length);
  encodeVirtioNetHeader(f, header);
  f.set(packet, VNET_HDR_LEN);
  return f;
}

/** Deep copies, for tests that reuse inputs across coalesce runs (PIT-2). */
export function clonePackets(packets: readonly Uint8Array[]): Uint8Array[] {
  return packets.map((p) => p.slice());
}

/** Concatenates a write list into the bytes a writev would send. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
