/**
 * The 10-byte virtio-net header (spec sec. 3: HDR-1 .. HDR-7).
 *
 * Layout: flags u8, gso_type u8, then hdr_len, gso_size, csum_start,
 * csum_offset as u16 in host order, which is little-endian on every host
 * vectun supports (HDR-2; the device layer sets TUNSETVNETLE on big-endian
 * hosts, D-7).
 * @module
 */
import { packetError } from '../errors.js';

/** Size of `struct virtio_net_hdr` (DEV-5). */
export const VNET_HDR_LEN = 10;

/** flags bit 0: the transport checksum is partial and must be completed (HDR-3). */
export const VNET_F_NEEDS_CSUM = 1;
/** flags bit 1: checksum already verified; ignored on read, never set on write. */
export const VNET_F_DATA_VALID = 2;

/** gso_type NONE: a plain packet, not a super-packet (HDR-1). */
export const GSO_NONE = 0;
/** gso_type TCPV4: an IPv4 TCP super-packet (TSO). */
export const GSO_TCPV4 = 1;
/** gso_type UDP (UFO): never negotiated, rejected on read (DEV-4, HDR-6). */
export const GSO_UDP = 3;
/** gso_type TCPV6: an IPv6 TCP super-packet (TSO). */
export const GSO_TCPV6 = 4;
/** gso_type UDP_L4: a UDP super-packet split by datagram (USO, Linux 6.2+). */
export const GSO_UDP_L4 = 5;
/** ECN bit of gso_type (TSO_ECN): never negotiated, rejected on read (HDR-6). */
export const GSO_ECN = 0x80;

/** The accepted gso types after decoding (HDR-6, HDR-7). */
export type GsoType = typeof GSO_NONE | typeof GSO_TCPV4 | typeof GSO_TCPV6 | typeof GSO_UDP_L4;

/** Decoded header (HDR-7). */
export interface VirtioNetHeader {
  /** flags & NEEDS_CSUM. */
  needsCsum: boolean;
  /** What kind of packet follows (HDR-6): NONE, TCPV4, TCPV6 or UDP_L4. */
  gsoType: GsoType;
  /** Bytes of IP + transport header; not trusted on read for GSO types (HDR-3). */
  hdrLen: number;
  /** Transport payload bytes per segment, the last may be shorter (VOC-4). */
  gsoSize: number;
  /** Offset of the transport header from the packet start; iphLen on read (HDR-3). */
  csumStart: number;
  /** Offset of the checksum field from csumStart: 16 for TCP, 6 for UDP. */
  csumOffset: number;
}

/**
 * Checks the two properties every read frame must have before its fields are
 * used: at least 10 bytes (HDR-2) and an accepted gso_type (HDR-6).
 * @throws VectunError `ERR_VNET_HDR_SHORT` for fewer than 10 bytes,
 *   `ERR_GSO_TYPE_UNSUPPORTED` for gso types other than 0, 1, 4, 5 (so also
 *   3 = UFO and anything with the ECN bit 0x80).
 */
export function checkVirtioNetHeader(frame: Uint8Array): void {
  if (frame.length < VNET_HDR_LEN) {
    throw packetError('ERR_VNET_HDR_SHORT', `frame of ${frame.length} bytes is shorter than the 10-byte virtio-net header`);
  }
  const gsoType = frame[1]!;
  if (gsoType !== GSO_NONE && gsoType !== GSO_TCPV4 && gsoType !== GSO_TCPV6 && gsoType !== GSO_UDP_L4) {
    throw packetError('ERR_GSO_TYPE_UNSUPPORTED', `unsupported gso type 0x${gsoType.toString(16)}`);
  }
}

/**
 * Decodes the header at the start of `frame` (HDR-2, HDR-6, HDR-7). DATA_VALID
 * is dropped: it is ignored on read (HDR-3).
 * @throws VectunError as {@link checkVirtioNetHeader}.
 */
export function decodeVirtioNetHeader(frame: Uint8Array): VirtioNetHeader {
  checkVirtioNetHeader(frame);
  return {
    needsCsum: (frame[0]! & VNET_F_NEEDS_CSUM) !== 0,
    gsoType: frame[1]! as GsoType,
    hdrLen: frame[2]! | (frame[3]! << 8),
    gsoSize: frame[4]! | (frame[5]! << 8),
    csumStart: frame[6]! | (frame[7]! << 8),
    csumOffset: frame[8]! | (frame[9]! << 8),
  };
}

/** Writes a header into `out[at:at+10]` (HDR-1, HDR-4). DATA_VALID is never set. */
export function encodeVirtioNetHeader(out: Uint8Array, header: VirtioNetHeader, at = 0): void {
  out[at] = header.needsCsum ? VNET_F_NEEDS_CSUM : 0;
  out[at + 1] = header.gsoType;
  writeU16LE(out, at + 2, header.hdrLen);
  writeU16LE(out, at + 4, header.gsoSize);
  writeU16LE(out, at + 6, header.csumStart);
  writeU16LE(out, at + 8, header.csumOffset);
}

function writeU16LE(out: Uint8Array, at: number, value: number): void {
  out[at] = value & 0xff;
  out[at + 1] = (value >>> 8) & 0xff;
}
