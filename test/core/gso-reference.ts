/**
 * A deliberately slow, literal model of the read path (spec RD-2..RD-9 with
 * D-3, D-4, D-5), used as the oracle for gso.ts in tests and in the fuzz
 * target. It follows the spec's wording step by step: it copies `in` (the
 * device buffer the reference mutates), builds every segment in its own
 * buffer as the reference does, and sums bytes pairwise. It shares no
 * code with src/core (not even the checksum), so a bug there cannot hide.
 */

export type ReferenceResult = { packets: Uint8Array[] } | { code: string };

/** CK-1 the obvious way. */
export function slowSum(d: Uint8Array, start: number, end: number, initial: number): number {
  let x = initial;
  for (let i = start; i < end; i += 2) x += (d[i]! << 8) | (i + 1 < end ? d[i + 1]! : 0);
  while (x > 0xffff) x = (x & 0xffff) + Math.floor(x / 65536);
  return x;
}

const u16le = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8);
const u16be = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;
const put16 = (b: Uint8Array, at: number, v: number): void => {
  b[at] = (v >> 8) & 0xff;
  b[at + 1] = v & 0xff;
};

export function referenceSegment(frame: Uint8Array): ReferenceResult {
  if (frame.length < 10) return { code: 'ERR_VNET_HDR_SHORT' };
  const flags = frame[0]!;
  const gsoType = frame[1]!;
  if (![0, 1, 4, 5].includes(gsoType)) return { code: 'ERR_GSO_TYPE_UNSUPPORTED' };
  const gsoSize = u16le(frame, 4);
  const csumStart = u16le(frame, 6);
  const csumOffset = u16le(frame, 8);
  const needsCsum = (flags & 1) === 1;
  const inn = frame.slice(10);
  const L = inn.length;

  if (gsoType === 0) {
    if (needsCsum && csumStart + csumOffset + 1 >= L) return { code: 'ERR_CSUM_OFFSET' };
    if (needsCsum) {
      const at = csumStart + csumOffset;
      const initial = u16be(inn, at);
      inn[at] = 0;
      inn[at + 1] = 0;
      put16(inn, at, ~slowSum(inn, csumStart, L, initial) & 0xffff);
    }
    return { packets: [inn] };
  }

  if (L === 0) return { code: 'ERR_PACKET_EMPTY' };
  const version = inn[0]! >> 4;
  if (version === 4) {
    if (gsoType !== 1 && gsoType !== 5) return { code: 'ERR_IP_VERSION_MISMATCH' };
    if (L < 20) return { code: 'ERR_PACKET_TOO_SHORT' };
  } else if (version === 6) {
    if (gsoType !== 4 && gsoType !== 5) return { code: 'ERR_IP_VERSION_MISMATCH' };
    if (L < 40) return { code: 'ERR_PACKET_TOO_SHORT' };
  } else {
    return { code: 'ERR_IP_VERSION_MISMATCH' };
  }
  let hdrLen: number;
  if (gsoType === 5) {
    hdrLen = csumStart + 8;
  } else {
    if (L <= csumStart + 12) return { code: 'ERR_PACKET_TOO_SHORT' };
    const thLen = (inn[csumStart + 12]! >> 4) * 4;
    if (thLen < 20 || thLen > 60) return { code: 'ERR_TCP_HDR_LEN' };
    hdrLen = csumStart + thLen;
  }
  if (L < hdrLen) return { code: 'ERR_HDR_LEN' };
  if (hdrLen < csumStart) return { code: 'ERR_HDR_LEN' };
  if (csumStart + csumOffset + 1 >= L) return { code: 'ERR_CSUM_OFFSET' };
  if (gsoSize === 0) return { code: 'ERR_GSO_SIZE_ZERO' };

  // RD-8
  const iphLen = csumStart;
  if (version === 4) {
    inn[10] = 0;
    inn[11] = 0;
  }
  inn[csumStart + csumOffset] = 0;
  inn[csumStart + csumOffset + 1] = 0;
  const isTcp = gsoType !== 5;
  const firstSeq = isTcp ? ((inn[csumStart + 4]! * 2 ** 24) + (inn[csumStart + 5]! << 16) + (inn[csumStart + 6]! << 8) + inn[csumStart + 7]!) : 0;

  // RD-9
  const packets: Uint8Array[] = [];
  for (let i = 0; hdrLen + i * gsoSize < L; i++) {
    const segStart = hdrLen + i * gsoSize;
    const segEnd = Math.min(hdrLen + (i + 1) * gsoSize, L);
    const segLen = segEnd - segStart;
    const total = hdrLen + segLen;
    // Room for the bytes RD-9 may write past `total` (CK-5 at 10..11, the
    // checksum field), which are not part of the segment.
    const out = new Uint8Array(Math.max(total, 12, csumStart + csumOffset + 2));
    out.set(inn.subarray(0, iphLen), 0);
    if (version === 4) {
      if (i > 0) put16(out, 4, (u16be(inn, 4) + i) % 65536);
      put16(out, 2, total);
      out[10] = 0;
      out[11] = 0;
      put16(out, 10, ~slowSum(out, 0, iphLen, 0) & 0xffff);
    } else {
      put16(out, 4, total - iphLen);
    }
    out.set(inn.subarray(csumStart, hdrLen), csumStart);
    if (isTcp) {
      const seq = (firstSeq + i * gsoSize) % 2 ** 32;
      out[csumStart + 4] = Math.floor(seq / 2 ** 24);
      out[csumStart + 5] = (seq >>> 16) & 0xff;
      out[csumStart + 6] = (seq >>> 8) & 0xff;
      out[csumStart + 7] = seq & 0xff;
      if (segEnd !== L) out[csumStart + 13] = out[csumStart + 13]! & ~0x09;
    } else {
      put16(out, csumStart + 4, segLen + (hdrLen - csumStart));
    }
    out.set(inn.subarray(segStart, segEnd), hdrLen);
    const addrs = version === 4 ? [12, 20] : [8, 40];
    const pseudo = slowSum(inn, addrs[0]!, addrs[1]!, (isTcp ? 6 : 17) + (((hdrLen - csumStart) + segLen) & 0xffff));
    let c = ~slowSum(out, csumStart, total, pseudo) & 0xffff;
    if (!isTcp && c === 0) c = 0xffff; // D-4
    put16(out, csumStart + csumOffset, c);
    packets.push(out.slice(0, total));
  }
  return { packets };
}
